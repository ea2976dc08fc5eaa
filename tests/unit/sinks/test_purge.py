"""Erasure and DLQ retention on real store files (written by the sinks' own encoders)."""

from __future__ import annotations

import socket
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest

from schemas.dlq import dead_letter
from schemas.examples import example_data
from sinks.catalog import open_catalog
from sinks.encode import encode_dlq, tier_encoder
from sinks.erasure import Register
from sinks.exceptions import RootUnreachable
from sinks.national import QiRow, generalise, read_release, write_release
from sinks.purge import Purge, expire_dlq
from sinks.reports.accesslog import AccessLog
from sinks.store import Store
from sinks.testing import FakeMessage, tier_record
from streams.national import national_record
from streams.pseudonymise import Pseudonymiser

P = Pseudonymiser("purge-test-key")
GONE = "0000000003"  # the person to erase: n=3 in sinks.testing.tier_record
MOTHER = "0000000002"


def _records() -> list[Any]:
    """Records of five people (n = 0..4) of several types, a person transfer of the person to
    erase, and a birth of another mother naming that person as the child."""
    out = []
    for n in range(5):
        for rt in ("person", "encounter", "immunization", "disease_case"):
            out.append(tier_record(rt, n=n, event_id=f"{rt}-{n}"))
    out.append(tier_record("person_transfer", n=3, event_id="transfer-3"))
    birth = example_data("birth", health_id=MOTHER, on=date(2026, 3, 10))
    out.append(tier_record("birth", n=2, event_id="b", data={**birth, "child_health_id": GONE}))
    out.append(tier_record("staff_snapshot", n=9, event_id="staff-9"))
    return out


def _write(store: Store, encoded: dict[str, Any], name: str) -> None:
    for directory, table in encoded.items():
        store.write_table(store.path(directory, name), table)


def _store(root: Path) -> Store:
    store = Store.open(root)
    records = _records()
    for tier in ("district", "province"):
        msgs = [FakeMessage.of(f"tier.{tier}", 0, i, r) for i, r in enumerate(records)]
        _write(store, tier_encoder(tier)(msgs), f"tier.{tier}+0+0.parquet")
    national = [national_record(r.model_dump(), P) for r in records]
    msgs = [FakeMessage.of("tier.national", 0, i, orjson.dumps(r)) for i, r in enumerate(national)]
    _write(store, tier_encoder("national")(msgs), "tier.national+0+0.parquet")
    letters = []
    for i, (key, value) in enumerate(
        [(GONE.encode(), b'{"data":{"health_id":"' + GONE.encode() + b'"}}'),
         (b"0000000001", b"{}"), (None, b"not json " + GONE.encode())]
    ):  # fmt: skip
        k, v, h = dead_letter(
            key, value, [("ce_subject", key or b"")], reason="bad_signature", message="m",
            stage="validate", topic="station.changes", partition=0, offset=i,
            rejected_at="2026-03-10T05:00:00.000000Z",
        )  # fmt: skip
        letters.append(FakeMessage("station.changes.dlq", 0, i, v, k, h))
    _write(store, encode_dlq(letters), "station.changes.dlq+0+0.parquet")
    rows = [QiRow(P.pseudonym(f"{n:010d}"), "01", "35-39", 0) for n in range(5)]
    write_release(store, generalise(rows, 5), 5, date(2026, 3, 31))
    return store


def _job(root: Path, log: AccessLog | None = None) -> Purge:
    return Purge(
        str(root),
        pseudonym=P.pseudonym,
        subject_hash=lambda hid: P.pseudonym(hid, "purge"),
        access_log=log,
    )


def _everything(root: Path) -> str:
    """Every value in every Parquet file under ``root``, as text."""
    texts = []
    for path in sorted(root.rglob("*.parquet")):
        for row in pq.read_table(path).to_pylist():
            texts.append(repr(row))
    return "\n".join(texts)


