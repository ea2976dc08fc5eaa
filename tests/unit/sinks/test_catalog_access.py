"""Stores split by owner, as the files and the catalogs see them.

- a province sink writes only its own root; files 0640, directories 0750;
- a province's catalog reads its root and nothing else: another root, any other file, an
  ATTACH, an INSTALL or turning the lock off are refused by DuckDB itself;
- a catalog file opens in the DuckDB 1.x command-line tool analysts have (from PyPI's
  ``duckdb-cli``, installed by ``make``; the test fails without it), from a copy of the root
  placed elsewhere, through paths relative to the root.
"""

from __future__ import annotations

import shutil
import stat
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from sinks.catalog import build_catalog, open_catalog
from sinks.config import sink_config
from sinks.consumer import province_router
from sinks.encode import tier_encoder
from sinks.roots import StoreRoots
from sinks.segments import SegmentWriter
from sinks.store import DIR_MODE, FILE_MODE, Store
from sinks.testing import FakeMessage, tier_record

TOPIC = "tier.province"


def _fill(roots: StoreRoots, provinces: dict[str, int]) -> None:
    """Write ``n`` encounters of each province through a single-topic sink's router."""
    default = Store.open(roots.quarantine)
    writer = SegmentWriter(
        store=default,
        topic=TOPIC,
        encoder=tier_encoder("province"),
        route=province_router(roots.province, default),
    )
    msgs = [
        FakeMessage.of(TOPIC, 0, i, tier_record("encounter", n=i, province=code))
        for i, code in enumerate(c for c, n in provinces.items() for _ in range(n))
    ]
    writer.add(0, msgs)
    writer.flush_due(force=True)


@pytest.fixture
def roots(tmp_path: Path) -> StoreRoots:
    r = StoreRoots.under(str(tmp_path / "store"))
    _fill(r, {"01": 3, "79": 2})
    return r


