"""One way into the reports: outside the report library itself (``sinks/reports/``), code
reaches the library only through ``sinks.reports.run_report(con, hierarchy, request, *,
access_log=..., config=...)`` with a ``ReportRequest`` (the portal, the DHIS2 export, ``tuyen
report``, the demo, the benchmark): no private function of the library, no request fields
spread as arguments. A new request field is then a field of ``ReportRequest`` and no caller
changes; ``run_report`` itself refuses anything but a ``ReportRequest``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from schemas.hierarchy import Hierarchy
from sinks.reports import run_report

ROOT = Path(__file__).resolve().parents[3]
LIBRARY = ROOT / "sinks" / "reports"
SOURCES = ("producers", "streams", "sinks", "schemas", "deploy", "benchmarks")
#: the keywords run_report takes besides the request (everything else is in the request)
KEYWORDS = {"access_log", "config"}


def _sources() -> list[Path]:
    return [
        path
        for d in SOURCES
        for path in sorted((ROOT / d).rglob("*.py"))
        if LIBRARY not in path.parents
    ]


def _run_report_calls(tree: ast.AST) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (getattr(node.func, "id", None) or getattr(node.func, "attr", None)) == "run_report"
    ]


def test_callers_pass_one_request_and_nothing_else() -> None:
    wrong, calls = [], 0
    for path in _sources():
        for call in _run_report_calls(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            calls += 1
            keywords = {k.arg for k in call.keywords}
            if len(call.args) != 3 or not keywords <= KEYWORDS:
                wrong.append(f"{path.relative_to(ROOT)}:{call.lineno}")
    assert not wrong, f"run_report(con, hierarchy, ReportRequest(...), ...): {wrong}"
    assert calls >= 4, "the CLI, the portal, the DHIS2 export and the demo call run_report"


def test_nothing_outside_the_library_uses_its_private_functions() -> None:
    found = []
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sinks.reports"):
                found += [
                    f"{path.relative_to(ROOT)}:{node.lineno} {a.name}"
                    for a in node.names
                    if a.name.startswith("_")
                ]
    assert not found, f"private names of sinks.reports imported: {found}"


def test_run_report_refuses_anything_but_a_request() -> None:
    with pytest.raises(TypeError, match="ReportRequest"):
        run_report(None, Hierarchy.default(), "health")  # type: ignore[arg-type]
