"""The demo's last steps: the month's sign-off, catalogs, reports printed and written."""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from pathlib import Path

import orjson
from rich.console import Console

from schemas.hierarchy import Hierarchy
from schemas.kafka import KafkaConnection
from sinks.roots import StoreRoots


def report_month(end: date) -> str:
    """The latest calendar month that has ended by the day after ``end`` (the simulation's
    last day): the one it signs off and reports (partly simulated if the run is short)."""
    if end.day != calendar.monthrange(end.year, end.month)[1]:
        end = end.replace(day=1) - timedelta(days=1)
    return f"{end.year:04d}-{end.month:02d}"


def sign_off(
    out: Path,
    roots: StoreRoots,
    province: str,
    month: str,
    kafka: KafkaConnection,
    prefix: str,
    console: Console,
    approver_keys: Path,
) -> None:
    """The regional centres approve the province's submitted station reports of ``month``
    (development approver keys), all but the first centre's: those wait for the province (the
    demo portal's province account approves them in the browser)."""
    from schemas.keys import DEV_KEY_SEED
    from schemas.signoff import DevApproverRegistry, dev_approver, load_approver_registry
    from schemas.topics import SIGNOFF, topic_name
    from sinks.catalog import open_catalog
    from sinks.reports import AccessLog
    from sinks.signoff.publisher import KafkaDecisionPublisher
    from sinks.signoff.service import Signoff

    keys = DevApproverRegistry(DEV_KEY_SEED)
    registry = load_approver_registry(approver_keys, development=True)
    publisher = KafkaDecisionPublisher(kafka, topic_name(SIGNOFF, prefix))
    con = open_catalog(roots.province_root(province), "province")
    try:
        svc = Signoff(
            con, Hierarchy.default(), publisher, registry=registry,
            access_log=AccessLog(out / "access.log"),
        )  # fmt: skip
        status = svc.status(f"province:{province}", province, month)
        left_for_province = min((s.district for s in status.stations), default=None)
        approved = waiting = 0
        for st in status.stations:
            if st.submitted_at is None:
                continue
            if st.district == left_for_province:
                waiting += 1
                continue
            sup = dev_approver(st.district)
            svc.approve(
                f"district:{st.district}", st.station, month, approver=sup,
                key=keys.signing_key(sup),
            )  # fmt: skip
            approved += 1
    finally:
        con.close()
    missing = len(status.stations) - approved - waiting
    on_time = sum(1 for s in status.stations if s.submitted_at and s.on_time)
    console.print(
        f"sign-off {province} {month}: {approved} station reports approved by their regional "
        f"centres, {waiting} of {left_for_province}'s wait for the province (portal account "
        f"province{province}), {missing} not submitted ({on_time} submitted on time)"
    )


def write_reports(
    out: Path, roots: StoreRoots, province: str, period: str, console: Console
) -> None:
    """Build each owner's catalog inside its root (national, the province's, the operators'
    quarantine), print the national and one province's reports of ``period``, write HTML
    and FHIR."""
    from sinks.catalog import build_catalog, open_catalog
    from sinks.catalog_sql import OPERATORS
    from sinks.reports import AccessLog, ReportRequest, run_report, source_tier
    from sinks.reports.render import fhir_bundle, render_html, render_tables

    reports = out / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    own = roots.province_root(province)
    catalogs = [
        (roots.national, "national"),
        (own, "province"),
        (roots.quarantine, OPERATORS),
    ]
    for root, tier in catalogs:
        path = build_catalog(root, Path(root) / "catalog.duckdb", tier)
        console.print(f"catalog ({tier}): cd {root} && duckdb {path.name}")
    h = Hierarchy.default()
    log = AccessLog(out / "access.log")
    provinces = [r for r in roots.province_roots() if Path(r).exists()] or [own]
    runs = [
        # national reports are computed from every province's record-level tier and leave
        # it suppressed (small cells); the province's own report is exact
        (provinces, "national", None, "national"),
        ([own], "province", province, f"province:{province}"),
    ]
    for tier_roots, tier, unit, principal in runs:
        con = open_catalog(tier_roots[0] if len(tier_roots) == 1 else tier_roots, source_tier(tier))
        try:
            for kind in ("health", "resources", "completeness"):
                request = ReportRequest(
                    kind=kind, tier=tier, unit=unit, period=period, principal=principal,
                    trend=True,
                )  # fmt: skip
                report = run_report(con, h, request, access_log=log)
                render_tables(report, console)
                stem = f"{kind}-{tier}-{unit or 'VN'}-{period}"
                (reports / f"{stem}.html").write_text(render_html(report), encoding="utf-8")
                (reports / f"{stem}.fhir.json").write_bytes(
                    orjson.dumps(fhir_bundle(report), option=orjson.OPT_INDENT_2)
                )
        finally:
            con.close()
    console.print(f"reports written to {reports} (HTML with charts, FHIR MeasureReport bundles)")
