"""Small-cell suppression for published tables. Pure (numpy only).

A published table is a set of **cells** (key → non-negative count) and the **equations** that
tie them: each says ``total = sum(parts)`` — a row total, a column total, a province that is
the sum of its communes, the national row that is the sum of the provinces. A reader who
sees the published cells and knows the equations can recover a hidden cell by subtraction
(or, more generally, by adding and subtracting several equations).

Method (:func:`suppress`):

1. **Primary**: every cell with ``0 < count < threshold`` (default 5) is suppressed; zeros
   are published unless ``suppress_zero`` (a zero identifies nobody; set it when "nobody"
   is itself sensitive).
2. **Complementary, by subtraction**: while some equation has exactly one suppressed cell,
   suppress a second one in it: the smallest published non-zero cell of that equation (then
   the smallest zero; ties by key), so each row, column and hierarchy group with a suppressed
   cell has at least two.
3. **Complementary, by linear algebra**: two per equation is not enough in general (a cell
   linking two otherwise safe groups is still determined by combining equations). Each
   connected group of suppressed cells is checked exactly: a suppressed cell is recoverable
   when every solution of the equations (unknowns = the suppressed cells, the published ones
   are constants) gives it the same value, i.e. when the null space of the equations
   restricted to the suppressed cells is zero at it. For each such cell the smallest
   published cell of an equation around it is suppressed too, and the check repeats until no
   suppressed cell is determined.

What it guarantees: no suppressed cell equals a fixed linear combination of published cells
(no recovery by subtraction, however many equations are combined), provided the equations
given are all the relations a reader knows.

Limits (documented in docs/portal.md): it does not bound the *interval* a reader can infer
from non-negativity (a suppressed cell in a row whose published total is 6 lies in 0..6; the
primary rule keeps totals below the threshold hidden, but a wide cell beside a small one can
still be narrowed); it does not protect against differencing between releases (two tables
for overlapping periods or hierarchies published separately) unless their equations are given
together; the complementary choice is a heuristic (it suppresses more than an optimal
solver would, never less than needed).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar, cast

import numpy as np

__all__ = [
    "DEFAULT_THRESHOLD",
    "Equation",
    "Suppression",
    "determined",
    "grouped_table",
    "suppress",
]

DEFAULT_THRESHOLD = 5
K = TypeVar("K", bound=Hashable)
_TOL = 1e-9


@dataclass(frozen=True, slots=True)
class Equation:
    """``cells[total] == sum(cells[p] for p in parts)``, known to every reader."""

    total: Hashable
    parts: tuple[Hashable, ...]

    @property
    def members(self) -> tuple[Hashable, ...]:
        return (self.total, *self.parts)


@dataclass(frozen=True, slots=True)
class Suppression:
    """Which cells to withhold: ``primary`` (small) and ``complementary`` (to protect them)."""

    primary: frozenset[Hashable]
    complementary: frozenset[Hashable]

    @property
    def suppressed(self) -> frozenset[Hashable]:
        return self.primary | self.complementary

    def published(self, values: Mapping[K, int]) -> dict[K, int | None]:
        """``values`` with every suppressed cell replaced by ``None``."""
        hidden = self.suppressed
        return {k: (None if k in hidden else v) for k, v in values.items()}


def _order(values: Mapping[Hashable, int], key: Hashable) -> tuple[int, int, str]:
    v = values[key]
    return (1 if v == 0 else 0, v, repr(key))  # smallest non-zero first, zeros last


def _pick(
    values: Mapping[Hashable, int], candidates: Iterable[Hashable], hidden: set[Hashable]
) -> Hashable | None:
    free = [c for c in candidates if c not in hidden]
    return min(free, key=lambda k: _order(values, k)) if free else None


def _components(
    hidden: set[Hashable], equations: Sequence[Equation]
) -> list[tuple[list[Hashable], list[Equation]]]:
    """Groups of suppressed cells connected by equations, with the equations touching each."""
    parent: dict[Hashable, Hashable] = {k: k for k in hidden}

    def find(k: Hashable) -> Hashable:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    touching: list[tuple[Equation, list[Hashable]]] = []
    for eq in equations:
        inside = [m for m in eq.members if m in hidden]
        if not inside:
            continue
        touching.append((eq, inside))
        root = find(inside[0])
        for m in inside[1:]:
            other = find(m)
            if other != root:
                parent[other] = root
    groups: dict[Hashable, tuple[list[Hashable], list[Equation]]] = {}
    for k in hidden:
        groups.setdefault(find(k), ([], []))[0].append(k)
    for eq, inside in touching:
        groups[find(inside[0])][1].append(eq)
    return list(groups.values())


def determined(hidden: Iterable[Hashable], equations: Sequence[Equation]) -> set[Hashable]:
    """The suppressed cells a reader can compute exactly from the published ones."""
    out: set[Hashable] = set()
    for cells, eqs in _components(set(hidden), equations):
        index = {k: i for i, k in enumerate(cells)}
        if not eqs:
            continue
        a = np.zeros((len(eqs), len(cells)))
        for row, eq in enumerate(eqs):
            if eq.total in index:
                a[row, index[eq.total]] += 1.0
            for p in eq.parts:
                if p in index:
                    a[row, index[p]] -= 1.0
        _, s, vt = np.linalg.svd(a)
        rank = int((s > _TOL * max(1.0, float(s[0]) if len(s) else 1.0)).sum())
        null = vt[rank:]
        for k, i in index.items():
            if null.shape[0] == 0 or bool(np.all(np.abs(null[:, i]) < 1e-7)):
                out.add(k)
    return out


def suppress(
    values: Mapping[K, int],
    equations: Sequence[Equation],
    *,
    threshold: int = DEFAULT_THRESHOLD,
    suppress_zero: bool = False,
) -> Suppression:
    """Primary and complementary suppression of ``values`` under ``equations`` (see module)."""
    if threshold < 1:
        raise ValueError("threshold must be at least 1")
    vals = cast(Mapping[Hashable, int], values)
    for k, v in vals.items():
        if v < 0:
            raise ValueError(f"negative count in cell {k!r}")
    for eq in equations:
        for m in eq.members:
            if m not in vals:
                raise ValueError(f"equation refers to unknown cell {m!r}")
    primary: set[Hashable] = {
        k for k, v in vals.items() if v < threshold and (v > 0 or suppress_zero)
    }
    hidden: set[Hashable] = set(primary)
    by_cell: dict[Hashable, list[Equation]] = {}
    for eq in equations:
        for m in eq.members:
            by_cell.setdefault(m, []).append(eq)
    while True:
        changed = True
        while changed:  # step 2: no equation with exactly one hidden cell
            changed = False
            for eq in equations:
                if sum(1 for m in eq.members if m in hidden) == 1:
                    pick = _pick(vals, eq.members, hidden)
                    if pick is not None:
                        hidden.add(pick)
                        changed = True
        exposed = determined(hidden, equations)  # step 3: nothing recoverable at all
        if not exposed:
            break
        added = False
        for cell in sorted(exposed, key=repr):
            around = [m for eq in by_cell.get(cell, []) for m in eq.members]
            pick = _pick(vals, around, hidden)
            if pick is None:  # every neighbour hidden already: widen to the neighbours' eqs
                wider = [m for n in around for eq in by_cell.get(n, []) for m in eq.members]
                pick = _pick(vals, wider, hidden)
            if pick is not None:
                hidden.add(pick)
                added = True
        if not added:  # nothing left to hide around them: hide the exposed cells' groups
            raise RuntimeError(f"cannot protect cells {sorted(map(repr, exposed))[:5]}")
    return Suppression(frozenset(primary), frozenset(hidden - primary))


def grouped_table(
    rows: Mapping[str, Mapping[str, int]],
    group_of: Mapping[str, str],
    columns: Sequence[str],
    *,
    total_column: str | None = "total",
    grand: str = "*",
) -> tuple[dict[tuple[str, str], int], list[Equation]]:
    """A two-level table (leaf rows grouped under group rows, one grand row) with its
    equations: each row's ``total_column`` is the sum of its columns; each group's cell is
    the sum of its leaves' cells; the grand row's cell is the sum of the groups'.

    Keys are ``(row, column)``; a leaf's missing column counts 0. Group and grand rows are
    computed here, so the margins are consistent by construction.
    """
    cols = [*columns, *([total_column] if total_column else [])]
    values: dict[tuple[str, str], int] = {}
    equations: list[Equation] = []
    members: dict[str, list[str]] = {}
    for leaf, cells in rows.items():
        members.setdefault(group_of[leaf], []).append(leaf)
        for c in columns:
            values[(leaf, c)] = int(cells.get(c, 0))
    for group, leaves in members.items():
        for c in columns:
            values[(group, c)] = sum(values[(leaf, c)] for leaf in leaves)
    for c in columns:
        values[(grand, c)] = sum(values[(g, c)] for g in members)
    all_rows = [*rows, *members, grand]
    if total_column:
        for r in all_rows:
            values[(r, total_column)] = sum(values[(r, c)] for c in columns)
            equations.append(Equation((r, total_column), tuple((r, c) for c in columns)))
    for c in cols:
        for group, leaves in members.items():
            equations.append(Equation((group, c), tuple((leaf, c) for leaf in leaves)))
        equations.append(Equation((grand, c), tuple((g, c) for g in members)))
    return values, equations
