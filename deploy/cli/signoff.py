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
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from nacl.signing import SigningKey
from rich.table import Table

from deploy.anchors import approver_registry, require_development
from deploy.cli.common import fail, kafka, out, settings, store_access_log
from deploy.cli.report import fail_report, load_hierarchy, open_store, report_root
from sinks.reports.exceptions import ReportError

if TYPE_CHECKING:
    from sinks.signoff.service import Signoff

__all__ = ["approve", "lock", "send_back", "status", "submit"]

_AS = typer.Option("--as", help="who acts: national | province:CODE | district:CODE")
_KEY_FILE = typer.Option(help="the approver's Ed25519 private key: base64 of its 32-byte seed")
_DEV = typer.Option("--dev-keys", help="sign with the development keys (development mode only)")
_ROOT = typer.Option(help="store root (default TUYEN_STORE_ROOT)")
_KEY_ID = typer.Option(help="the key's key_id in the registry (when its owner has several)")
_BOOTSTRAP = typer.Option(help="Kafka bootstrap (default: the configured or local broker)")


def _seed(key_file: Path) -> SigningKey:
    try:
        seed = base64.b64decode(key_file.read_text(encoding="utf-8").strip(), validate=True)
    except (OSError, binascii.Error, ValueError) as exc:
        fail(f"cannot read the key file {key_file}: {exc}")
    if len(seed) != 32:
        fail(f"the key file {key_file} must hold base64 of a 32-byte seed")
    return SigningKey(seed)


def _approver_key(
    ctx: typer.Context, job: str, approver: str, key_file: Path | None, dev_keys: bool
) -> SigningKey:
    from schemas.keys import DEV_KEY_SEED
    from schemas.signoff import DevApproverRegistry

    if key_file is not None and dev_keys:
        fail("give --key-file or --dev-keys, not both")
    if key_file is not None:
        return _seed(key_file)
    if dev_keys:
        require_development(settings(ctx), f"{job} --dev-keys", "signs with a development key")
        return DevApproverRegistry(DEV_KEY_SEED).signing_key(approver)
    fail("give --key-file (the approver's key) or --dev-keys (development mode)")


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
    if store_root is None:  # the root of the unit's province: its decisions and submissions
        try:
            store_root = report_root(s, h, "province", unit)[0][0]
        except ReportError as exc:
            fail_report(exc)
    root = store_root
    publisher = registry = None
    if publish:
        registry = approver_registry(s, job)
        publisher = KafkaDecisionPublisher(
            kafka(ctx, bootstrap), topic_name(SIGNOFF, s.topic_prefix)
        )
    return Signoff(
        open_store(root, "province", None),
        h,
        publisher,
        registry=registry,
        access_log=store_access_log(ctx, root),
    )


def _run(action: Callable[[], None]) -> None:
    try:
        action()
    except ReportError as exc:
        fail_report(exc)


def status(
    ctx: typer.Context,
    unit: Annotated[str, typer.Option(help="district (KV…), province or VN")],
    period: Annotated[str, typer.Option(help="the month, YYYY-MM")],
    principal: Annotated[str, _AS],
    store_root: Annotated[str | None, _ROOT] = None,
) -> None:
    """Every station expected to report for the month: submitted, on time, approved."""
    svc = _service(ctx, "tuyen report status", unit, store_root, None, publish=False)

    def show() -> None:
        st = svc.status(principal, unit, period)
        table = Table(
            title=f"{unit} · {st.period} · station deadline {st.deadline:%Y-%m-%d %H:%M} · "
            f"locked: {', '.join(sorted(st.locks)) or 'no'}",
            title_justify="left",
        )
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
        out.print(table)
        out.print(
            f"{len(st.stations)} expected · {st.count('approved')} approved · "
            f"{st.count('submitted')} waiting · {st.count('sent_back')} sent back · "
            f"{st.count('missing')} missing"
        )

    _run(show)


def _decide(
    ctx: typer.Context,
    kind: str,
    station: str,
    period: str,
    principal: str,
    approver: str | None,
    reason: str,
    key_file: Path | None,
    dev_keys: bool,
    key_id: str | None,
    store_root: str | None,
    bootstrap: str | None,
) -> None:
    from schemas.signoff import dev_approver
    from sinks.reports.access import parse_principal

    job = f"tuyen report {kind.replace('_', '-')}"
    try:
        who = parse_principal(principal)
    except ReportError as exc:
        fail_report(exc)
    approver_id = approver or dev_approver(who.code)
    key = _approver_key(ctx, job, approver_id, key_file, dev_keys)
    svc = _service(ctx, job, station, store_root, bootstrap, publish=True)

    def act() -> None:
        if kind == "approve":
            d = svc.approve(
                principal, station, period, approver=approver_id, key=key, key_id=key_id
            )
        else:
            d = svc.send_back(
                principal, station, period, reason=reason, approver=approver_id, key=key,
                key_id=key_id,
            )  # fmt: skip
        dec = d.decision
        out.print(
            f"{dec.action.value} {station} {dec.period} by {dec.approver}: {dec.id} "
            f"(in effect {d.received:%Y-%m-%d %H:%M:%S} UTC)"
        )

    _run(act)


