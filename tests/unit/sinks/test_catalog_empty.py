"""The catalog on an empty store: every view exists with the contract's columns."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest

from schemas.registry import RecordType
from schemas.tier import TierRecord
from sinks.catalog import build_catalog, open_catalog
from sinks.columns import national_columns, payload_columns
from sinks.exceptions import CatalogError


def _columns(con: duckdb.DuckDBPyConnection, view: str) -> list[str]:
    return [row[0] for row in con.execute(f'DESCRIBE "{view}"').fetchall()]


@pytest.mark.parametrize("tier", ["province", "national"])
def test_empty_store_has_every_view_with_contract_columns(tmp_path: Path, tier: str) -> None:
    con = open_catalog(tmp_path / "nothing-yet", tier)
    for rt in RecordType:
        if tier == "national":  # the allow-list (schemas.national), and the released QIs
            expected = [c.name for c in national_columns(rt.value)]
            current = expected + (["age_band", "birth_month"] if rt is RecordType.PERSON else [])
        else:
            expected = [*TierRecord.model_fields] + [c.name for c in payload_columns(rt.value)]
            current = expected
        assert _columns(con, rt.value) == current
        assert _columns(con, f"{rt.value}_changes") == expected
        assert con.execute(f'SELECT count(*) FROM "{rt.value}"').fetchall() == [(0,)]
    assert _columns(con, "units") == ["code", "name", "tier", "kind", "valid_from", "valid_to"]
    assert _columns(con, "links") == ["child", "parent", "valid_from", "valid_to"]
    assert _columns(con, "population") == [
        *("code", "population", "valid_from", "valid_to"),
        *("under_1", "women_15_49", "reference_date"),
    ]
    assert _columns(con, "aggregates_live") == ["unit", "period", "element", "value", "updated_at"]
    # the analysts' dead letters are redacted: no key, value, headers or message
    assert _columns(con, "dlq") == [
        "reason",
        "stage",
        "station",
        "day",
        "rejected",
        "first_rejected_at",
        "last_rejected_at",
    ]
    operators = open_catalog(tmp_path / "nothing-yet", "dlq")
    assert _columns(operators, "dlq")[:8] == [
        "reason",
        "message",
        "stage",
        "topic",
        "partition",
        "offset",
        "rejected_at",
        "value",
    ]
    # the default population sums to the 2019 census at any date
    total = con.execute("SELECT sum(population) FROM population WHERE valid_to IS NULL").fetchall()
    assert total == [(96_208_984,)]


def test_catalog_file_opens_in_plain_duckdb(tmp_path: Path) -> None:
    out = build_catalog(tmp_path / "store", tmp_path / "catalog.duckdb", "province")
    con = duckdb.connect(str(out), read_only=True)
    assert con.execute("SELECT count(*) FROM encounter").fetchall() == [(0,)]
    assert con.execute("SELECT count(*) FROM units WHERE tier = 'province'").fetchall()[0][0] > 0


def test_unknown_tier_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CatalogError):
        open_catalog(tmp_path, "commune")


def test_reference_tables_read_quoted_fields_crlf_and_missing_optional_columns(
    tmp_path: Path,
) -> None:
    """The reference CSVs are read without DuckDB's sniffer (their format is fixed:
    ``schemas.hierarchy.io``): quoted commas and quotes, CRLF line ends, plain or gzip, a
    header in any column order, a population file without its optional columns."""
    ref = tmp_path / "ref"
    ref.mkdir()
    (ref / "units.csv").write_bytes(
        b"code,tier,name,kind,valid_from,valid_to,successor\r\n"
        b'VN,national,"Viet, Nam","q ""x""",,,\r\n'
        b"01,province,Ha Noi,tp,2020-01-01,2025-07-01,02\r\n"
    )
    (ref / "links.csv").write_bytes(b"child,parent,valid_from,valid_to\r\n01,VN,,2025-07-01\r\n")
    (ref / "population.csv").write_bytes(b"code,population,valid_from,valid_to\n01,100,,\n")
    con = open_catalog(tmp_path / "store", "national", hierarchy=ref)
    assert con.execute("FROM units ORDER BY code").fetchall() == [
        ("01", "Ha Noi", "province", "tp", date(2020, 1, 1), date(2025, 7, 1)),
        ("VN", "Viet, Nam", "national", 'q "x"', None, None),
    ]
    assert con.execute("FROM links").fetchall() == [("01", "VN", None, date(2025, 7, 1))]
    assert con.execute("FROM population").fetchall() == [("01", 100, None, None, None, None, None)]
