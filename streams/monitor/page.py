"""The status page: one row per group coloured by status, tier freshness, top DLQ reasons."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

from streams.monitor.burrow import Status
from streams.monitor.model import Snapshot

__all__ = ["render_page"]

_COLOURS = {
    Status.OK: "#d9f2d9",
    Status.WARN: "#fff1b8",
    Status.ERR: "#f8c4c4",
    Status.STOP: "#f8c4c4",
    Status.STALL: "#f8c4c4",
    Status.REWIND: "#f8c4c4",
}

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.2em;color:#222;background:#fafafa}
h1{font-size:1.4em;margin:0 0 .2em} h2{font-size:1.1em;margin:1.2em 0 .4em}
table{border-collapse:collapse;background:#fff;max-width:100%}
td,th{border:1px solid #ccc;padding:.3em .6em} td{overflow-wrap:anywhere;max-width:24em}
th{background:#eee;text-align:left;white-space:nowrap}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.badge{font-weight:bold} .nw{white-space:nowrap} .muted{color:#666;font-size:.9em}
.wrap{display:flex;gap:2em;flex-wrap:wrap}
"""


def _fmt_secs(value: float) -> str:
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 120:
        return f"{value:.1f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def render_page(snap: Snapshot | None, refresh_s: int = 10) -> str:
    """The whole HTML page (no scripts; ``<meta http-equiv=refresh>`` reloads it)."""
    head = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f'<meta http-equiv="refresh" content="{int(refresh_s)}">'
        f"<title>tuyen — pipeline status</title><style>{_STYLE}</style></head><body>"
    )
    if snap is None:
        return head + "<h1>tuyen pipeline status</h1><p>collecting…</p></body></html>"
    taken = datetime.fromtimestamp(snap.taken_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
    overall = "all groups OK" if snap.all_ok else "attention needed"
    parts = [
        head,
        "<h1>tuyen pipeline status</h1>",
        f"<p class=muted>{escape(overall)} · taken {taken} UTC · refreshes every "
        f"{int(refresh_s)} s · <a href=/metrics>/metrics</a> · "
        "<a href=/api/status>/api/status</a></p>",
        "<h2>Consumer groups</h2><table id=groups><tr><th>group</th><th>status</th>"
        "<th>state</th><th>topics</th><th>partitions</th><th>lag (msgs)</th>"
        "<th>lag (time)</th><th>worst partitions</th></tr>",
    ]
    if not snap.groups:
        parts.append("<tr><td colspan=8>no consumer groups</td></tr>")
    for g in snap.groups:
        bad = [p for p in g.partitions if p.status is not Status.OK][:4]
        worst = ", ".join(f"{escape(p.topic)}[{p.partition}] {p.status.value}" for p in bad)
        parts.append(
            f'<tr class="group" data-status="{g.status.value}" '
            f'style="background:{_COLOURS[g.status]}">'
            f"<td>{escape(g.group)}</td><td class=badge>{g.status.value}</td>"
            f"<td class=nw>{escape(g.state)}</td><td>{escape(', '.join(g.topics))}</td>"
            f"<td class=n>{len(g.partitions)}</td><td class=n>{g.total_lag:,}</td>"
            f"<td class=n>{_fmt_secs(g.max_lag_seconds)}</td><td>{worst or '—'}</td></tr>"
        )
    parts.append("</table>")

    h = snap.health
    parts.append("<div class=wrap><div><h2>Freshness (event time → tier)</h2>")
    parts.append(
        "<table id=freshness><tr><th>tier</th><th>samples</th><th>p50</th><th>p95</th>"
        "<th>p99</th></tr>"
    )
    for tier, pc in sorted(h.freshness.items()):
        cells = (
            "".join(f"<td class=n>{_fmt_secs(v)}</td>" for v in (pc.p50, pc.p95, pc.p99))
            if pc.count
            else "<td colspan=3 class=muted>no samples</td>"
        )
        parts.append(f"<tr><td>{escape(tier)}</td><td class=n>{pc.count:,}</td>{cells}</tr>")
    parts.append("</table></div><div><h2>Top DLQ reasons</h2><table id=dlq>")
    parts.append("<tr><th>reason</th><th>records</th></tr>")
    top = h.top_dlq_reasons(10)
    if not top:
        parts.append("<tr><td colspan=2 class=muted>no DLQ records</td></tr>")
    for reason, count in top:
        parts.append(f"<tr><td>{escape(reason)}</td><td class=n>{count:,}</td></tr>")
    parts.append("</table></div><div><h2>Stages</h2><table id=stages>")
    parts.append("<tr><th>stage</th><th>events in</th><th>events out</th></tr>")
    for s in h.stages:
        parts.append(
            f"<tr><td>{escape(s.stage)}</td><td class=n>{s.events_in:,}</td>"
            f"<td class=n>{s.events_out:,}</td></tr>"
        )
    parts.append("</table></div></div></body></html>")
    return "".join(parts)
