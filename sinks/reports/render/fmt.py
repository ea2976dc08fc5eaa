"""Number formatting shared by the outputs."""

from __future__ import annotations

__all__ = ["fmt_int", "fmt_value"]


def fmt_value(value: float | None) -> str:
    if value is None:
        return "–"
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.1f}"
    if abs(value) >= 0.01:
        return f"{value:.2f}"
    return f"{value:.2e}"


def fmt_int(value: int | None) -> str:
    return "–" if value is None else f"{value:,}"
