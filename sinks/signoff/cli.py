"""``tuyen report status|submit|approve|send-back|lock``: the monthly sign-off.

Exit codes: 0 done, 2 bad request or no broker, 3 access refused, 4 not allowed in the
month's state (not submitted, already approved, locked, approvals pending), 5 the broker did
not confirm (nothing took effect; retry).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from nacl.signing import SigningKey
from rich.console import Console
from rich.table import Table

from sinks.reports.exceptions import ReportError

if TYPE_CHECKING:
    from sinks.signoff.service import Signoff

__all__ = ["register"]

err = Console(stderr=True)
out = Console()

_AS = typer.Option("--as", help="who acts: national | province:CODE | district:CODE")
_KEY_FILE = typer.Option(help="the approver's Ed25519 private key: base64 of its 32-byte seed")
_DEV = typer.Option("--dev-keys", help="sign with the development keys (never in production)")


def _signing_key(approver: str, key_file: Path | None, dev_keys: bool) -> SigningKey:
    from schemas.keys import DEV_KEY_SEED
    from schemas.signoff import DevApproverRegistry

    if key_file is not None:
        seed = base64.b64decode(key_file.read_text(encoding="utf-8").strip(), validate=True)
        if len(seed) != 32:
            raise typer.BadParameter("the key file must hold base64 of a 32-byte seed")
        return SigningKey(seed)
    if dev_keys:
        return DevApproverRegistry(DEV_KEY_SEED).signing_key(approver)
    err.print("[red]give --key-file (the approver's key) or --dev-keys[/red]")
    raise typer.Exit(2)


def _service(store_root: str | None, publish: bool) -> Signoff:
    from deploy.cli import require_bootstrap
    from deploy.settings import Settings
    from schemas.hierarchy import Hierarchy
    from schemas.topics import SIGNOFF, topic_name
    from sinks.reports.access import AccessLog
    from sinks.reports.cli import access_log_path, open_store
    from sinks.signoff.publisher import KafkaDecisionPublisher
    from sinks.signoff.service import Signoff

    s = Settings()
    root = store_root or s.store_root
    publisher = None
    if publish:
        publisher = KafkaDecisionPublisher(
            require_bootstrap(s), topic_name(SIGNOFF, s.topic_prefix), extra=s.kafka_security()
        )
    log = AccessLog(access_log_path(root, s.access_log, s.home))
    return Signoff(
        open_store(root, "province", None), Hierarchy.default(), publisher, access_log=log
    )


def _run(action: Callable[[], None]) -> None:
    from sinks.reports.cli import fail

    try:
        action()
    except ReportError as exc:
        fail(exc)


def status(
    unit: Annotated[str, typer.Option(help="district (KV…), province or VN")],
    period: Annotated[str, typer.Option(help="the month, YYYY-MM")],
    principal: Annotated[str, _AS],
    store_root: Annotated[str | None, typer.Option(help="store root")] = None,
) -> None:
    """Every station expected to report for the month: submitted, on time, approved."""
    svc = _service(store_root, publish=False)

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


def _decide(kind: str) -> Callable[..., None]:
    def decide(
        station: Annotated[str, typer.Option(help="station (commune) code")],
        period: Annotated[str, typer.Option(help="the month, YYYY-MM")],
        principal: Annotated[str, _AS],
        approver: Annotated[
            str | None, typer.Option(help="approver id (default in dev: sup-<unit>-1)")
        ] = None,
        reason: Annotated[str, typer.Option(help="why it goes back (send-back)")] = "",
        key_file: Annotated[Path | None, _KEY_FILE] = None,
        dev_keys: Annotated[bool, _DEV] = False,
        store_root: Annotated[str | None, typer.Option(help="store root")] = None,
    ) -> None:
        from sinks.reports.access import parse_principal

        try:
            who = parse_principal(principal)
        except ReportError as exc:
            from sinks.reports.cli import fail

            fail(exc)
        approver_id = approver or f"sup-{who.code}-1"
        key = _signing_key(approver_id, key_file, dev_keys)
        svc = _service(store_root, publish=True)

        def act() -> None:
            if kind == "approve":
                d = svc.approve(principal, station, period, approver=approver_id, key=key)
            else:
                d = svc.send_back(
                    principal, station, period, reason=reason, approver=approver_id, key=key
                )
            dec = d.decision
            out.print(
                f"{dec.action.value} {station} {dec.period} by {dec.approver}: {dec.id} "
                f"(in effect {d.received:%Y-%m-%d %H:%M:%S} UTC)"
            )

        _run(act)

    decide.__doc__ = (
        "Approve a station's submitted month." if kind == "approve"
        else "Send a station's submitted month back, with a reason."
    )  # fmt: skip
    return decide


def lock(
    province: Annotated[str, typer.Option(help="province code")],
    period: Annotated[str, typer.Option(help="the month, YYYY-MM")],
    principal: Annotated[str, _AS],
    approver: Annotated[str | None, typer.Option(help="approver id (default sup-<P>-1)")] = None,
    force: Annotated[bool, typer.Option(help="lock although approvals are pending")] = False,
    key_file: Annotated[Path | None, _KEY_FILE] = None,
    dev_keys: Annotated[bool, _DEV] = False,
    store_root: Annotated[str | None, typer.Option(help="store root")] = None,
) -> None:
    """Lock a province's month: its figures as submitted stop changing."""
    approver_id = approver or f"sup-{province}-1"
    key = _signing_key(approver_id, key_file, dev_keys)
    svc = _service(store_root, publish=True)

    def act() -> None:
        d = svc.lock(principal, province, period, approver=approver_id, key=key, force=force)
        dec = d.decision
        out.print(f"locked {province} {dec.period} by {dec.approver}: {dec.id}")

    _run(act)


