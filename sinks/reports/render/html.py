"""A self-contained HTML page: per indicator, a bar chart across the child units and a trend
over sub-periods, both inline SVG generated here (no scripts, no network)."""

from __future__ import annotations

from html import escape

from sinks.reports.model import Report
from sinks.reports.render.fmt import fmt_int, fmt_value

__all__ = ["bar_chart", "render_html", "trend_chart"]

_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:72rem}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}
table{border-collapse:collapse;font-size:.9rem}
td,th{padding:.2rem .6rem;border-bottom:1px solid #ddd}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.charts{display:flex;flex-wrap:wrap;gap:1.5rem}.def{color:#555;font-size:.85rem;max-width:60rem}
svg text{font-size:11px;font-family:system-ui,sans-serif}
"""


def bar_chart(labels: list[str], values: list[float | None], unit: str) -> str:
    """Horizontal bars, one per label; missing values drawn as an empty row marked '–'."""
    row, left, width = 18, 190, 300
    height = row * max(len(labels), 1) + 10
    top = max((v for v in values if v is not None), default=0.0) or 1.0
    parts = [
        f'<svg class="bar-chart" xmlns="http://www.w3.org/2000/svg" width="{left + width + 90}" '
        f'height="{height}" role="img" aria-label="{escape(unit)} by child unit">'
    ]
    for i, (label, v) in enumerate(zip(labels, values, strict=True)):
        y = 5 + i * row
        parts.append(
            f'<text x="{left - 6}" y="{y + 12}" text-anchor="end">{escape(label[:32])}</text>'
        )
        w = 0.0 if v is None else max(0.0, v) / top * width
        parts.append(
            f'<rect class="bar" x="{left}" y="{y + 2}" width="{w:.1f}" height="{row - 5}" '
            'fill="#2b7bb9"/>'
        )
        parts.append(f'<text x="{left + w + 4:.1f}" y="{y + 12}">{escape(fmt_value(v))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def trend_chart(labels: list[str], values: list[float | None], unit: str) -> str:
    """A line over sub-periods with a dot and a label per point."""
    w, h, pad = 420, 170, 34
    n = len(labels)
    known = [v for v in values if v is not None]
    lo, hi = 0.0, (max(known) if known else 1.0) or 1.0

    def xy(i: int, v: float) -> tuple[float, float]:
        x = pad + (i * (w - 2 * pad) / max(n - 1, 1))
        y = h - pad - (v - lo) / (hi - lo) * (h - 2 * pad)
        return x, y

    parts = [
        f'<svg class="trend-chart" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'role="img" aria-label="trend of {escape(unit)}">',
        f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="#999"/>',
    ]
    points = [xy(i, v) for i, v in enumerate(values) if v is not None]
    if len(points) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="#c0392b" stroke-width="2"/>')
    for i, (label, v) in enumerate(zip(labels, values, strict=True)):
        x, _ = xy(i, 0.0)
        parts.append(
            f'<text x="{x:.1f}" y="{h - pad + 14}" text-anchor="middle">{escape(label)}</text>'
        )
        if v is not None:
            px, py = xy(i, v)
            parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="#c0392b"/>')
            parts.append(
                f'<text x="{px:.1f}" y="{py - 6:.1f}" text-anchor="middle">'
                f"{escape(fmt_value(v))}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


def _suppression_note(report: Report) -> str:
    s = report.suppression
    if s is None:
        return ""
    return (
        f'<p class="suppressed">Small cells: counts from 1 to {s.threshold - 1} are not shown '
        f"(–), nor are {s.complementary} further cells that would let them be recovered by "
        f"subtraction ({s.primary} small, {s.complementary} complementary).</p>"
    )


def render_html(report: Report) -> str:
    """The whole page as text."""
    title = (
        f"{report.kind.capitalize()} report · {report.unit_name} ({report.unit_code}) · "
        f"{report.period.label}"
    )
    shown = report.shown_indicators()
    rows = "".join(
        f"<tr><td>{escape(ind.name)}</td><td class=n>{escape(fmt_value(c.value))}</td>"
        f"<td>{escape(ind.unit)}</td><td class=n>{fmt_int(c.numerator)}</td>"
        f"<td class=n>{fmt_int(c.denominator)}</td></tr>"
        for ind in shown
        for c in [report.cell(ind.code)]
    )
    sections = []
    labels = [f"{code} {name}" for code, name in report.children]
    for ind in shown:
        values = [report.value(ind.code, code) for code, _ in report.children]
        trend = [p for p in report.trend if p.indicator == ind.code]
        sections.append(
            f'<section class="indicator" id="{escape(ind.code)}" '
            f'data-indicator="{escape(ind.code)}">'
            f"<h2>{escape(ind.name)} ({escape(ind.unit)})</h2>"
            f'<p class="def">Numerator: {escape(ind.numerator)}. Denominator: '
            f"{escape(ind.denominator)}. Attributed to {escape(ind.attribution)}. Definition: "
            f"{escape(ind.definition)}. Records: {escape(ind.source)} ({ind.nature})."
            + (
                f" {escape(report.scaling_note(ind).capitalize())}."
                if report.scaling_note(ind)
                else ""
            )
            + "</p>"
            '<div class="charts">'
            f"<figure><figcaption>by child unit</figcaption>{bar_chart(labels, values, ind.unit)}"
            "</figure>"
            + (
                f"<figure><figcaption>trend</figcaption>"
                f"{trend_chart([p.period for p in trend], [p.value for p in trend], ind.unit)}"
                "</figure>"
                if trend
                else ""
            )
            + "</div></section>"
        )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{escape(title)}</h1>"
        f"<p>Tier {escape(report.tier)}, hierarchy {escape(report.hierarchy_mode)} "
        f"(structure of {report.reference_date.isoformat()}), months "
        f"{report.period.first}..{report.period.last}, principal {escape(report.principal)}, "
        f"generated {report.generated_at.isoformat(timespec='seconds')}.</p>"
        + "".join(f'<p class="about">{escape(line)}</p>' for line in report.about())
        + _suppression_note(report)
        + "<table><tr><th>indicator</th><th>value</th><th>unit</th><th>numerator</th>"
        f"<th>denominator</th></tr>{rows}</table>" + "".join(sections) + "</body></html>"
    )
