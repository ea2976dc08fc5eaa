"""No import cycle anywhere in the project, and the packages import one way.

The graph is built with ``ast`` from every import statement of the five packages, those inside
functions included (a lazy import is still a dependency), those under ``if TYPE_CHECKING:``
left out (never run): ``from a.b import c`` is an edge to the module ``a.b.c`` when there is
one, else to ``a.b``.

Layers: ``schemas`` (the contract) imports none of the others; ``producers``, ``streams`` and
``sinks`` import only ``schemas``; ``deploy`` (settings, broker, the CLI) may import them all.
Entry points (``__main__`` modules, never imported) may import ``deploy``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("schemas", "producers", "streams", "sinks", "deploy")
ALLOWED = {
    "schemas": {"schemas"},
    "producers": {"producers", "schemas"},
    "streams": {"streams", "schemas"},
    "sinks": {"sinks", "schemas"},
    "deploy": set(PACKAGES),
}


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _runtime_nodes(node: ast.AST) -> Iterator[ast.AST]:
    """Every node below ``node`` except the bodies of ``if TYPE_CHECKING:``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
            for other in child.orelse:
                yield other
                yield from _runtime_nodes(other)
            continue
        yield child
        yield from _runtime_nodes(child)


def _imports(name: str, path: Path, modules: dict[str, Path]) -> Iterator[tuple[str, int]]:
    is_pkg = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in PACKAGES:
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_pkg else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            if base.split(".")[0] not in PACKAGES:
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                yield (sub if sub in modules else base), node.lineno


def graph() -> dict[str, dict[str, int]]:
    modules = _modules()
    return {
        name: {target: line for target, line in _imports(name, path, modules) if target != name}
        for name, path in modules.items()
    }


def test_no_import_cycle() -> None:
    edges = graph()
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []
    cycles: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, {})):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*stack[stack.index(nxt) :], nxt]))
            elif nxt in edges and nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_packages_import_one_way() -> None:
    wrong = [
        f"{src} imports {dst} (line {line})"
        for src, targets in graph().items()
        for dst, line in targets.items()
        if dst.split(".")[0] not in ALLOWED[src.split(".")[0]] and not src.endswith("__main__")
    ]
    assert not wrong, "\n".join(wrong)


def test_the_graph_sees_lazy_and_relative_imports() -> None:
    edges = graph()
    assert "deploy.cli.root" in edges["deploy.cli"]  # imported inside main()
    assert "deploy" in {t.split(".")[0] for t in edges["streams.__main__"]}
    assert "schemas.kafka" in edges["producers.sdk.publisher"]
