"""``tuyen report status|submit|approve|send-back|lock``: the monthly sign-off.

Thin over :class:`sinks.signoff.service.Signoff` (registered under ``tuyen report`` by
:mod:`deploy.cli.root`). Decisions are checked against the approvers' keys
(``TUYEN_APPROVER_KEYS``, :func:`deploy.anchors.approver_registry`) before they are sent.
Exit codes: 0 done, 2 bad request or no broker, 3 access refused, 4 not allowed in the
month's state (not submitted, already approved, locked, approvals pending), 5 the broker did
not confirm (nothing took effect; retry).
"""

from __future__ import annotations

import base64
import binascii
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from nacl.signing import SigningKey
from rich.table import Table

from deploy.anchors import approver_registry, require_development
from deploy.cli.common import (
    Bootstrap,
    StoreRoot,
    fail,
    kafka,
    out,
    settings,
    store_access_log,
)
from deploy.cli.report import fail_report, load_hierarchy, log_root, open_store, report_root
from sinks.reports.exceptions import ReportError

if TYPE_CHECKING:
    from schemas.hierarchy import Hierarchy
    from sinks.signoff.service import MonthStatus, Signoff

__all__ = ["approve", "lock", "send_back", "status", "submit"]

# The options the commands share, declared once.
Principal = Annotated[
    str, typer.Option("--as", help="who acts: national | province:CODE | district:CODE")
]
Period = Annotated[str, typer.Option(help="the month, YYYY-MM")]
Station = Annotated[str, typer.Option(help="station (commune) code")]
Approver = Annotated[
    str | None, typer.Option(help="approver id (default in development: sup-<unit>-1)")
]
KeyFile = Annotated[
    Path | None,
    typer.Option(help="the approver's Ed25519 private key: base64 of its 32-byte seed"),
]
DevKeys = Annotated[
    bool, typer.Option("--dev-keys", help="sign with the development keys (development mode only)")
]
KeyId = Annotated[
    str | None, typer.Option(help="the key's key_id in the registry (when its owner has several)")
]


def _seed(key_file: Path) -> SigningKey:
    try:
        seed = base64.b64decode(key_file.read_text(encoding="utf-8").strip(), validate=True)
    except (OSError, binascii.Error, ValueError) as exc:
        fail(f"cannot read the key file {key_file}: {exc}")
    if len(seed) != 32:
        fail(f"the key file {key_file} must hold base64 of a 32-byte seed")
    return SigningKey(seed)


def _signing_key(
    ctx: typer.Context,
    job: str,
    whose: str,
    key_file: Path | None,
    dev_keys: bool,
    dev_key: Callable[[], SigningKey],
) -> SigningKey:
    """The key read from ``key_file``, or with ``dev_keys`` (development mode only) the
    development key ``dev_key()``; exactly one of the two (``whose`` names the key)."""
    if key_file is not None and dev_keys:
        fail("give --key-file or --dev-keys, not both")
    if key_file is not None:
        return _seed(key_file)
    if dev_keys:
        require_development(settings(ctx), f"{job} --dev-keys", "signs with a development key")
        return dev_key()
    fail(f"give --key-file ({whose}) or --dev-keys (development mode)")


def _approver_key(
    ctx: typer.Context, job: str, approver: str, key_file: Path | None, dev_keys: bool
) -> SigningKey:
    from schemas.keys import DEV_KEY_SEED
    from schemas.signoff import DevApproverRegistry

    def dev_key() -> SigningKey:
        return DevApproverRegistry(DEV_KEY_SEED).signing_key(approver)

    return _signing_key(ctx, job, "the approver's key", key_file, dev_keys, dev_key)


def _service(
    ctx: typer.Context,
    job: str,
    unit: str,
    store_root: str | None,
    bootstrap: str | None,
    publish: bool,
) -> Signoff:
    from schemas.topics import SIGNOFF, topic_name
    from sinks.signoff.publisher import KafkaDecisionPublisher
    from sinks.signoff.service import Signoff

    s = settings(ctx)
    h = load_hierarchy(None)
    roots = [store_root] if store_root is not None else []
    if not roots:  # the root of the unit's province (its decisions and submissions); for
        try:  # the national unit every province's root
            roots = report_root(s, h, _tier(h, unit), unit)[0]
        except ReportError as exc:
            fail_report(exc)
    publisher = registry = None
    if publish:
        registry = approver_registry(s, job)
        publisher = KafkaDecisionPublisher(
            kafka(ctx, bootstrap), topic_name(SIGNOFF, s.topic_prefix)
        )
    return Signoff(
        open_store(roots[0] if len(roots) == 1 else roots, "province", None),
        h,
        publisher,
        registry=registry,
        access_log=store_access_log(ctx, log_root(s, roots)),
    )


