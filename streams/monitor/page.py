"""The status page (one row per group coloured by status, with an hour's lag sparkline; broker
health; tier freshness; top DLQ reasons) and a detail page per group (every partition).

Plain HTML with inline SVG: no scripts, no external resources (the page works offline)."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from urllib.parse import quote

from streams.monitor.burrow import Status
from streams.monitor.model import ClusterHealth, GroupLag, Snapshot

__all__ = ["render_group", "render_page", "sparkline"]

_COLOURS = {
    Status.OK: "#d9f2d9",
    Status.WARN: "#fff1b8",
    Status.ERR: "#f8c4c4",
    Status.STOP: "#f8c4c4",
    Status.STALL: "#f8c4c4",
    Status.REWIND: "#f8c4c4",
    Status.NOTFOUND: "#e6dcf5",
}

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.2em;color:#222;background:#fafafa}
h1{font-size:1.4em;margin:0 0 .2em} h2{font-size:1.1em;margin:1.2em 0 .4em}
table{border-collapse:collapse;background:#fff;max-width:100%}
td,th{border:1px solid #ccc;padding:.3em .6em} td{overflow-wrap:anywhere;max-width:24em}
th{background:#eee;text-align:left;white-space:nowrap}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.badge{font-weight:bold} .nw{white-space:nowrap} .muted{color:#666;font-size:.9em}
.wrap{display:flex;gap:2em;flex-wrap:wrap} svg.spark{vertical-align:middle}
tr.down{background:#f8c4c4}
"""


def _fmt_secs(value: float) -> str:
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 120:
        return f"{value:.1f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def sparkline(points: tuple[tuple[int, int], ...], width: int = 160, height: int = 28) -> str:
    """An inline SVG polyline of (ms, value) points scaled to the box (empty when < 2 points)."""
    if len(points) < 2:
        return "<span class=muted>—</span>"
    t0, t1 = points[0][0], points[-1][0]
    top = max(v for _t, v in points) or 1
    span = max(1, t1 - t0)
    coords = " ".join(
        f"{(t - t0) * (width - 2) / span + 1:.1f},{height - 1 - v * (height - 2) / top:.1f}"
        for t, v in points
    )
    return (
        f'<svg class=spark width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="lag over the last hour, max {top:,}">'
        f'<rect width="{width}" height="{height}" fill="#f2f2f2"/>'
        f'<polyline fill="none" stroke="#555" stroke-width="1.5" points="{coords}"/></svg>'
    )


def _head(title: str, refresh_s: int) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f'<meta http-equiv="refresh" content="{int(refresh_s)}">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
    )


def _age(value: float | None) -> str:
    return "unknown" if value is None else _fmt_secs(value)


