"""Current-state files over several roots (a national report reads every province's root,
``sinks.catalog_sql._classify`` / ``_share``): the current views read each root's state file
and give exactly what ranking every row gives — with records moving between roots (and
back), deletes on either side, late replays, some roots compacted and others not, every
crash state of one root's state steps, and random histories over 2-3 roots."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sinks.catalog import open_catalog, snapshot
from sinks.catalog_sql import LOSING, RID_HASH, _decide_sql
from tests.helpers import record_decisions
from tests.unit.sinks.test_current_state import (
    CURRENT,
    MONTHS,
    STATE_LIST,
    TOPIC,
    _compact,
    _rec,
    _states,
    _write,
)
from tests.unit.sinks.test_current_state import _exact as _exact_one

#: (state rows ranked again, of them not the latest, rows of the files not covered that are)
DECIDED = (
    "SELECT count(*) FILTER (_state), count(*) FILTER (_state AND NOT _latest), "
    f"count(*) FILTER (_latest AND NOT _state) FROM ({_decide_sql('province', 'immunization')})"
)
PROVINCES = ("01", "02", "03")


def _roots(base: Path, n: int = 3) -> list[Path]:
    return [base / f"root-{p}" for p in PROVINCES[:n]]


def _put(base: Path, name: str, changes: list[tuple[str, int, str, str, str]]) -> None:
    """Each change into its province's own root (as deployed: one root per province)."""
    for root, province in zip(_roots(base), PROVINCES, strict=True):
        recs = [_rec(r, v, m, province=p, op=o) for r, v, m, p, o in changes if p == province]
        if recs:
            _write(root, name, recs)


def _exact(roots: list[Path]) -> tuple[list[tuple[Any, ...]], int, tuple[int, ...]]:
    """(current rows through a snapshot, state files read, :data:`DECIDED`), checked against
    the rows ranked over every file of every root (no snapshot)."""
    there = [str(r) for r in roots if r.exists()]
    if not there:
        return [], 0, ()
    con = open_catalog(there, "province")
    expected = con.execute(CURRENT).fetchall()
    with snapshot(con):
        got = con.execute(CURRENT).fetchall()
        used = con.execute(STATE_LIST).fetchone()
        decided = con.execute(DECIDED).fetchone() or ()
        positions = con.execute(
            f"SELECT (FROM {LOSING}immunization SELECT count(*)), count(*) FILTER (NOT _latest) "
            f"FROM ({_decide_sql('province', 'immunization')})"
        ).fetchone()
    assert got == expected
    if used and used[0]:  # the table holds what the decision says: every row not the latest
        assert positions and positions[0] == positions[1]
    return list(got), int(used[0]) if used else 0, tuple(decided)


def _history() -> list[tuple[str, int, str, str, str]]:
    return [
        ("a", 1, "03", "01", "upsert"),
        ("a", 2, "04", "02", "upsert"),  # moved 01 -> 02
        ("b", 1, "03", "01", "upsert"),
        ("b", 2, "04", "02", "upsert"),
        ("b", 3, "04", "01", "upsert"),  # moved and back
        ("c", 1, "03", "02", "upsert"),
        ("c", 2, "04", "03", "delete"),  # deleted in its new root, live in the old one
        ("d", 1, "03", "03", "upsert"),
        ("d", 2, "04", "03", "upsert"),  # corrected in its own root only
        ("e", 2, "03", "01", "upsert"),
        ("e", 2, "04", "02", "upsert"),  # the same version in two roots: the later wins
        ("f", 1, "07", "01", "upsert"),  # only in the open month
    ]


def test_several_roots_read_each_state_file_and_are_exact(tmp_path: Path) -> None:
    _put(tmp_path, f"{TOPIC}+0+0.parquet", _history())
    roots = _roots(tmp_path)
    fresh, used, _ = _exact(roots)
    assert used == 0 and [r[0] for r in fresh] == ["a", "b", "d", "e", "f"]
    for root in roots:
        _compact(root)
        assert len(_states(root)) == 1
    rows, used, shared = _exact(roots)
    assert rows == fresh and used == 3
    # ranked again: the state rows of a, b, c, e (in two roots' files), one of each not the
    # latest; f (the open month only) is the latest of its record
    assert shared == (8, 4, 1)
    assert {r[0]: (r[2], r[4]) for r in rows}["b"] == (3, "01")
    assert {r[0]: (r[2], r[4]) for r in rows}["e"] == (2, "02")
    assert _exact(roots[:1])[1:] == (1, (0, 0, 1))  # one root alone: nothing ranked again