def test_purge_removes_a_persons_history_everywhere_and_logs_only_a_keyed_hash(
    tmp_path: Path,
) -> None:
    _store(tmp_path)
    before = _everything(tmp_path)
    assert GONE in before and P.pseudonym(GONE) in before
    log = AccessLog(tmp_path / "_access.log")
    report = _job(tmp_path, log).run(GONE, reason="request 2026/17")
    after = _everything(tmp_path)
    assert GONE not in after and P.pseudonym(GONE) not in after
    # 4 record types + the transfer, in each record-level tier; one DLQ letter with the id
    # in its key and value, one with it in the value only; national rows and the release
    assert report.rows == {"district": 5, "province": 5, "dlq": 2, "national": 6}
    assert report.cleared == 2, "the mother's birth record stays, the child's id cleared"
    for tier in ("district", "province"):
        con = open_catalog(tmp_path, tier)
        assert con.execute("SELECT count(*) FROM person").fetchall() == [(4,)]
        births = con.execute("SELECT record_key, child_health_id, data FROM birth").fetchall()
        assert births == [(MOTHER, None, births[0][2])] and GONE not in births[0][2]
    con = open_catalog(tmp_path, "national")
    assert con.execute("SELECT count(*) FROM person").fetchall() == [(4,)]
    assert con.execute("SELECT count(*) FROM staff_snapshot").fetchall() == [(1,)]
    assert con.execute("SELECT count(*) FROM dlq").fetchall() == [(1,)]
    # the release lost one person: four left in (01, 35-39) < k, so they are suppressed
    assert {(r.level, r.age_band) for r in read_release(Store.open(tmp_path))} == {(2, None)}
    [entry] = log.read()
    assert entry["kind"] == "purge" and entry["outcome"] == "done"
    assert entry["subject"] == P.pseudonym(GONE, "purge") and entry["reason"] == "request 2026/17"
    assert GONE not in (tmp_path / "_access.log").read_text()
    assert log.verify().ok
    # idempotent: nothing more to remove, files untouched
    mtimes = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.parquet")}
    again = _job(tmp_path).run(GONE, reason="request 2026/17")
    assert again.total == 0
    assert mtimes == {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.parquet")}


def test_a_purge_killed_between_files_finishes_when_run_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clean = tmp_path / "clean"
    _store(clean)
    _job(clean).run(GONE, reason="r")
    crashed = tmp_path / "crashed"
    _store(crashed)
    real = Store.write_table
    calls = {"n": 0}

    def dying(self: Store, path: str, table: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 3:
            raise SystemExit("killed")  # as if SIGKILLed before the third file was replaced
        return real(self, path, table)

    monkeypatch.setattr(Store, "write_table", dying)
    log = AccessLog(crashed / "_access.log")
    with pytest.raises(SystemExit):
        _job(crashed, log).run(GONE, reason="r")
    assert [e["outcome"] for e in log.read()] == ["error"]
    monkeypatch.setattr(Store, "write_table", real)
    assert GONE in _everything(crashed), "the files not yet rewritten still hold the person"
    assert not list(crashed.rglob("*.tmp")), "no temporary file left behind"
    _job(crashed, log).run(GONE, reason="r")
    assert _everything(crashed).replace(str(crashed), "") == _everything(clean).replace(
        str(clean), ""
    )
    assert [e["outcome"] for e in log.read()] == ["error", "done"]


def test_a_root_it_cannot_reach_fails_the_purge_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An object-store root the purge cannot reach (here: a real pyarrow S3 client and an
    endpoint nothing listens on, what a store down or a missing bucket looks like to it)
    fails the purge in step 0, naming that root, before the person is registered or removed
    anywhere; a local root that does not exist yet is made."""
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    _store(tmp_path / "here")
    before = _everything(tmp_path)
    log = AccessLog(tmp_path / "_access.log")
    job = Purge(
        str(tmp_path / "here"),
        pseudonym=P.pseudonym,
        subject_hash=lambda hid: P.pseudonym(hid, "purge"),
        access_log=log,
        register_also=[str(tmp_path / "not-yet"), "s3://soyte-79/tuyen"],
    )
    with pytest.raises(RootUnreachable, match=r"1 root\(s\).*registered and removed nothing: "
                       r"s3://soyte-79/tuyen \("):  # fmt: skip
        job.run(GONE, reason="r")
    assert _everything(tmp_path) == before
    assert not Register(Store.open(tmp_path / "here", create=False)).read()
    assert not Register(Store.open(tmp_path / "not-yet", create=False)).read()
    assert (tmp_path / "not-yet" / "erasure").is_dir()
    assert [e["outcome"] for e in log.read()] == ["error"]


def test_dead_letters_expire_after_the_retention(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    for i, day in enumerate(["2026-01-01", "2026-02-28", "2026-03-01", "2026-03-30"]):
        k, v, h = dead_letter(
            b"k", b"v", [], reason="not_json", message="m", stage="validate",
            topic="station.changes", partition=0, offset=i, rejected_at=f"{day}T05:00:00.000000Z",
        )  # fmt: skip
        _write(store, encode_dlq([FakeMessage("dlq", 0, i, v, k, h)]), f"dlq+0+{i}.parquet")
    now = datetime(2026, 3, 31, 3, tzinfo=UTC)  # 31 March in Vietnam
    assert expire_dlq(store, 30, now=now) == 2  # 1 January and 28 February
    days = sorted(p.parent.name for p in tmp_path.rglob("*.parquet"))
    assert days == ["day=2026-03-01", "day=2026-03-30"]
    assert expire_dlq(store, 30, now=now) == 0
    with pytest.raises(ValueError):
        expire_dlq(store, 0, now=now)
