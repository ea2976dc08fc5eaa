"""The erasure register (sinks.erasure): a purge sticks against a writer running beside it.

A sink's writer (ErasedWrites, with a register view read before the purge) and the purge
(sinks.purge.Purge) run on real files; one of them stops at any of its store operations while
the other runs whole, and either may be killed at any operation (then run again, as a
restarted sink or an operator would). Afterwards no file holds the person, and every other
row the writer wrote is there.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sinks.encode import tier_encoder
from sinks.erasure import (
    REGISTER_DIR,
    Erased,
    ErasedWrites,
    ErasureKeyMismatch,
    ErasureKeyMissing,
    Register,
    WriteJob,
    erase_rows,
    erasure_hasher,
    key_check,
)
from sinks.national import read_release, release_person_qi
from sinks.purge import Purge
from sinks.store import Store
from sinks.testing import FakeMessage
from streams.national import national_record
from tests.unit.sinks.test_purge import GONE, P, _everything, _records, _store

H = erasure_hasher(P.digest("register", "erasure-key"))


class Crash(Exception):
    pass


def _jobs(store: Store) -> list[WriteJob]:
    """What a sink writes next: the same people's records again (a replay, or rows that were
    in an open segment's memory at purge time), under new names, in every tier."""
    records = _records()
    jobs = []
    encoded: dict[str, pa.Table] = {}
    for tier in ("district", "province"):
        msgs = [FakeMessage.of(f"tier.{tier}", 1, i, r) for i, r in enumerate(records)]
        encoded.update(tier_encoder(tier)(msgs))
    national = [national_record(r.model_dump(), P) for r in records]
    msgs = [FakeMessage.of("tier.national", 1, i, orjson.dumps(r)) for i, r in enumerate(national)]
    encoded.update(tier_encoder("national")(msgs))
    for directory, table in sorted(encoded.items()):
        jobs.append(WriteJob(store, directory, store.path(directory, "t+1+0.parquet"), table))
    return jobs


def _purge(root: Path) -> Purge:
    return Purge(
        str(root),
        pseudonym=P.pseudonym,
        subject_hash=lambda hid: P.pseudonym(hid, "purge"),
        erasure_hash=H,
    )


class Schedule:
    """Counts the outer actor's store operations: at ``at`` the inner actor runs whole; at
    ``crash`` the outer one is killed."""

    def __init__(self, at: int, crash: int | None, inner: Callable[[], object]) -> None:
        self.at, self.crash, self.inner = at, crash, inner
        self.ops, self.inner_done, self.active = 0, False, True

    def tick(self) -> None:
        if not self.active:
            return
        if self.ops == self.at and not self.inner_done:
            self.active = False
            try:
                self.inner()
            finally:
                self.active, self.inner_done = True, True
        if self.ops == self.crash:
            self.ops += 1
            raise Crash(f"killed at operation {self.crash}")
        self.ops += 1


def _hooked(monkeypatch: pytest.MonkeyPatch, schedule: Schedule) -> None:
    for name in ("write_table", "write_bytes", "delete", "list_files"):
        real = getattr(Store, name)

        def hooked(self: Store, *a: Any, _real: Any = real, **k: Any) -> Any:
            schedule.tick()
            return _real(self, *a, **k)

        monkeypatch.setattr(Store, name, hooked)


def _check(root: Path, jobs: list[WriteJob]) -> None:
    text = _everything(root)
    assert GONE not in text and P.pseudonym(GONE) not in text
    gone = Erased(frozenset([H(GONE)]), frozenset([P.pseudonym(GONE)]))
    for job in jobs:
        expected = erase_rows(job.table, job.directory, gone, H).table
        path = Path(job.path)
        if not expected.num_rows:
            assert not path.exists()
            continue
        got = pq.read_table(path)
        assert sorted(got["event_id"].to_pylist()) == sorted(expected["event_id"].to_pylist())


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    writer_outer=st.booleans(),
    at=st.integers(0, 40),
    crash=st.none() | st.integers(0, 40),
)
def test_a_purge_sticks_against_a_writer_at_every_interleaving_and_crash(
    tmp_path_factory: pytest.TempPathFactory,
    writer_outer: bool,
    at: int,
    crash: int | None,
) -> None:
    root = tmp_path_factory.mktemp("root")
    store = _store(root)
    jobs = _jobs(store)
    writer = ErasedWrites(H)
    writer.view(store)  # read at the previous flush: empty, stale once the purge registers

    def write() -> None:
        writer.write(jobs)

    def purge() -> None:
        _purge(root).run(GONE, reason="r")

    outer, inner = (write, purge) if writer_outer else (purge, write)
    schedule = Schedule(at, crash, inner)
    with pytest.MonkeyPatch.context() as mp:
        _hooked(mp, schedule)
        with contextlib.suppress(Crash):
            outer()
        if not schedule.inner_done:  # the outer one ended (or died) before ``at``
            schedule.active = False
            inner()
    if crash is not None and crash < schedule.ops:  # killed: restarted, from nothing
        if writer_outer:
            writer = ErasedWrites(H)
            write()
        else:
            purge()
    _check(root, jobs)


