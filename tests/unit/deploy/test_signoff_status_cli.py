"""`tuyen report status` over the owners' layout (a root per province): the national unit
reads every province's root and says, per province, how many stations are expected,
approved, waiting, sent back and missing, and whether the month is locked."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from typer.testing import CliRunner, Result

from deploy.cli.root import app
from schemas.hierarchy import VN_TZ, Hierarchy
from schemas.keys import DEV_KEY_SEED
from schemas.signoff import Action, DevApproverRegistry, dev_approver, make_decision
from sinks.roots import StoreRoots
from tests.report_store import StorePublisher, change, write_store

H = Hierarchy.default()
HANOI, SAIGON = ("00004", "00008"), ("25747",)  # stations of provinces 01 and 79


def _at(d: int, m: int = 11) -> datetime:
    return datetime(2026, m, d, 9, tzinfo=VN_TZ)


def _stores(base: Path) -> StoreRoots:
    roots = StoreRoots.under(str(base))
    for code, stations in (("01", HANOI), ("79", SAIGON)):
        submissions = [
            change(H, "report_submission", f"{s}:submission:2026-10", {"period": "2026-10"}, s,
                   _at(3))
            for s in stations
        ]  # fmt: skip
        write_store(Path(roots.province_root(code)), submissions, ("province",))
    sup = dev_approver("KV001")
    approved = make_decision(
        Action.APPROVE, period="2026-10", province="01", station=HANOI[0], unit="KV001",
        approver=sup,
    ).signed(DevApproverRegistry(DEV_KEY_SEED).signing_key(sup))  # fmt: skip
    StorePublisher(Path(roots.province_root("01")), lambda: _at(5)).publish(approved)
    return roots


def _status(base: Path, unit: str) -> Result:
    env = {"TUYEN_STORE_ROOT": str(base)}
    args = ["--dev", "report", "status", "--unit", unit, "--period", "2026-10"]
    return CliRunner().invoke(app, [*args, "--as", "national"], env=env)


def _row(output: str, first: str) -> list[str]:
    for line in output.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃]", line)[1:-1]]
        if cells and cells[0] == first:
            return cells
    raise AssertionError(f"no row {first} in\n{output}")


def test_the_national_unit_sums_every_province_root(tmp_path: Path) -> None:
    base = tmp_path / "store"
    _stores(base)
    got = _status(base, "VN")
    assert got.exit_code == 0, got.output
    assert _row(got.output, "01") == ["01", "126", "1", "1", "0", "124", "no"]
    assert _row(got.output, "79") == ["79", "168", "0", "1", "0", "167", "no"]
    assert "3321 expected · 1 approved · 2 waiting · 0 sent back · 3318 missing" in got.output


def test_a_province_still_lists_its_stations(tmp_path: Path) -> None:
    base = tmp_path / "store"
    _stores(base)
    got = _status(base, "01")
    assert got.exit_code == 0, got.output
    assert _row(got.output, HANOI[0])[2] == "approved"
    assert _row(got.output, HANOI[1])[2] == "submitted"
    assert "126 expected · 1 approved · 1 waiting" in got.output