def test_late_replays_and_roots_compacted_apart_are_exact(tmp_path: Path) -> None:
    _put(tmp_path, f"{TOPIC}+0+0.parquet", _history())
    roots = _roots(tmp_path)
    _compact(roots[0])  # one root compacted, the others not: their files are ranked
    assert _exact(roots)[1] == 1
    _compact(roots[1])
    _put(
        tmp_path,
        f"{TOPIC}+5+0.parquet",
        [
            ("a", 1, "03", "01", "upsert"),  # an older version again, in its old root: loses
            ("c", 3, "04", "01", "upsert"),  # after the delete, back in another root
            ("d", 3, "03", "01", "delete"),  # deleted late from another root
            ("g", 1, "03", "02", "upsert"),  # a new record
        ],
    )
    rows, used, _ = _exact(roots)
    assert used == 2
    assert [(r[0], r[2], r[4]) for r in rows] == [
        ("a", 2, "02"),
        ("b", 3, "01"),
        ("c", 3, "01"),
        ("e", 2, "02"),
        ("f", 1, "01"),
        ("g", 1, "02"),
    ]
    for root in roots:
        _compact(root)
    assert _exact(roots)[:2] == (rows, 3)


def test_every_crash_state_of_one_roots_state_steps_is_exact(tmp_path: Path) -> None:
    _put(tmp_path, f"{TOPIC}+0+0.parquet", _history())
    roots = _roots(tmp_path)
    for root in roots:
        _compact(root)
    [old] = _states(roots[1])
    old_bytes = old.read_bytes()
    _put(tmp_path, f"{TOPIC}+5+0.parquet", [("a", 3, "03", "02", "upsert")])
    late, used, _ = _exact(roots)
    assert used == 3
    _compact(roots[1])
    [new] = _states(roots[1])
    new_bytes = new.read_bytes()
    new.unlink()  # root 02 merged again, its state file not yet written
    old.write_bytes(old_bytes)  # ... the old one still there
    assert _exact(roots)[:2] == (late, 2)
    new.write_bytes(new_bytes)  # between 6 and 7: both files, the listing picks its own
    assert _exact(roots)[:2] == (late, 3)


def _rewrite_hashes(path: Path, hashes: pa.Array | None) -> None:
    """``path`` with its :data:`RID_HASH` column replaced by ``hashes`` (None: dropped, as a
    state file written before the column was)."""
    table = pq.read_table(path)
    table = table.drop_columns([RID_HASH])
    if hashes is not None:
        table = table.append_column(pa.field(RID_HASH, pa.uint64()), hashes)
    pq.write_table(table, path)


def test_state_files_of_the_earlier_form_or_with_colliding_hashes_are_exact(
    tmp_path: Path,
) -> None:
    """A state file of the form before the hash column (``current+``) is not read (its root
    ranked) until compaction replaces it; hashes that collide (every record alike) rank
    more records again: both exact."""
    _put(tmp_path, f"{TOPIC}+0+0.parquet", _history())
    roots = _roots(tmp_path)
    for root in roots:
        _compact(root)
    rows, used, decided = _exact(roots)
    assert used == 3 and decided == (8, 4, 1)
    [state] = _states(roots[0])
    _rewrite_hashes(state, None)
    state.rename(state.with_name(state.name.replace("current2+", "current+")))
    assert _exact(roots)[:2] == (rows, 2)  # root 01's files in the rest: f and a, b, e
    _compact(roots[0])
    assert [s.name[:9] for s in _states(roots[0])] == ["current2+"]
    assert _exact(roots) == (rows, 3, (8, 4, 1))
    for root in roots:  # every hash alike: every state row ranked again
        [state] = _states(root)
        n = pq.read_metadata(state).num_rows
        _rewrite_hashes(state, pa.array([7] * n, pa.uint64()))
    assert _exact(roots) == (rows, 3, (9, 4, 1))


def _restricted(roots: list[Path], provinces: list[str]) -> tuple[list[tuple[Any, ...]], int]:
    """(current rows of a catalog restricted to ``provinces`` through a snapshot, state files
    read), checked against ranking every row of those provinces (no snapshot)."""
    there = [str(r) for r in roots if r.exists()]
    return _exact_one(there, provinces) if there else ([], 0)


