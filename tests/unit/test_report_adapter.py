"""One way to the reports: outside the report library itself, only
``sinks/report_adapter.py`` calls ``run_report`` (the portal, the DHIS2 export, ``tuyen
report`` and the demo go through it), so a change of the library's request shape is one edit."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ADAPTER = ROOT / "sinks" / "report_adapter.py"
LIBRARY = ROOT / "sinks" / "reports"
SOURCES = ("producers", "streams", "sinks", "schemas", "deploy")


def _calls(path: Path, name: str) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            called = f.id if isinstance(f, ast.Name) else getattr(f, "attr", None)
            if called == name:
                found.append(node.lineno)
    return found


def test_only_the_adapter_calls_the_report_library() -> None:
    callers = {
        f"{path.relative_to(ROOT)}:{line}"
        for d in SOURCES
        for path in sorted((ROOT / d).rglob("*.py"))
        if path != ADAPTER and LIBRARY not in path.parents
        for line in [*_calls(path, "run_report"), *_calls(path, "_trend_periods")]
    }
    assert not callers, f"call sinks.report_adapter.compute_report instead: {sorted(callers)}"
    assert _calls(ADAPTER, "run_report"), "the adapter is the one caller"
