"""No function in ``streams/`` is longer than 80 lines (issue 18: the worker's shell as small,
tested objects; a long function there is where a delivery guarantee hides).

Counted with ``ast`` from the ``def`` line to the function's last line, decorators left out;
a nested function counts inside its parent's lines and on its own."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
MAX_LINES = 80


def long_functions(folder: Path, limit: int = MAX_LINES) -> list[str]:
    """``path:line name: N lines`` of every function under ``folder`` longer than ``limit``."""
    found = []
    for path in sorted(folder.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > limit:
                    where = path.relative_to(folder.parent)
                    found.append(f"{where}:{node.lineno} {node.name}: {lines} lines")
    return found


def test_no_function_in_streams_is_longer_than_80_lines() -> None:
    assert long_functions(ROOT / "streams") == []


def test_the_check_counts_what_it_says(tmp_path: Path) -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(80))
    folder = tmp_path / "pkg"
    folder.mkdir()
    (folder / "m.py").write_text(
        f"def fits():\n{body[: body.rfind('    x79')]}\n\nasync def too_long():\n{body}"
    )
    assert long_functions(folder) == ["pkg/m.py:83 too_long: 81 lines"]