def test_province_restricted_catalogs_read_the_state_files_of_whole_roots(tmp_path: Path) -> None:
    _put(tmp_path, f"{TOPIC}+0+0.parquet", _history())
    roots = _roots(tmp_path)
    for root in roots:
        _compact(root)
    # as deployed, each root holds its own province only: a restriction covers it whole
    assert _restricted(roots, ["01", "02"])[1] == 2
    assert _restricted(roots[:1], ["01"])[1] == 1
    shared = tmp_path / "shared"  # one root of two provinces, merged files in both
    _write(
        shared, f"{TOPIC}+0+0.parquet", [_rec(*c[:3], province=c[3], op=c[4]) for c in _history()]
    )
    _compact(shared)
    assert _restricted([shared], ["01"])[1] == 0  # 02, 03's merged files not read: ranked
    assert _restricted([shared], ["01", "02", "03"])[1] == 1
    only = tmp_path / "one-merged"  # 02's files not merged: the state covers 01's only
    _write(only, f"{TOPIC}+0+0.parquet", [_rec("a", 1, "03"), _rec("a", 2, "07", province="02")])
    _compact(only)
    rows, used = _restricted([only], ["01"])
    assert used == 1 and [(r[0], r[2]) for r in rows] == [("a", 1)]


_change = st.tuples(
    st.sampled_from("pqrs"),  # record id
    st.integers(1, 3),  # version
    st.sampled_from(sorted(MONTHS)),
    st.sampled_from(PROVINCES),  # and so its root
    st.sampled_from(["upsert", "upsert", "delete"]),
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_roots=st.integers(2, 3),
    first=st.lists(_change, min_size=1, max_size=10),
    compacted=st.lists(st.booleans(), min_size=3, max_size=3),
    late=st.lists(_change, max_size=5),
    recompact=st.booleans(),
)
def test_states_over_roots_equal_ranking_every_row_for_any_history(
    n_roots: int,
    first: list[tuple[str, int, str, str, str]],
    compacted: list[bool],
    late: list[tuple[str, int, str, str, str]],
    recompact: bool,
) -> None:
    base = Path(tempfile.mkdtemp(prefix="tuyen-state-roots-"))
    try:
        keep = set(PROVINCES[:n_roots])
        half = len(first) // 2
        for i, part in enumerate((first[:half], first[half:])):
            _put(base, f"{TOPIC}+0+{i}.parquet", [c for c in part if c[3] in keep])
        roots = _roots(base, n_roots)
        restricted = sorted(keep)[1:]  # some of the provinces (and so of the roots)

        def check() -> None:
            _exact(roots)
            _restricted(roots, restricted)

        check()
        for root, yes in zip(roots, compacted, strict=False):
            if yes and root.exists():
                _compact(root)
        check()
        if late:
            _put(base, f"{TOPIC}+7+0.parquet", [c for c in late if c[3] in keep])
            check()
            if recompact:
                for root in roots:
                    if root.exists():
                        _compact(root)
                check()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_a_province_restricted_catalog_reads_the_latest_version_in_its_provinces(
    tmp_path: Path,
) -> None:
    """Today's semantics of a catalog over some provinces of a shared root (what a state
    file read with the same filter would have to match): a record whose latest version is
    in another province appears with its latest version among the provinces read."""
    root = tmp_path / "shared"
    _write(root, f"{TOPIC}+0+0.parquet", [_rec(*c[:3], province=c[3], op=c[4]) for c in _history()])
    _compact(root)
    con = open_catalog(root, "province", province="01")
    with snapshot(con):
        rows = {r[0]: (r[2], r[4]) for r in con.execute(CURRENT).fetchall()}
        assert con.execute(STATE_LIST).fetchone() == (0,)  # ranks every row of 01
    assert rows == {"a": (1, "01"), "b": (3, "01"), "e": (2, "01"), "f": (1, "01")}