def test_without_the_reread_a_stale_view_writes_the_person_back(tmp_path: Path) -> None:
    """The negative control: step 2 is what closes the race (a view read before the purge
    registered, rows written after the purge's sweep)."""
    store = _store(tmp_path)
    jobs = _jobs(store)
    writer = ErasedWrites(H)
    writer.view(store)
    _purge(tmp_path).run(GONE, reason="r")
    sizes = [writer.step1_write(j) for j in jobs]  # steps 1 only: the person is back
    assert all(sizes) and GONE in _everything(tmp_path)
    assert writer.step2_reread([store]) == {store.base}
    for job in jobs:
        writer.step3_rewrite(job)
    assert writer.step2_reread([store]) == set()
    _check(tmp_path, jobs)


def test_the_register_holds_no_health_id_and_an_empty_one_costs_nothing(tmp_path: Path) -> None:
    store = _store(tmp_path)
    [job, *_] = _jobs(store)
    empty = Register(store).read()
    assert not empty
    assert erase_rows(job.table, job.directory, empty, None).table is job.table
    _purge(tmp_path).run(GONE, reason="r")
    names = sorted(p.name for p in (tmp_path / REGISTER_DIR).iterdir())
    subject, pseudonym, check = H(GONE), P.pseudonym(GONE), key_check(H)
    expected = [f"subject-{subject}.entry", f"pseudonym-{pseudonym}.entry", f"key-{check}.entry"]
    assert names == sorted(expected)
    for path in (tmp_path / REGISTER_DIR).iterdir():
        assert GONE not in path.read_text()
    assert Register(store).read() == Erased(
        frozenset([subject]), frozenset([pseudonym]), frozenset([check])
    )


def test_a_writer_without_the_erasure_key_stops_rather_than_write_the_person(
    tmp_path: Path,
) -> None:
    store = _store(tmp_path)
    jobs = _jobs(store)
    _purge(tmp_path).run(GONE, reason="r")
    national = [j for j in jobs if j.directory.startswith("national/")]
    ErasedWrites(None).write(national)  # national rows carry pseudonyms: no key needed
    record = [j for j in jobs if j.directory.startswith("province/")]
    with pytest.raises(ErasureKeyMissing, match="TUYEN_ERASURE_KEY"):
        ErasedWrites(None).write(record)


def test_a_writer_with_another_erasure_key_stops_rather_than_write_the_person(
    tmp_path: Path,
) -> None:
    store = _store(tmp_path)
    jobs = [j for j in _jobs(store) if j.directory.startswith("province/")]
    _purge(tmp_path).run(GONE, reason="r")
    other = erasure_hasher(P.digest("register", "another-key"))  # not the purge's key
    with pytest.raises(ErasureKeyMismatch, match="TUYEN_ERASURE_KEY"):
        ErasedWrites(other).write(jobs)
    ErasedWrites(H).write(jobs)  # the purge's key: applied
    assert GONE not in str(pq.read_table(jobs[0].path).to_pylist())


def test_a_release_built_from_a_stale_catalog_leaves_the_erased_person_out(
    tmp_path: Path,
) -> None:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE person AS SELECT lpad(CAST(i AS VARCHAR), 10, '0') AS health_id, "
        "'01' AS province_code, DATE '1990-01-01' + CAST(i AS INTEGER) AS birth_date "
        "FROM range(10) t(i)"
    )
    store = Store.open(tmp_path)
    Register(store).add(pseudonym=P.pseudonym(GONE))  # the purge's step 0, before the build
    report = release_person_qi(con, str(tmp_path), P.pseudonym, k=2, on=date(2026, 3, 31))
    keys = {r.record_key for r in read_release(store)}
    assert report.persons == 9 and len(keys) == 9 and P.pseudonym(GONE) not in keys