def _tier(h: Hierarchy, unit: str) -> str:
    """``national`` for the national unit (VN), else ``province`` (the unit's province's
    root; an unknown unit is refused by deploy.cli.report.report_root)."""
    from schemas.hierarchy import HierarchyError, Tier

    try:
        national = h.tier_of(unit) is Tier.NATIONAL
    except HierarchyError:
        national = False
    return "national" if national else "province"


def _run(action: Callable[[], None]) -> None:
    try:
        action()
    except ReportError as exc:
        fail_report(exc)


def status(
    ctx: typer.Context,
    unit: Annotated[str, typer.Option(help="district (KV…), province or VN")],
    period: Period,
    principal: Principal,
    store_root: StoreRoot = None,
) -> None:
    """Every station expected to report for the month: submitted, on time, approved (for
    the national unit, VN: one line per province, read from every province's root)."""
    svc = _service(ctx, "tuyen report status", unit, store_root, None, publish=False)

    def show() -> None:
        st = svc.status(principal, unit, period)
        title = (
            f"{unit} · {st.period} · station deadline {st.deadline:%Y-%m-%d %H:%M} · "
            f"locked: {', '.join(sorted(st.locks)) or 'no'}"
        )
        national = _tier(svc.h, unit) == "national"
        out.print(_by_province(st, title) if national else _by_station(st, title))
        out.print(
            f"{len(st.stations)} expected · {st.count('approved')} approved · "
            f"{st.count('submitted')} waiting · {st.count('sent_back')} sent back · "
            f"{st.count('missing')} missing"
        )

    _run(show)