def test_a_snapshot_of_the_same_files_reuses_the_decision_exactly(tmp_path: Path) -> None:
    """The decision of a listing whose files are unchanged is reused (the portal's next
    request); a file added, or rewritten in place, decides again: exact every time."""
    from sinks.catalog import _DECISIONS

    _put(tmp_path, f"{TOPIC}+0+0.parquet", _history())
    roots = _roots(tmp_path)
    for root in roots:
        _compact(root)
    first = _exact(roots)
    files = sorted(str(p) for r in roots for p in r.rglob("*.parquet"))
    key = _DECISIONS.key(files)
    assert _DECISIONS.get(key) is not None  # kept, and read by the next snapshot
    assert _exact(roots) == first
    _put(tmp_path, f"{TOPIC}+5+0.parquet", [("d", 5, "07", "03", "upsert")])  # a new file
    added = _exact(roots)
    assert {r[0]: r[2] for r in added[0]}["d"] == 5
    _write(roots[2], f"{TOPIC}+5+0.parquet", [_rec("d", 1, "07", province="03")])
    rewritten = _exact(roots)  # the same name, an older version: the state's wins again
    assert {r[0]: r[2] for r in rewritten[0]}["d"] == 2


def test_a_row_of_a_file_not_in_the_listing_fails_rather_than_misplaces(tmp_path: Path) -> None:
    """A row's position names its file by the snapshot's listing: a file name DuckDB reports
    otherwise (never seen; a scheme it rewrites) fails the query instead of a row lost."""
    import duckdb
    import pytest

    from sinks.catalog_sql import _KEY

    path = tmp_path / "f.parquet"
    pq.write_table(pa.table({"x": [1, 2]}), path)
    con = duckdb.connect()
    listed = f"SELECT {_KEY.format(files='$1')} FROM read_parquet($2, filename = true, "
    listed += "file_row_number = true) ORDER BY 1"
    assert con.execute(listed, [[str(path)], str(path)]).fetchall() == [(2**40,), (2**40 + 1,)]
    with pytest.raises(duckdb.Error, match="not in the snapshot listing"):
        con.execute(listed, [["elsewhere.parquet"], str(path)]).fetchall()


def test_a_snapshot_decides_only_the_record_types_it_reads(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """``snapshot(reads=…)`` decides the record types named (a report's, ``sinks.reports.
    facts.current_reads``), and the others' views rank every row instead: every view still
    equals ranking every row; a later snapshot of the same files decides the rest and keeps
    both decisions."""
    from sinks.catalog_sql import SNAPSHOT
    from sinks.testing import tier_record

    _put(tmp_path, f"{TOPIC}+0+0.parquet", _history())
    roots = _roots(tmp_path)
    visits = [  # an encounter record moved between roots, one corrected in the open month
        ("v", 1, "03", "01"),
        ("v", 2, "04", "02"),
        ("w", 1, "03", "03"),
        ("w", 2, "07", "03"),
        ("x", 1, "04", "02"),
    ]
    for root, province in zip(roots, PROVINCES, strict=True):
        recs = [
            tier_record(
                "encounter",
                record_id=f"0000000001:{r}",
                version=v,
                province=p,
                event_time=MONTHS[m],
                event_id=f"{r}-v{v}-{m}-{p}",
            )
            for r, v, m, p in visits
            if p == province
        ]
        _write(root, f"{TOPIC}+1+0.parquet", recs)
        _compact(root)
    decided = record_decisions(monkeypatch)
    con = open_catalog([str(r) for r in roots], "province")
    views = {
        rt: f"SELECT record_id, event_id, record_version, op FROM {rt} ORDER BY record_id"
        for rt in ("encounter", "immunization")
    }
    ranked = {rt: con.execute(sql).fetchall() for rt, sql in views.items()}
    lists = f"SELECT getvariable('{SNAPSHOT}')"
    for reads in (["encounter"], ["immunization"], None):
        decided.clear()
        with snapshot(con, reads=reads):
            assert {rt: con.execute(sql).fetchall() for rt, sql in views.items()} == ranked
            row = con.execute(lists).fetchone()
            assert row is not None
            snap = row[0]
        for rt in views:
            wanted = reads is None or rt in reads
            assert len(snap[rt]["state"]) == (3 if wanted else 0)
            assert bool(snap[rt]["ranked"]) == (not wanted)  # every file ranked instead
        assert decided == (reads or [])  # the third reloads both, kept by the first two
    assert [r[0].split(":")[1] for r in ranked["encounter"]] == ["v", "w", "x"]
    assert {r[0].split(":")[1]: r[2] for r in ranked["encounter"]} == {"v": 2, "w": 2, "x": 1}