def _taken(snap: Snapshot) -> str:
    return datetime.fromtimestamp(snap.taken_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def group_link(group: str) -> str:
    return f"/group/{quote(group, safe='')}"


def _group_rows(snap: Snapshot) -> list[str]:
    rows = [
        "<h2>Consumer groups</h2><table id=groups><tr><th>group</th><th>status</th>"
        "<th>state</th><th>members</th><th>topics</th><th>partitions</th><th>complete</th>"
        "<th>lag (msgs)</th><th>lag (time)</th><th>last hour</th><th>worst partitions</th></tr>"
    ]
    if not snap.groups:
        rows.append("<tr><td colspan=11>no consumer groups</td></tr>")
    for g in snap.groups:
        bad = [p for p in g.partitions if p.status is not Status.OK][:4]
        worst = ", ".join(f"{escape(p.topic)}[{p.partition}] {p.status.value}" for p in bad)
        members = "?" if g.members is None else str(g.members)
        rows.append(
            f'<tr class="group" data-status="{g.status.value}" '
            f'style="background:{_COLOURS[g.status]}">'
            f'<td><a href="{group_link(g.group)}">{escape(g.group)}</a></td>'
            f"<td class=badge>{g.status.value}</td><td class=nw>{escape(g.state)}</td>"
            f"<td class=n>{members}</td><td>{escape(', '.join(g.topics))}</td>"
            f"<td class=n>{g.partition_count}</td><td class=n>{g.complete:.0%}</td>"
            f"<td class=n>{g.total_lag:,}</td><td class=n>{_age(g.max_lag_seconds)}</td>"
            f"<td>{sparkline(snap.history.get(g.group, ()))}</td><td>{worst or '—'}</td></tr>"
        )
    rows.append("</table>")
    return rows


def _broker_rows(c: ClusterHealth | None) -> list[str]:
    if c is None:
        return []
    rows = [
        "<div><h2>Brokers</h2>",
        f"<p class=muted>{c.partitions:,} partitions · under-replicated "
        f"<b id=urp>{c.under_replicated}</b> · offline <b id=offline>{c.offline}</b> · "
        f"active controller {c.active_controller if c.active_controller is not None else '?'}"
        "</p><table id=brokers><tr><th>node</th><th>address</th><th>up</th>"
        "<th>leads</th><th>replicas</th><th>URP (own)</th><th>ISR shrinks</th></tr>",
    ]
    for b in c.brokers:
        urp = b.jmx.get("kafka_server_replicamanager_underreplicatedpartitions")
        shrinks = b.jmx.get("kafka_server_replicamanager_isrshrinks_total")
        rows.append(
            f'<tr class="{"" if b.alive else "down"}"><td class=n>{b.node_id}</td>'
            f"<td>{escape(b.address) or '—'}</td><td>{'yes' if b.alive else 'DOWN'}</td>"
            f"<td class=n>{b.leaders}</td><td class=n>{b.replicas}</td>"
            f"<td class=n>{'—' if urp is None else f'{urp:.0f}'}</td>"
            f"<td class=n>{'—' if shrinks is None else f'{shrinks:.0f}'}</td></tr>"
        )
    rows.append("</table></div>")
    return rows


def render_page(snap: Snapshot | None, refresh_s: int = 10) -> str:
    """The whole HTML page (no scripts; ``<meta http-equiv=refresh>`` reloads it)."""
    head = _head("tuyen — pipeline status", refresh_s)
    if snap is None:
        return head + "<h1>tuyen pipeline status</h1><p>collecting…</p></body></html>"
    overall = "all groups OK" if snap.all_ok else "attention needed"
    parts = [
        head,
        "<h1>tuyen pipeline status</h1>",
        f"<p class=muted>{escape(overall)} · taken {_taken(snap)} UTC · refreshes every "
        f"{int(refresh_s)} s · <a href=/metrics>/metrics</a> · "
        "<a href=/api/status>/api/status</a> · <a href=/v3/kafka>Burrow API</a></p>",
        *_group_rows(snap),
    ]
    h = snap.health
    parts.append("<div class=wrap>")
    parts += _broker_rows(snap.cluster)
    parts.append("<div><h2>Freshness (event time → tier / live aggregate)</h2>")
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


def render_group(
    snap: Snapshot | None, group: GroupLag | None, refresh_s: int = 10, cluster: str = "tuyen"
) -> str:
    """One group: its Burrow summary, an hour's lag and every partition."""
    if snap is None or group is None:
        return _head("tuyen — group", refresh_s) + "<p>no such group</p></body></html>"
    g = group
    maxlag = g.maxlag
    parts = [
        _head(f"tuyen — {g.group}", refresh_s),
        f"<h1>{escape(g.group)}</h1>",
        f'<p class=muted><a href="/">all groups</a> · taken {_taken(snap)} UTC · '
        f'<a href="/v3/kafka/{quote(cluster, safe="")}/consumer/{quote(g.group, safe="")}'
        f'/lag">Burrow JSON</a></p>',
        f'<p id=summary data-status="{g.status.value}" style="background:{_COLOURS[g.status]};'
        f'padding:.4em">status <b>{g.status.value}</b> · state {escape(g.state)} · members '
        f"{'?' if g.members is None else g.members} · {g.partition_count} partitions · "
        f"complete {g.complete:.0%} · total lag {g.total_lag:,} · max lag "
        f"{'—' if maxlag is None else f'{escape(maxlag.topic)}[{maxlag.partition}] {maxlag.lag:,}'}"
        "</p>",
        f"<p>lag over the last hour: {sparkline(snap.history.get(g.group, ()), 480, 60)}</p>",
        "<table id=partitions><tr><th>topic</th><th>partition</th><th>status</th>"
        "<th>committed</th><th>end</th><th>lag</th><th>lag (time)</th><th>commits</th>"
        "<th>last commit</th><th>owner</th></tr>",
    ]
    for p in g.partitions:
        last = (
            "—"
            if p.last_commit_ms is None
            else _fmt_secs(max(0.0, (snap.taken_ms - p.last_commit_ms) / 1000)) + " ago"
        )
        parts.append(
            f'<tr data-status="{p.status.value}" style="background:{_COLOURS[p.status]}">'
            f"<td>{escape(p.topic)}</td><td class=n>{p.partition}</td>"
            f"<td class=badge>{p.status.value}</td><td class=n>{p.committed:,}</td>"
            f"<td class=n>{p.end_offset:,}</td><td class=n>{p.lag:,}</td>"
            f"<td class=n>{_age(p.lag_seconds)}</td><td class=n>{p.commits}</td>"
            f"<td class=n>{last}</td><td>{escape(p.client_id or p.owner) or '—'}</td></tr>"
        )
    parts.append("</table></body></html>")
    return "".join(parts)
