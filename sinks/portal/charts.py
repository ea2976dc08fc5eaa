"""Inline SVG charts drawn on the server: no script, no external resource.

Each chart is an ``<svg role="img">`` with a ``<title>``; the pages put the same figures in a
table beside it, so nothing is only in the picture.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

from markupsafe import Markup

__all__ = ["bars", "line", "sparkline"]

_INK = "#1d3f66"
_GRID = "#8a8a8a"


def _top(values: Sequence[float | None]) -> float:
    return max((v for v in values if v is not None), default=0.0) or 1.0


def sparkline(values: Sequence[float | None], label: str) -> Markup:
    """A small line (dashboard tiles), 120×32."""
    w, h, pad = 120, 32, 3
    top = _top(values)
    n = len(values)
    pts = [
        (pad + i * (w - 2 * pad) / max(n - 1, 1), h - pad - max(v, 0.0) / top * (h - 2 * pad))
        for i, v in enumerate(values)
        if v is not None
    ]
    body = ""
    if len(pts) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        body += f'<polyline points="{path}" fill="none" stroke="{_INK}" stroke-width="2"/>'
    if pts:
        x, y = pts[-1]
        body += f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{_INK}"/>'
    return Markup(
        f'<svg class="spark" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" '
        f"><title>{escape(label)}</title>{body}</svg>"
    )


def line(
    labels: Sequence[str],
    values: Sequence[float | None],
    title: str,
    fmt: Callable[[float | None], str],
) -> Markup:
    """A time series with a labelled point per period, 560×220."""
    w, h, left, bottom, top_pad = 560, 220, 16, 30, 22
    top = _top(values)
    n = len(labels)

    def x(i: int) -> float:
        return left + 30 + i * (w - left - 90) / max(n - 1, 1)

    def y(v: float) -> float:
        return h - bottom - max(v, 0.0) / top * (h - bottom - top_pad)

    parts = [
        f'<line x1="{left}" y1="{h - bottom}" x2="{w - left}" y2="{h - bottom}" stroke="{_GRID}"/>'
    ]
    pts = [(x(i), y(v)) for i, v in enumerate(values) if v is not None]
    if len(pts) > 1:
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in pts)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{_INK}" stroke-width="2"/>')
    for i, (lab, v) in enumerate(zip(labels, values, strict=True)):
        parts.append(f'<text x="{x(i):.1f}" y="{h - 10}" text-anchor="middle">{escape(lab)}</text>')
        if v is not None:
            parts.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3.5" fill="{_INK}"/>')
            parts.append(
                f'<text x="{x(i):.1f}" y="{y(v) - 8:.1f}" text-anchor="middle">'
                f"{escape(fmt(v))}</text>"
            )
    return Markup(
        f'<svg class="line-chart" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" '
        f"><title>{escape(title)}</title>" + "".join(parts) + "</svg>"
    )


def bars(
    labels: Sequence[str],
    values: Sequence[float | None],
    title: str,
    fmt: Callable[[float | None], str],
) -> Markup:
    """One horizontal bar per label, 560 wide."""
    row, left, width = 22, 210, 260
    h = row * max(len(labels), 1) + 8
    top = _top(values)
    parts = []
    for i, (lab, v) in enumerate(zip(labels, values, strict=True)):
        y0 = 4 + i * row
        bw = 0.0 if v is None else max(v, 0.0) / top * width
        parts.append(
            f'<text x="{left - 8}" y="{y0 + 15}" text-anchor="end">{escape(lab[:34])}</text>'
            f'<rect x="{left}" y="{y0 + 3}" width="{bw:.1f}" height="{row - 7}" fill="{_INK}"/>'
            f'<text x="{left + bw + 6:.1f}" y="{y0 + 15}">{escape(fmt(v))}</text>'
        )
    return Markup(
        f'<svg class="bar-chart" width="{left + width + 90}" height="{h}" '
        f'viewBox="0 0 {left + width + 90} {h}" role="img" '
        f"><title>{escape(title)}</title>" + "".join(parts) + "</svg>"
    )