def submit(
    station: Annotated[str, typer.Option(help="the submitting station")],
    period: Annotated[str, typer.Option(help="the month, YYYY-MM")],
    remarks: Annotated[str | None, typer.Option(help="a note to the unit above")] = None,
    signer: Annotated[str | None, typer.Option(help="the station head's signer id")] = None,
    key_file: Annotated[
        Path | None, typer.Option(help="the station head's key: base64 of its 32-byte seed")
    ] = None,
    dev_keys: Annotated[bool, _DEV] = False,
) -> None:
    """Submit a station's month (the station head's signed report_submission, through the
    station SDK's outbox and the normal pipeline)."""
    from deploy.cli import require_bootstrap
    from deploy.settings import Settings
    from producers.config import ProducerConfig
    from producers.sdk import StationClient
    from schemas.keys import DEV_KEY_SEED, dev_signer, dev_signing_key
    from schemas.topics import RAW, topic_name

    s = Settings()
    who = signer or dev_signer(station, 1)
    if key_file is not None:
        key = SigningKey(base64.b64decode(key_file.read_text(encoding="utf-8").strip()))
    elif dev_keys:
        key = dev_signing_key(DEV_KEY_SEED, who)
    else:
        err.print("[red]give --key-file (the station head's key) or --dev-keys[/red]")
        raise typer.Exit(2)
    config = ProducerConfig(
        bootstrap=require_bootstrap(s),
        topic=topic_name(RAW, s.topic_prefix),
        outbox_path=s.home / "outboxes" / f"{station}.sqlite",
        extra=s.kafka_security(),
    )
    config.outbox_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with StationClient(station, who, key, config) as client:
            accepted = client.submit_month(period, remarks=remarks)
            left = client.flush(30)
    except ReportError as exc:
        err.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from None
    except ValueError as exc:  # the payload (period) did not validate
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    if left:
        err.print(f"[yellow]{left} event(s) wait in the outbox; they go when the broker answers")
        raise typer.Exit(5)
    out.print(f"submitted {station} {period}: {accepted.record_id} v{accepted.record_version}")


def register(app: typer.Typer) -> None:
    """Add the sign-off commands to ``tuyen report``."""
    app.command("status")(status)
    app.command("submit")(submit)
    app.command("approve")(_decide("approve"))
    app.command("send-back")(_decide("send_back"))
    app.command("lock")(lock)