def _by_station(st: MonthStatus, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for col in ("station", "name", "state", "submitted", "on time", "approved", "by"):
        table.add_column(col)
    for row in st.stations:
        table.add_row(
            row.station,
            row.name,
            row.state,
            f"{row.submitted_at:%Y-%m-%d %H:%M}" if row.submitted_at else "–",
            "yes" if row.on_time else "no",
            f"{row.approved_at:%Y-%m-%d %H:%M}" if row.approved_at else "–",
            row.approved_by or (row.sent_back_reason or ""),
        )
    return table


def _by_province(st: MonthStatus, title: str) -> Table:
    """One line per province: its stations by state, and its lock."""
    states = ("approved", "submitted", "sent_back", "missing")
    counts: dict[str, Counter[str]] = {}
    for row in st.stations:
        counts.setdefault(row.province, Counter())[row.state] += 1
    table = Table(title=title, title_justify="left")
    for col in ("province", "expected", "approved", "waiting", "sent back", "missing", "locked"):
        table.add_column(col)
    for province, c in sorted(counts.items()):
        locked = st.locks.get(province)
        table.add_row(
            province,
            str(c.total()),
            *(str(c[state]) for state in states),
            f"{locked:%Y-%m-%d %H:%M}" if locked else "no",
        )
    return table


@dataclass(frozen=True, slots=True)
class _Signing:
    """Who decides and with which key: the options every decision command takes."""

    principal: str
    approver: str | None
    key_file: Path | None
    dev_keys: bool
    key_id: str | None
    store_root: str | None
    bootstrap: str | None

    def service(
        self, ctx: typer.Context, job: str, unit: str, default_approver: str
    ) -> tuple[Signoff, str, SigningKey]:
        """The service publishing decisions for ``unit``, the approver's id and key."""
        approver = self.approver or default_approver
        key = _approver_key(ctx, job, approver, self.key_file, self.dev_keys)
        return (
            _service(ctx, job, unit, self.store_root, self.bootstrap, publish=True),
            approver,
            key,
        )


def _decide(
    ctx: typer.Context, kind: str, station: str, period: str, reason: str, how: _Signing
) -> None:
    from schemas.signoff import dev_approver
    from sinks.reports.access import parse_principal

    job = f"tuyen report {kind.replace('_', '-')}"
    try:
        who = parse_principal(how.principal)
    except ReportError as exc:
        fail_report(exc)
    svc, approver, key = how.service(ctx, job, station, dev_approver(who.code))

    def act() -> None:
        if kind == "approve":
            d = svc.approve(
                how.principal, station, period, approver=approver, key=key, key_id=how.key_id
            )
        else:
            d = svc.send_back(
                how.principal,
                station,
                period,
                reason=reason,
                approver=approver,
                key=key,
                key_id=how.key_id,
            )
        dec = d.decision
        out.print(
            f"{dec.action.value} {station} {dec.period} by {dec.approver}: {dec.id} "
            f"(in effect {d.received:%Y-%m-%d %H:%M:%S} UTC)"
        )

    _run(act)


def approve(
    ctx: typer.Context,
    station: Station,
    period: Period,
    principal: Principal,
    approver: Approver = None,
    key_file: KeyFile = None,
    dev_keys: DevKeys = False,
    key_id: KeyId = None,
    store_root: StoreRoot = None,
    bootstrap: Bootstrap = None,
) -> None:
    """Approve a station's submitted month."""
    how = _Signing(principal, approver, key_file, dev_keys, key_id, store_root, bootstrap)
    _decide(ctx, "approve", station, period, "", how)


def send_back(
    ctx: typer.Context,
    station: Station,
    period: Period,
    principal: Principal,
    reason: Annotated[str, typer.Option(help="why it goes back")],
    approver: Approver = None,
    key_file: KeyFile = None,
    dev_keys: DevKeys = False,
    key_id: KeyId = None,
    store_root: StoreRoot = None,
    bootstrap: Bootstrap = None,
) -> None:
    """Send a station's submitted month back, with a reason."""
    how = _Signing(principal, approver, key_file, dev_keys, key_id, store_root, bootstrap)
    _decide(ctx, "send_back", station, period, reason, how)


def lock(
    ctx: typer.Context,
    province: Annotated[str, typer.Option(help="province code")],
    period: Period,
    principal: Principal,
    approver: Approver = None,
    force: Annotated[bool, typer.Option(help="lock although approvals are pending")] = False,
    key_file: KeyFile = None,
    dev_keys: DevKeys = False,
    key_id: KeyId = None,
    store_root: StoreRoot = None,
    bootstrap: Bootstrap = None,
) -> None:
    """Lock a province's month: its figures as submitted stop changing."""
    from schemas.signoff import dev_approver

    how = _Signing(principal, approver, key_file, dev_keys, key_id, store_root, bootstrap)
    svc, approver_id, key = how.service(ctx, "tuyen report lock", province, dev_approver(province))

    def act() -> None:
        d = svc.lock(
            principal, province, period, approver=approver_id, key=key, key_id=key_id, force=force
        )
        dec = d.decision
        out.print(f"locked {province} {dec.period} by {dec.approver}: {dec.id}")

    _run(act)


def submit(
    ctx: typer.Context,
    station: Annotated[str, typer.Option(help="the submitting station")],
    period: Period,
    remarks: Annotated[str | None, typer.Option(help="a note to the unit above")] = None,
    signer: Annotated[str | None, typer.Option(help="the station head's signer id")] = None,
    key_file: Annotated[
        Path | None, typer.Option(help="the station head's key: base64 of its 32-byte seed")
    ] = None,
    dev_keys: DevKeys = False,
    key_id: KeyId = None,
    bootstrap: Bootstrap = None,
) -> None:
    """Submit a station's month (the station head's signed report_submission, through the
    station SDK's outbox and the normal pipeline)."""
    from producers.config import ProducerConfig
    from producers.sdk import StationClient
    from schemas.keys import DEV_KEY_SEED, dev_signer, dev_signing_key
    from schemas.topics import RAW, topic_name

    s = settings(ctx)
    who = signer or dev_signer(station, 1)
    key = _signing_key(
        ctx,
        "tuyen report submit",
        "the station head's key",
        key_file,
        dev_keys,
        lambda: dev_signing_key(DEV_KEY_SEED, who),
    )
    config = ProducerConfig(
        kafka=kafka(ctx, bootstrap),
        topic=topic_name(RAW, s.topic_prefix),
        outbox_path=s.home / "outboxes" / f"{station}.sqlite",
    )
    config.outbox_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with StationClient(station, who, key, config, key_id=key_id) as client:
            accepted = client.submit_month(period, remarks=remarks)
            left = client.flush(30)
    except ReportError as exc:
        fail(f"error: {exc.message}")
    except ValueError as exc:  # the payload (period) did not validate
        fail(f"error: {exc}")
    if left:
        fail(f"{left} event(s) wait in the outbox; they go when the broker answers", 5)
    out.print(f"submitted {station} {period}: {accepted.record_id} v{accepted.record_version}")
