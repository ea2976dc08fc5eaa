"""Number formatting shared by the outputs: the figure people read, never scientific."""

from __future__ import annotations

import math

__all__ = ["fmt_int", "fmt_value"]


def fmt_value(value: float | None) -> str:
    """``1,234.5`` · ``12.35`` · ``0.0962`` · ``0.000962``: three significant digits below 1,
    two decimals up to 100, one above; never ``9.62e-04``."""
    if value is None or math.isnan(value):
        return "–"
    if value == 0:
        return "0"
    size = abs(value)
    if size >= 100:
        return f"{value:,.1f}"
    if size >= 1:
        return f"{value:.2f}"
    decimals = min(12, 2 - math.floor(math.log10(size)))
    return f"{value:.{decimals}f}"


def fmt_int(value: int | None) -> str:
    return "–" if value is None else f"{value:,}"
