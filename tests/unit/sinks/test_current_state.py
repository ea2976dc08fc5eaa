"""Current-state files (``sinks.compact`` steps 6-7, ``sinks.catalog_sql._current_sql``): the
current views read through a snapshot give exactly what ranking every row gives — after
compaction, with late replays into compacted months, with deletions and records that move
between provinces, in every crash state of compaction, and after a purge."""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.tier import TierRecord
from sinks.catalog import open_catalog, snapshot
from sinks.catalog_sql import SNAPSHOT, STATE_DIR
from sinks.compact import compact
from sinks.config import CompactConfig
from sinks.encode import tier_encoder
from sinks.erasure import ErasedWrites, Register, erasure_hasher
from sinks.purge import Purge
from sinks.store import Store
from sinks.testing import FakeMessage, tier_record
from streams.pseudonymise import Pseudonymiser

TOPIC = "tier.province"
MONTHS = {
    "03": datetime(2026, 3, 10, 5, 0, tzinfo=UTC),
    "04": datetime(2026, 4, 10, 5, 0, tzinfo=UTC),
    "07": datetime(2026, 7, 10, 5, 0, tzinfo=UTC),  # not compacted (before_month 2026-06)
}
CURRENT = (
    "SELECT split_part(record_id, ':', 2) AS rid, event_id, record_version, op, province_code, "
    "health_id FROM immunization ORDER BY record_id"
)
STATE_LIST = f"SELECT len(getvariable('{SNAPSHOT}').immunization.state)"


def _rec(
    rid: str, version: int, month: str, *, province: str = "01", op: str = "upsert", n: int = 0
) -> TierRecord:
    return tier_record(
        "immunization",
        n=n,
        record_id=f"0000000001:{rid}",
        version=version,
        op="delete" if op == "delete" else "upsert",
        province=province,
        event_time=MONTHS[month],
        event_id=f"{rid}-v{version}-{month}-{province}-{op}",
    )


def _write(root: Path, name: str, records: list[TierRecord]) -> None:
    store = Store.open(root)
    msgs = [FakeMessage.of(TOPIC, 0, i, r) for i, r in enumerate(records)]
    for directory, table in tier_encoder("province")(msgs).items():
        store.write_table(store.path(directory, name), table)


def _compact(root: Path) -> None:
    compact(
        CompactConfig(store_root=str(root), before_month="2026-06", min_file_age_s=0, min_files=1)
    )


def _exact(
    root: Path | list[str], province: str | list[str] | None = None
) -> tuple[list[tuple[Any, ...]], int]:
    """(current rows through a snapshot, state files it read), checked against the rows
    ranked over every file (no snapshot); ``root`` may be several roots."""
    con = open_catalog(root, "province", province=province)
    expected = con.execute(CURRENT).fetchall()
    with snapshot(con):
        got = con.execute(CURRENT).fetchall()
        used = con.execute(STATE_LIST).fetchone()
    assert got == expected
    return list(got), int(used[0]) if used else 0


def _states(root: Path) -> list[Path]:
    return sorted((root / "province" / STATE_DIR).rglob("*.parquet"))


def _history() -> list[TierRecord]:
    return [
        _rec("a", 1, "03"),
        _rec("a", 2, "04"),  # corrected in a later month
        _rec("b", 1, "03"),
        _rec("b", 2, "03", op="delete"),  # deleted: a tombstone in the state
        _rec("c", 1, "03", province="01"),
        _rec("c", 2, "04", province="02"),  # moved to another province
        _rec("d", 1, "04", province="02"),
        _rec("e", 1, "03"),
        _rec("e", 2, "07"),  # corrected in the open month
    ]


def test_state_files_are_read_and_exact(tmp_path: Path) -> None:
    _write(tmp_path, f"{TOPIC}+0+0.parquet", _history())
    fresh, used = _exact(tmp_path)
    assert used == 0 and [r[0] for r in fresh] == ["a", "c", "d", "e"]
    _compact(tmp_path)
    assert len(_states(tmp_path)) == 1
    rows, used = _exact(tmp_path)
    assert rows == fresh and used == 1
    [c] = [r for r in rows if r[0] == "c"]
    assert c[4] == "02"  # the record's latest version is in its new province
    for province in ("01", "02"):  # over some provinces: every row ranked
        assert _exact(tmp_path, province)[1] == 0
    assert _exact(tmp_path, ["01", "02"])[1] == 1  # every province of the root: its file


def test_late_replays_into_compacted_months_are_ranked_against_the_state(tmp_path: Path) -> None:
    _write(tmp_path, f"{TOPIC}+0+0.parquet", _history())
    _compact(tmp_path)
    _write(
        tmp_path,
        f"{TOPIC}+5+0.parquet",
        [
            _rec("a", 1, "03"),  # an older version again: loses
            _rec("b", 3, "04"),  # after the delete: back
            _rec("d", 2, "03", province="02", op="delete"),  # deleted late
            _rec("f", 1, "03"),  # a new record
        ],
    )
    rows, used = _exact(tmp_path)
    assert used == 1
    assert [(r[0], r[2]) for r in rows] == [("a", 2), ("b", 3), ("c", 2), ("e", 2), ("f", 1)]
    _compact(tmp_path)  # merged again: a new state file, the old one removed
    assert len(_states(tmp_path)) == 1
    assert _exact(tmp_path) == (rows, 1)