_APPROVER = typer.Option(help="approver id (default in development: sup-<unit>-1)")


def approve(
    ctx: typer.Context,
    station: Annotated[str, typer.Option(help="station (commune) code")],
    period: Annotated[str, typer.Option(help="the month, YYYY-MM")],
    principal: Annotated[str, _AS],
    approver: Annotated[str | None, _APPROVER] = None,
    key_file: Annotated[Path | None, _KEY_FILE] = None,
    dev_keys: Annotated[bool, _DEV] = False,
    key_id: Annotated[str | None, _KEY_ID] = None,
    store_root: Annotated[str | None, _ROOT] = None,
    bootstrap: Annotated[str | None, _BOOTSTRAP] = None,
) -> None:
    """Approve a station's submitted month."""
    _decide(
        ctx, "approve", station, period, principal, approver, "", key_file, dev_keys, key_id,
        store_root, bootstrap,
    )  # fmt: skip


def send_back(
    ctx: typer.Context,
    station: Annotated[str, typer.Option(help="station (commune) code")],
    period: Annotated[str, typer.Option(help="the month, YYYY-MM")],
    principal: Annotated[str, _AS],
    reason: Annotated[str, typer.Option(help="why it goes back")],
    approver: Annotated[str | None, _APPROVER] = None,
    key_file: Annotated[Path | None, _KEY_FILE] = None,
    dev_keys: Annotated[bool, _DEV] = False,
    key_id: Annotated[str | None, _KEY_ID] = None,
    store_root: Annotated[str | None, _ROOT] = None,
    bootstrap: Annotated[str | None, _BOOTSTRAP] = None,
) -> None:
    """Send a station's submitted month back, with a reason."""
    _decide(
        ctx, "send_back", station, period, principal, approver, reason, key_file, dev_keys,
        key_id, store_root, bootstrap,
    )  # fmt: skip


def lock(
    ctx: typer.Context,
    province: Annotated[str, typer.Option(help="province code")],
    period: Annotated[str, typer.Option(help="the month, YYYY-MM")],
    principal: Annotated[str, _AS],
    approver: Annotated[str | None, _APPROVER] = None,
    force: Annotated[bool, typer.Option(help="lock although approvals are pending")] = False,
    key_file: Annotated[Path | None, _KEY_FILE] = None,
    dev_keys: Annotated[bool, _DEV] = False,
    key_id: Annotated[str | None, _KEY_ID] = None,
    store_root: Annotated[str | None, _ROOT] = None,
    bootstrap: Annotated[str | None, _BOOTSTRAP] = None,
) -> None:
    """Lock a province's month: its figures as submitted stop changing."""
    from schemas.signoff import dev_approver

    approver_id = approver or dev_approver(province)
    key = _approver_key(ctx, "tuyen report lock", approver_id, key_file, dev_keys)
    svc = _service(ctx, "tuyen report lock", province, store_root, bootstrap, publish=True)

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
    period: Annotated[str, typer.Option(help="the month, YYYY-MM")],
    remarks: Annotated[str | None, typer.Option(help="a note to the unit above")] = None,
    signer: Annotated[str | None, typer.Option(help="the station head's signer id")] = None,
    key_file: Annotated[
        Path | None, typer.Option(help="the station head's key: base64 of its 32-byte seed")
    ] = None,
    dev_keys: Annotated[bool, _DEV] = False,
    key_id: Annotated[str | None, _KEY_ID] = None,
    bootstrap: Annotated[str | None, _BOOTSTRAP] = None,
) -> None:
    """Submit a station's month (the station head's signed report_submission, through the
    station SDK's outbox and the normal pipeline)."""
    from producers.config import ProducerConfig
    from producers.sdk import StationClient
    from schemas.keys import DEV_KEY_SEED, dev_signer, dev_signing_key
    from schemas.topics import RAW, topic_name

    s = settings(ctx)
    who = signer or dev_signer(station, 1)
    if key_file is not None and dev_keys:
        fail("give --key-file or --dev-keys, not both")
    if key_file is not None:
        key = _seed(key_file)
    elif dev_keys:
        require_development(s, "tuyen report submit --dev-keys", "signs with a development key")
        key = dev_signing_key(DEV_KEY_SEED, who)
    else:
        fail("give --key-file (the station head's key) or --dev-keys (development mode)")
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