def test_each_province_lands_in_its_own_root_with_private_modes(roots: StoreRoots) -> None:
    hanoi, hcm = Path(roots.province_root("01")), Path(roots.province_root("79"))
    assert len(list(hanoi.rglob("*.parquet"))) == 1
    assert len(list(hcm.rglob("*.parquet"))) == 1
    assert not list((hanoi / "province").glob("province=79"))
    for path in [*hanoi.rglob("*"), *hcm.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (DIR_MODE if path.is_dir() else FILE_MODE), (path, oct(mode))
    assert stat.S_IMODE(hanoi.stat().st_mode) == DIR_MODE


def test_a_pre_merger_province_lands_with_the_province_that_owns_it_now(tmp_path: Path) -> None:
    r = StoreRoots.under(str(tmp_path))
    _fill(r, {"10": 1})  # Lào Cai before July 2025: part of today's 15
    assert r.province_root("10") == r.province_root("15")
    files = list(Path(r.province_root("15")).rglob("*.parquet"))
    assert [f.parent.parent.parent.name for f in files] == ["province=10"]


def test_province_catalog_reads_its_root_and_nothing_else(roots: StoreRoots) -> None:
    con = open_catalog(roots.province_root("01"), "province")
    assert con.execute("SELECT province_code, count(*) FROM encounter GROUP BY 1").fetchall() == [
        ("01", 3)
    ]
    other = roots.province_root("79")
    refused = [
        f"SELECT * FROM read_parquet('{other}/**/*.parquet')",
        f"SELECT * FROM read_parquet('{roots.province_root('01')}/../**/*.parquet')",
        "SELECT * FROM read_csv('/etc/passwd')",
        f"SELECT * FROM glob('{Path(other).parent}/**')",
        f"ATTACH '{Path(other).parent / 'x.duckdb'}'",
        "INSTALL httpfs",
        "SET enable_external_access = true",
        "SET allowed_directories = ['/']",
        "SET lock_configuration = false",
        "RESET lock_configuration",
    ]
    for sql in refused:
        with pytest.raises(duckdb.Error):
            con.execute(sql).fetchall()
    # still working after every refusal
    assert con.execute("SELECT count(*) FROM encounter").fetchall() == [(3,)]


def test_analysts_dead_letters_are_redacted_and_operators_get_them_whole(tmp_path: Path) -> None:
    root = tmp_path / "r"
    writer = SegmentWriter(store=Store.open(root), topic=TOPIC, encoder=tier_encoder("province"))
    writer.add(0, [FakeMessage(TOPIC, 0, 0, b'{"name": "Nguyen Van A", "phone": "0912"}')])
    writer.flush_due(force=True)
    analyst = open_catalog(root, "province")
    columns = [r[0] for r in analyst.execute("DESCRIBE dlq").fetchall()]
    assert not {"key", "value", "headers", "message"} & set(columns)
    assert analyst.execute("SELECT reason, rejected FROM dlq").fetchall() == [
        ("unknown_record_type", 1)
    ]
    with pytest.raises(duckdb.Error):
        analyst.execute("SELECT * FROM raw.dlq").fetchall()
    operators = open_catalog(root, "dlq")
    assert operators.execute("SELECT value FROM dlq").fetchall() == [
        (b'{"name": "Nguyen Van A", "phone": "0912"}',)
    ]


def duckdb_cli() -> Path:
    """The DuckDB 1.x command-line tool (PyPI ``duckdb-cli``, a dev dependency)."""
    cli = Path(sys.executable).with_name("duckdb")
    assert cli.exists(), f"no DuckDB CLI at {cli}: `make venv` installs duckdb-cli 1.5"
    version = subprocess.run(
        [str(cli), "-csv", "-noheader", "-c", "SELECT version()"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert version.startswith("v1."), f"the catalog must open in DuckDB 1.x, found {version}"
    return cli


def _cli(cli: Path, db: Path, sql: str, cwd: Path) -> str:
    res = subprocess.run(
        [str(cli), "-readonly", "-csv", "-noheader", str(db), "-c", sql],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        check=False,
    )
    assert res.returncode == 0 and "Error" not in res.stderr, res
    return res.stdout.strip()


def test_catalog_file_opens_in_the_duckdb_1x_cli_from_a_moved_copy(
    roots: StoreRoots, tmp_path: Path
) -> None:
    cli = duckdb_cli()
    root = Path(roots.province_root("01"))
    build_catalog(root, root / "catalog.duckdb", "province")
    moved = tmp_path / "elsewhere" / "soyte-01"
    shutil.copytree(root, moved)
    shutil.rmtree(root)  # nothing may still point at the original
    db = moved / "catalog.duckdb"
    assert stat.S_IMODE(db.stat().st_mode) == FILE_MODE
    # from the root's own folder, paths are relative to it
    assert _cli(cli, db, "SELECT count(*) FROM encounter", cwd=moved) == "3"
    # from anywhere else, with the one documented setting
    search = f"SET file_search_path = '{moved}'; SELECT count(*) FROM encounter_changes"
    assert _cli(cli, db, search, cwd=tmp_path).endswith("3")
    assert _cli(cli, db, "SELECT count(*) FROM person", cwd=moved) == "0"  # no files: empty
    tiers = "SELECT count(*) > 30 FROM units WHERE tier = 'province'"
    assert _cli(cli, db, tiers, cwd=tmp_path) == "true"
    assert _cli(cli, db, "SELECT count(*) FROM dlq", cwd=moved) == "0"


def test_sink_configs_name_each_province_topic_group_and_root(tmp_path: Path) -> None:
    from schemas.kafka import KafkaConnection

    roots = StoreRoots.under(str(tmp_path))
    conn = KafkaConnection(bootstrap="127.0.0.1:1")
    c = sink_config("district", kafka=conn, store_root=roots.province_root("04"), province="04")
    assert (c.topic, c.group) == ("tier.province.04", "tuyen-sink-district-04")
    assert c.store_root == str(tmp_path / "province-04")
    with pytest.raises(ValueError, match="not per province"):
        sink_config("national", kafka=conn, store_root="x", province="04")
    assert roots.for_store("national") == [str(tmp_path / "national")]
    assert roots.for_store("dlq") == [str(tmp_path / "quarantine")]
    assert roots.for_store("district", ["04", "10"]) == [
        str(tmp_path / "province-04"),
        str(tmp_path / "province-15"),
    ]
    assert len(roots.for_store("province")) == 34
