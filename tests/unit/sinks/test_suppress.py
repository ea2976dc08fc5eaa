"""Small-cell suppression: no suppressed cell can be recovered from the published ones.

The check here is independent of the module's: exact rational Gauss–Jordan elimination of
the table's equations over the suppressed cells (``fractions``), where a suppressed cell is
recoverable exactly when the reduced echelon form holds its unit row.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sinks.reports.suppress import Equation, grouped_table, suppress


def recoverable(hidden: set[Hashable], equations: Sequence[Equation]) -> set[Hashable]:
    """Suppressed cells fixed by the equations once the published cells are known."""
    cells = sorted(hidden, key=repr)
    index = {k: i for i, k in enumerate(cells)}
    rows: list[list[Fraction]] = []
    for eq in equations:
        row = [Fraction(0)] * len(cells)
        if eq.total in index:
            row[index[eq.total]] += 1
        for p in eq.parts:
            if p in index:
                row[index[p]] -= 1
        if any(row):
            rows.append(row)
    pivot_row = 0
    pivots: list[int] = []
    for col in range(len(cells)):
        found = next((r for r in range(pivot_row, len(rows)) if rows[r][col] != 0), None)
        if found is None:
            continue
        rows[pivot_row], rows[found] = rows[found], rows[pivot_row]
        lead = rows[pivot_row][col]
        rows[pivot_row] = [x / lead for x in rows[pivot_row]]
        for r in range(len(rows)):
            if r != pivot_row and rows[r][col] != 0:
                f = rows[r][col]
                rows[r] = [a - f * b for a, b in zip(rows[r], rows[pivot_row], strict=True)]
        pivots.append(col)
        pivot_row += 1
    out = set()
    for r in range(pivot_row):
        nonzero = [i for i, x in enumerate(rows[r]) if x != 0]
        if len(nonzero) == 1:
            out.add(cells[nonzero[0]])
    return out


@st.composite
def tables(draw: st.DrawFn) -> tuple[dict[str, dict[str, int]], dict[str, str], list[str]]:
    n_groups = draw(st.integers(1, 3))
    n_cols = draw(st.integers(1, 4))
    columns = [f"c{i}" for i in range(n_cols)]
    rows: dict[str, dict[str, int]] = {}
    group_of: dict[str, str] = {}
    for g in range(n_groups):
        for leaf in range(draw(st.integers(1, 4))):
            name = f"g{g}r{leaf}"
            group_of[name] = f"g{g}"
            rows[name] = {c: draw(st.integers(0, 12)) for c in columns}
    return rows, group_of, columns


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables(), st.integers(1, 6), st.booleans())
def test_no_suppressed_cell_is_recoverable(
    table: tuple[dict[str, dict[str, int]], dict[str, str], list[str]],
    threshold: int,
    with_total: bool,
) -> None:
    rows, group_of, columns = table
    values, equations = grouped_table(
        rows, group_of, columns, total_column="total" if with_total else None
    )
    result = suppress(values, equations, threshold=threshold)
    hidden = set(result.suppressed)
    # every small cell is hidden; nothing published is below the threshold (zeros aside)
    assert {k for k, v in values.items() if 0 < v < threshold} <= hidden
    published = result.published(values)
    assert all(v is None or v == 0 or v >= threshold for v in published.values())
    # no equation leaves exactly one hidden cell (recovery by one subtraction) ...
    for eq in equations:
        assert sum(1 for m in eq.members if m in hidden) != 1, eq
    # ... and no combination of equations recovers one either (exact arithmetic)
    assert recoverable(hidden, equations) == set()


def test_a_bridge_between_two_safe_groups_is_protected() -> None:
    """Two ≥2-per-line patterns joined by one cell: that cell is determined by combining
    equations although every row and column has two suppressed cells."""
    rows = {
        "a": {"x": 2, "y": 3, "z": 1, "w": 50},
        "b": {"x": 3, "y": 2, "z": 60, "w": 70},
        "c": {"x": 80, "y": 90, "z": 2, "w": 3},
        "d": {"x": 85, "y": 95, "z": 3, "w": 2},
    }
    values, equations = grouped_table(rows, dict.fromkeys(rows, "G"), ["x", "y", "z", "w"])
    result = suppress(values, equations, threshold=4)
    assert recoverable(set(result.suppressed), equations) == set()
    assert ("a", "z") in result.suppressed


def test_zeros_are_published_unless_asked() -> None:
    values, equations = grouped_table(
        {"a": {"x": 0, "y": 9}, "b": {"x": 7, "y": 8}}, {"a": "G", "b": "G"}, ["x", "y"]
    )
    assert suppress(values, equations).suppressed == frozenset()
    hidden = suppress(values, equations, suppress_zero=True).suppressed
    assert ("a", "x") in hidden and recoverable(set(hidden), equations) == set()


def test_small_margins_are_suppressed_too() -> None:
    values, equations = grouped_table(
        {"a": {"x": 1, "y": 1}, "b": {"x": 9, "y": 9}}, {"a": "G", "b": "G"}, ["x", "y"]
    )
    hidden = suppress(values, equations).suppressed
    assert ("a", "total") in hidden  # a row total of 2 is itself a small cell


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        suppress({"a": -1}, [])
    with pytest.raises(ValueError, match="unknown cell"):
        suppress({"a": 1}, [Equation("a", ("b",))])
    with pytest.raises(ValueError, match="threshold"):
        suppress({"a": 1}, [], threshold=0)
