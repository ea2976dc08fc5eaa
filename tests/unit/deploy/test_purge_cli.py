"""`tuyen purge` and `tuyen national release` over every owner's root (no ``--root``): the
layout deployments use, a root per province, the national root, the quarantine.

Two province roots hold the person (they moved from Hà Nội to Hồ Chí Minh City), with others
only one holds; the quarantine holds their dead letters; the national root their pseudonymised
rows and the k-anonymous release. The release reads the persons of every province root; the
purge reaches every root: no file anywhere names the person afterwards, every other person
is still there, every configured root's register holds the entry, and a release made after
it leaves the person out.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest
from typer.testing import CliRunner, Result

from deploy.cli.root import app
from schemas.dlq import dead_letter
from sinks.encode import encode_dlq, tier_encoder
from sinks.erasure import Register
from sinks.national import read_release
from sinks.roots import StoreRoots
from sinks.store import Store
from sinks.testing import FakeMessage, tier_record
from streams.national import national_record
from streams.pseudonym_key import decode_pseudonym_key
from streams.pseudonymise import Pseudonymiser

KEY = base64.b64encode(os.urandom(32)).decode()
P = Pseudonymiser(decode_pseudonym_key(KEY))
GONE = "0000000003"
#: province → the persons (n of sinks.testing.tier_record) whose records its root holds
PEOPLE = {"01": range(0, 5), "79": range(3, 8)}
ID_COLUMNS = ("record_key", "health_id", "mother_health_id", "child_health_id")


def _write(store: Store, encoded: dict[str, Any], name: str) -> None:
    for directory, table in encoded.items():
        store.write_table(store.path(directory, name), table)


def _stores(base: Path) -> StoreRoots:
    roots = StoreRoots.under(str(base))
    national: list[Any] = []
    for code, people in PEOPLE.items():
        store = Store.open(roots.province_root(code))
        records = [
            tier_record(rt, n=n, province=code, event_id=f"{code}-{rt}-{n}")
            for n in people
            for rt in ("person", "encounter", "immunization")
        ]
        for tier in ("district", "province"):
            msgs = [FakeMessage.of(f"tier.{tier}.{code}", 0, i, r) for i, r in enumerate(records)]
            _write(store, tier_encoder(tier)(msgs), f"tier.{tier}.{code}+0+0.parquet")
        national += [national_record(r.model_dump(), P) for r in records]
    store = Store.open(roots.national)
    msgs = [FakeMessage.of("tier.national", 0, i, orjson.dumps(r)) for i, r in enumerate(national)]
    _write(store, tier_encoder("national")(msgs), "tier.national+0+0.parquet")
    letters = []
    for i, key in enumerate((GONE.encode(), b"0000000001")):
        k, v, h = dead_letter(
            key, b'{"data":{"health_id":"' + key + b'"}}', [("ce_subject", key)],
            reason="bad_signature", message="m", stage="validate", topic="station.changes",
            partition=0, offset=i, rejected_at="2026-03-10T05:00:00.000000Z",
        )  # fmt: skip
        letters.append(FakeMessage("station.changes.dlq", 0, i, v, k, h))
    _write(Store.open(roots.quarantine), encode_dlq(letters), "station.changes.dlq+0+0.parquet")
    return roots


def _tuyen(base: Path, *args: str) -> Result:
    env = {
        "TUYEN_DEV": "0",
        "TUYEN_PSEUDONYM_KEY": KEY,
        "TUYEN_STORE_ROOT": str(base),
        "TUYEN_K_ANONYMITY": "2",
    }
    return CliRunner().invoke(app, list(args), env=env)


def mentions(root: str, *values: str) -> int:
    """Rows of every Parquet file under ``root`` naming any of ``values`` (id columns, the
    JSON after-image, a dead letter's original key and value)."""
    con = duckdb.connect()
    try:
        con.execute(
            f"CREATE VIEW allrows AS SELECT * FROM read_parquet('{root}/**/*.parquet', "
            "union_by_name = true)"
        )
        names = {r[0] for r in con.execute("DESCRIBE allrows").fetchall()}
        params = [f"${i + 1}" for i in range(len(values))]
        tests = [f"{c} = {p}" for c in ID_COLUMNS if c in names for p in params]
        tests += [
            f"CAST({c} AS VARCHAR) LIKE '%' || {p} || '%'"
            for c in ("data", "value", "key")
            if c in names
            for p in params
        ]
        got = con.execute(f"SELECT count(*) FROM allrows WHERE {' OR '.join(tests)}", list(values))
        return int(got.fetchall()[0][0])
    finally:
        con.close()


def _persons(root: str) -> set[str]:
    con = duckdb.connect()
    try:
        got = con.execute(
            f"SELECT DISTINCT health_id FROM read_parquet('{root}/province/**/*.parquet', "
            "union_by_name = true) WHERE record_type = 'person'"
        )
        return {r[0] for r in got.fetchall()}
    finally:
        con.close()


def _released(roots: StoreRoots) -> set[str]:
    return {r.record_key for r in read_release(Store.open(roots.national, create=False))}


def test_purge_and_release_reach_every_root(tmp_path: Path) -> None:
    base = tmp_path / "store"
    roots = _stores(base)
    everyone = {f"{n:010d}" for people in PEOPLE.values() for n in people}
    gone_p = P.pseudonym(GONE)
    got = _tuyen(base, "national", "release", "--on", "2026-03-31")
    assert got.exit_code == 0, got.output
    assert _released(roots) == {P.pseudonym(h) for h in everyone}, "both roots' persons"

    got = _tuyen(base, "purge", "--health-id", GONE, "--reason", "request 2026/20")
    assert got.exit_code == 0, got.output
    for code in PEOPLE:
        root = roots.province_root(code)
        assert mentions(root, GONE) == 0, f"province {code}"
        assert _persons(root) == {f"{n:010d}" for n in PEOPLE[code]} - {GONE}, code
    assert mentions(roots.quarantine, GONE) == 0 and mentions(roots.quarantine, "0000000001")
    assert mentions(roots.national, gone_p) == 0
    assert gone_p not in _released(roots)
    for root in roots.province_roots():  # every configured root, held the person or not
        assert Register(Store.open(root, create=False)).read().subjects, root
    assert gone_p in Register(Store.open(roots.national, create=False)).read().pseudonyms

    got = _tuyen(base, "national", "release", "--on", "2026-04-30")
    assert got.exit_code == 0, got.output
    assert _released(roots) == {P.pseudonym(h) for h in everyone - {GONE}}

    again = _tuyen(base, "purge", "--health-id", GONE, "--reason", "request 2026/20")
    assert again.exit_code == 0, again.output  # idempotent: nothing left to remove


@pytest.mark.parametrize("root", ["province-01", "national", "quarantine"])
def test_the_purge_check_finds_the_person_where_they_are(tmp_path: Path, root: str) -> None:
    """The test's own probe is not blind: before the purge it finds the person in each
    root (the pseudonym in the national one)."""
    roots = _stores(tmp_path / "store")
    value = P.pseudonym(GONE) if root == "national" else GONE
    assert mentions(str(tmp_path / "store" / root), value) > 0
    assert roots.province_root("01").endswith("province-01")


def test_a_configured_root_it_cannot_make_stops_the_purge_before_any_root_is_touched(
    tmp_path: Path,
) -> None:
    """One configured province root cannot take a register (a file where its folder should
    be; on an object store, a bucket that does not exist): `tuyen purge` names it and exits
    non-zero before the person is registered or removed in any root, none half done; once
    it is fixed, the purge runs whole."""
    base = tmp_path / "store"
    roots = _stores(base)
    blocked = Path(roots.province_root("96"))
    blocked.write_text("not a folder")
    got = _tuyen(base, "purge", "--health-id", GONE, "--reason", "request 2026/21")
    assert got.exit_code == 1, got.output
    assert "error:" in got.output and f"{blocked} (" in got.output, got.output
    assert "registered and removed nothing" in got.output, got.output
    for root in (*roots.province_roots(), roots.national, roots.quarantine):
        if Path(root) != blocked and Path(root).is_dir():
            assert not Register(Store.open(root, create=False)).read(), root
    assert mentions(roots.province_root("01"), GONE) and mentions(roots.quarantine, GONE)

    blocked.unlink()
    got = _tuyen(base, "purge", "--health-id", GONE, "--reason", "request 2026/21")
    assert got.exit_code == 0, got.output
    assert Register(Store.open(str(blocked), create=False)).read().subjects
    assert mentions(roots.province_root("01"), GONE) == 0


def test_a_root_outside_the_map_is_registered_and_purged_when_named(tmp_path: Path) -> None:
    """`--also-root`: a province root the configured map does not name (a reorganisation
    ahead of the code's map) is purged and registered like the configured ones, in the same
    step 0 (before any file anywhere is rewritten)."""
    base = tmp_path / "store"
    roots = _stores(base)
    outside = tmp_path / "elsewhere" / "province-47"
    store = Store.open(outside)
    records = [tier_record("person", n=n, province="01", event_id=f"x-{n}") for n in (2, 3)]
    msgs = [FakeMessage.of("tier.province.01", 0, i, r) for i, r in enumerate(records)]
    _write(store, tier_encoder("province")(msgs), "tier.province.01+0+0.parquet")
    assert mentions(str(outside), GONE)
    got = _tuyen(
        base, "purge", "--health-id", GONE, "--reason", "request 2026/22",
        "--also-root", str(outside),
    )  # fmt: skip
    assert got.exit_code == 0, got.output
    assert mentions(str(outside), GONE) == 0 and _persons(str(outside)) == {"0000000002"}
    assert (
        Register(store).read().subjects
        == Register(Store.open(roots.province_root("96"), create=False)).read().subjects
    )
    assert mentions(roots.province_root("79"), GONE) == 0
