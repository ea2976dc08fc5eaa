"""Principals, scope refusal, the access log and the CLI's exit codes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest
import typer
from typer.testing import CliRunner

from deploy.cli import report as report_cli
from deploy.cli.root import app as tuyen
from schemas.hierarchy import Hierarchy
from sinks.reports import (
    AccessDenied,
    AccessLog,
    BadRequest,
    ReportRequest,
    parse_principal,
    run_report,
)
from tests.report_store import Stores
from tests.unit.sinks.test_report_indicators import scenario


@pytest.fixture(scope="module")
def h() -> Hierarchy:
    return Hierarchy.default()


@pytest.fixture(scope="module")
def stores(h: Hierarchy, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stores]:
    s = Stores(tmp_path_factory.mktemp("access"), scenario(h))
    yield s
    s.close()


@pytest.fixture(scope="module")
def con(stores: Stores) -> duckdb.DuckDBPyConnection:
    """The province tier: what national reports read too (``sinks.reports.source_tier``)."""
    return stores.con("province")


def req(kind: str, tier: str, unit: str | None, period: str, principal: str) -> ReportRequest:
    return ReportRequest(kind=kind, tier=tier, unit=unit, period=period, principal=principal)


def test_a_request_is_keyword_only_frozen_and_names_its_principal() -> None:
    with pytest.raises(TypeError):
        ReportRequest("health", "national", "2026-10", "national")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="principal"):
        ReportRequest(kind="health", tier="national", period="2026-10")  # type: ignore[call-arg]
    r = req("health", "national", None, "2026-10", "national")
    with pytest.raises(AttributeError):
        r.principal = "province:01"  # type: ignore[misc]


def test_run_report_takes_only_a_request(con: Any, h: Hierarchy) -> None:
    with pytest.raises(TypeError, match="ReportRequest"):
        run_report(con, h, "health")  # type: ignore[arg-type]


def test_principals_parse() -> None:
    assert str(parse_principal("national")) == "national"
    assert str(parse_principal("province:01")) == "province:01"
    assert str(parse_principal("district:KV001")) == "district:KV001"
    for bad in ("station:00004", "province", "province:", "admin"):
        with pytest.raises(BadRequest):
            parse_principal(bad)


@pytest.mark.parametrize(
    ("principal", "tier", "unit", "allowed"),
    [
        ("national", "province", "79", True),
        ("province:01", "province", "01", True),
        ("province:01", "district", "KV001", True),
        ("province:01", "province", "79", False),
        ("province:01", "national", None, False),
        ("province:01", "district", "KV718", False),
        ("district:KV001", "district", "KV001", True),
        ("district:KV001", "district", "KV002", False),
        ("district:KV001", "province", "01", False),
    ],
)
def test_scope_is_enforced_and_logged(
    con: Any, h: Hierarchy, tmp_path: Path, principal: str, tier: str, unit: str | None,
    allowed: bool,
) -> None:  # fmt: skip
    log = AccessLog(tmp_path / "access.log")
    request = req("resources", tier, unit, "2026-10", principal)
    if allowed:
        run_report(con, h, request, access_log=log)
    else:
        with pytest.raises(AccessDenied, match="access refused"):
            run_report(con, h, request, access_log=log)
    (entry,) = log.read()
    assert entry["outcome"] == ("allowed" if allowed else "refused")
    assert entry["principal"] == principal
    assert (entry["kind"], entry["tier"], entry["period"]) == ("resources", tier, "2026-10")
    assert entry["unit"] == (unit or "VN")
    assert "time" in entry


def test_bad_requests_are_logged_as_errors(con: Any, h: Hierarchy, tmp_path: Path) -> None:
    log = AccessLog(tmp_path / "a.log")
    with pytest.raises(BadRequest, match="is a district"):
        run_report(con, h, req("health", "province", "KV001", "2026-10", "national"),
                   access_log=log)  # fmt: skip
    with pytest.raises(BadRequest, match="unknown report kind"):
        run_report(con, h, req("wealth", "national", None, "2026-10", "national"),
                   access_log=log)  # fmt: skip
    with pytest.raises(BadRequest, match="bad period"):
        run_report(con, h, req("health", "national", None, "2026-13", "national"),
                   access_log=log)  # fmt: skip
    assert [e["outcome"] for e in log.read()] == ["error", "error", "error"]


@pytest.fixture
def cli(con: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[typer.Typer]:
    class _Con:  # the CLI closes its connection; keep the module's open
        def __getattr__(self, name: str) -> Any:
            return getattr(con, name)

        def close(self) -> None:
            pass

    monkeypatch.setattr(report_cli, "_open", lambda *a: _Con())
    monkeypatch.setenv("TUYEN_ACCESS_LOG", str(tmp_path / "cli-access.log"))
    yield tuyen


def test_cli_refuses_outside_scope_with_exit_3(cli: typer.Typer, tmp_path: Path) -> None:
    args = ["report", "health", "--tier", "province", "--unit", "79", "--period", "2026-10",
            "--as", "province:01"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 3
    assert "access refused" in result.output
    lines = (tmp_path / "cli-access.log").read_bytes().splitlines()
    assert orjson.loads(lines[-1])["outcome"] == "refused"


def test_cli_writes_outputs(cli: typer.Typer, tmp_path: Path) -> None:
    base = ["report", "resources", "--tier", "province", "--unit", "01", "--period", "2026-10",
            "--as", "province:01"]  # fmt: skip
    ok = CliRunner().invoke(cli, base)
    assert ok.exit_code == 0, ok.output
    assert "with a doctor" in ok.output
    for fmt, name in [("csv", "r.csv"), ("parquet", "r.parquet"), ("html", "r.html"),
                      ("fhir", "r.json")]:  # fmt: skip
        out = tmp_path / name
        res = CliRunner().invoke(cli, [*base, "--format", fmt, "--out", str(out)])
        assert res.exit_code == 0, res.output
        assert out.stat().st_size > 0
    bad = CliRunner().invoke(cli, [*base[:-2], "--as", "province:01", "--period", "2026-Q9"])
    assert bad.exit_code == 2
    log = [orjson.loads(x) for x in (tmp_path / "cli-access.log").read_bytes().splitlines()]
    assert [e["outcome"] for e in log] == ["allowed"] * 5 + ["error"]