def test_every_crash_state_of_the_state_steps_is_exact(tmp_path: Path) -> None:
    _write(tmp_path, f"{TOPIC}+0+0.parquet", _history())
    _compact(tmp_path)
    [old] = _states(tmp_path)
    old_bytes = old.read_bytes()
    expected, _ = _exact(tmp_path)
    _write(tmp_path, f"{TOPIC}+5+0.parquet", [_rec("a", 3, "03"), _rec("g", 1, "04")])
    late, _ = _exact(tmp_path)
    assert late != expected
    _compact(tmp_path)
    [new] = _states(tmp_path)

    new_bytes = new.read_bytes()
    new.unlink()  # merged again, state file not yet written (between 5 and 6)
    old.write_bytes(old_bytes)  # ... and the old one still there: it covers other files
    assert _exact(tmp_path) == (late, 0)
    new.write_bytes(new_bytes)  # between 6 and 7: both files, the listing picks its own
    assert _exact(tmp_path) == (late, 1)
    _compact(tmp_path)  # step 7 finished, nothing rewritten
    assert _states(tmp_path) == [new] and new.read_bytes() == new_bytes
    assert _exact(tmp_path) == (late, 1)

    for merged in tmp_path.rglob("*+merged+*.parquet"):  # all merged files gone: no state
        merged.unlink()
    _compact(tmp_path)
    assert _states(tmp_path) == []
    assert _exact(tmp_path)[1] == 0


def test_a_purge_reaches_the_state_files(tmp_path: Path) -> None:
    key = Pseudonymiser("purge-test-key")
    people = [
        tier_record("immunization", n=n, event_id=f"i{n}", event_time=MONTHS["03"])
        for n in range(5)
    ]
    _write(tmp_path, f"{TOPIC}+0+0.parquet", people)
    _compact(tmp_path)
    gone = people[3].model_dump()["data"]["health_id"]
    before, used = _exact(tmp_path)
    assert used == 1 and gone in {r[5] for r in before}
    Purge(
        str(tmp_path), pseudonym=key.pseudonym, subject_hash=lambda h: key.pseudonym(h, "purge")
    ).run(gone, reason="erasure request")
    after, used = _exact(tmp_path)
    assert used == 1 and gone not in {r[5] for r in after} and len(after) == 4
    con = duckdb.connect()
    [state] = _states(tmp_path)
    assert con.execute(
        "SELECT count(*) FROM read_parquet(?) WHERE health_id = ?", [str(state), gone]
    ).fetchone() == (0,)


def test_a_state_file_is_written_through_the_erasure_register(tmp_path: Path) -> None:
    """A person registered after their merged files were written (a purge between two
    compactions, before it rewrote them) is left out of the state file compaction builds."""
    people = [
        tier_record("immunization", n=n, event_id=f"i{n}", event_time=MONTHS["03"])
        for n in range(5)
    ]
    _write(tmp_path, f"{TOPIC}+0+0.parquet", people)
    _compact(tmp_path)
    gone = people[2].model_dump()["data"]["health_id"]
    for state in _states(tmp_path):
        state.unlink()
    hasher = erasure_hasher(b"state-test-erasure-key-0123456789")
    Register(Store.open(tmp_path)).add(subject=hasher(gone))
    compact(
        CompactConfig(store_root=str(tmp_path), before_month="2026-06", min_file_age_s=0),
        erasure=ErasedWrites(hasher),
    )
    [state] = _states(tmp_path)
    con = duckdb.connect()
    assert con.execute(
        "SELECT count(*), count(*) FILTER (WHERE health_id = ?) FROM read_parquet(?)",
        [gone, str(state)],
    ).fetchone() == (4, 0)


_change = st.tuples(
    st.sampled_from("pqr"),  # record id
    st.integers(1, 3),  # version
    st.sampled_from(sorted(MONTHS)),
    st.sampled_from(["01", "02"]),
    st.sampled_from(["upsert", "upsert", "delete"]),
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    first=st.lists(_change, min_size=1, max_size=8),
    late=st.lists(_change, max_size=5),
    recompact=st.booleans(),
)
def test_states_equal_ranking_every_row_for_any_history(
    first: list[tuple[str, int, str, str, str]],
    late: list[tuple[str, int, str, str, str]],
    recompact: bool,
) -> None:
    root = Path(tempfile.mkdtemp(prefix="tuyen-state-"))

    def check(root: Path) -> None:  # the whole root and catalogs restricted to provinces
        for province in (None, "01", ["01", "02"]):
            _exact(root, province)

    try:
        half = len(first) // 2
        for i, part in enumerate((first[:half], first[half:])):
            recs = [_rec(r, v, m, province=p, op=o) for r, v, m, p, o in part]
            if recs:
                _write(root, f"{TOPIC}+0+{i}.parquet", recs)
        check(root)
        _compact(root)
        check(root)
        if late:
            _write(
                root, f"{TOPIC}+7+0.parquet", [_rec(*c[:3], province=c[3], op=c[4]) for c in late]
            )
            check(root)
            if recompact:
                _compact(root)
                check(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
