"""``tuyen portal``: the report portal (serve) and its administration (users, tokens, audit).

Thin over :mod:`sinks.portal`: every command takes the settings the root callback built and
calls the library. ``serve`` refuses to start without its keys outside development mode
(:func:`deploy.anchors.portal_anchors`).
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer
from rich.table import Table

from deploy.anchors import access_log_key, approver_registry, portal_anchors
from deploy.broker.state import current_connection
from deploy.cli.common import StoreRoot, console, fail, out, settings
from deploy.settings import Settings
from schemas.topics import SIGNOFF, topic_name

if TYPE_CHECKING:
    from sinks.portal.accounts import Accounts
    from sinks.portal.sessions import Tokens

__all__ = ["portal_app"]

portal_app = typer.Typer(help="The report portal: web service, accounts, tokens, access log.")
user_app = typer.Typer(help="Portal accounts (scope and roles).")
token_app = typer.Typer(help="API tokens for scripts (same scope as their account).")
audit_app = typer.Typer(help="The hash-chained access log.")
portal_app.add_typer(user_app, name="user")
portal_app.add_typer(token_app, name="token")
portal_app.add_typer(audit_app, name="audit")

StateDir = Annotated[
    Path | None, typer.Option(help="state dir (default TUYEN_PORTAL_STATE_DIR, $TUYEN_HOME/portal)")
]
_HOST = "address (default TUYEN_PORTAL_HOST)"
_PORT = "port (default TUYEN_PORTAL_PORT; 0: any free port)"
_HDIR = "folder of units/links/population CSV files (default: reference data)"
_SCOPE = "national | province:CODE | district:CODE | station:CODE"
_ROLE = "analyst | approver | administrator | clinician (repeat the option)"


def _state_dir(s: Settings, given: Path | None) -> Path:
    return given or s.portal_state_dir or s.home / "portal"


def _facilities(s: Settings) -> Path | None:
    return Path(s.facilities) if s.facilities else None


def _accounts(ctx: typer.Context, state_dir: Path | None) -> tuple[Accounts, Tokens]:
    from sinks.portal.accounts import Accounts  # lazy imports keep --help fast
    from sinks.portal.db import Database
    from sinks.portal.service import load_hierarchy
    from sinks.portal.sessions import Tokens

    s = settings(ctx)
    db = Database(_state_dir(s, state_dir) / "portal.sqlite")
    accounts = Accounts(db, load_hierarchy(None, _facilities(s)))
    return accounts, Tokens(db, accounts)


@portal_app.command("serve")
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help=_HOST)] = None,
    port: Annotated[int | None, typer.Option(help=_PORT)] = None,
    state_dir: StateDir = None,
    store_root: StoreRoot = None,
    hierarchy_dir: Annotated[Path | None, typer.Option(help=_HDIR)] = None,
    bootstrap: Annotated[
        str | None,
        typer.Option(help="Kafka for the approvals' decisions (default: the configured broker)"),
    ] = None,
) -> None:
    """Run the portal until interrupted; prints its address when it listens.

    Needs TUYEN_PORTAL_SESSION_KEY and TUYEN_ACCESS_LOG_KEY (or their _FILE) and, for the
    approvals, TUYEN_APPROVER_KEYS (the approvers' registry, holding the entries `tuyen
    portal approvers` prints) and a Kafka broker (decisions go to signoff.decisions; without
    one the portal serves everything else and refuses decisions, saying why). In development
    mode (`tuyen --dev`) missing keys are generated into the state dir, the development
    approvers are accepted too, and cookies lose the Secure flag, so plain http://127.0.0.1
    works."""
    import uvicorn

    from sinks.portal.config import PortalConfig
    from sinks.portal.service import Portal
    from sinks.portal.web.app import create_app

    s = settings(ctx)
    state = _state_dir(s, state_dir)
    keys = portal_anchors(s, state)
    approver_registry(s, "tuyen portal serve")  # fail closed: the approvers' keys, checked
    conn = s.kafka_connection(bootstrap) if bootstrap else current_connection(s)
    if conn is None:
        console.print("[yellow]no Kafka broker configured: approvals are read-only[/yellow]")
    roots = s.store_roots(store_root)
    config = PortalConfig(
        state_dir=state,
        store_root=store_root or s.store_root,
        province_root=roots.province,
        national_root=roots.national,
        hierarchy_dir=hierarchy_dir,
        facilities=_facilities(s),
        session_key=keys.session_key,
        audit_key=keys.access_log_key,
        secure_cookies=s.portal_secure_cookies and not s.dev,
        kafka=conn,
        signoff_topic=topic_name(SIGNOFF, s.topic_prefix),
        approver_keys=s.approver_keys,
        development=s.dev,
        suppression_threshold=s.suppression_threshold,
    )
    portal = Portal(config)
    address = host or s.portal_host
    sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, s.portal_port if port is None else port))
    sock.listen(128)
    server = uvicorn.Server(
        uvicorn.Config(create_app(portal), log_level="warning", access_log=False, lifespan="off")
    )
    bound_host, bound_port = sock.getsockname()[:2]
    print(f"portal listening on http://{bound_host}:{bound_port}/", flush=True)
    try:
        server.run(sockets=[sock])
    finally:
        portal.close()


def _password(from_stdin: bool) -> tuple[str, bool]:
    import secrets

    if from_stdin:
        return sys.stdin.readline().rstrip("\n"), False
    return secrets.token_urlsafe(15), True


@user_app.command("add")
def user_add(
    ctx: typer.Context,
    username: str,
    scope: Annotated[str, typer.Option(help=_SCOPE)],
    role: Annotated[list[str], typer.Option(help=_ROLE)],
    facility: Annotated[str | None, typer.Option(help="station code (clinicians)")] = None,
    password_stdin: Annotated[bool, typer.Option(help="read the password from stdin")] = False,
    state_dir: StateDir = None,
) -> None:  # fmt: skip
    """Create an account; prints a generated password once unless --password-stdin."""
    from sinks.portal.accounts import AccountError

    accounts, _ = _accounts(ctx, state_dir)
    password, generated = _password(password_stdin)
    try:
        account = accounts.add(username, password, scope, role, facility=facility)
    except AccountError as exc:
        fail(str(exc))
    out.print(
        f"created {account.username} scope={account.scope} roles={','.join(sorted(account.roles))}"
    )
    if generated:
        out.print(f"password (shown once): {password}")


@user_app.command("list")
def user_list(ctx: typer.Context, state_dir: StateDir = None) -> None:
    """Every account with its scope, roles and state."""
    accounts, _ = _accounts(ctx, state_dir)
    table = Table("user", "scope", "roles", "facility", "state")
    for u in accounts.list():
        a = u.account
        state = "disabled" if a.disabled else ("locked" if u.locked_until else "active")
        table.add_row(a.username, str(a.scope), ",".join(sorted(a.roles)), a.facility or "", state)
    out.print(table)


def _change(ctx: typer.Context, action: str, username: str, state_dir: Path | None) -> None:
    from sinks.portal.accounts import AccountError

    accounts, _ = _accounts(ctx, state_dir)
    try:
        if action == "unlock":
            accounts.unlock(username)
        elif action == "passwd":
            password, generated = _password(not sys.stdin.isatty())
            accounts.set_password(username, password)
            if generated:
                out.print(f"password (shown once): {password}")
        else:
            accounts.set_disabled(username, action == "disable")
    except AccountError as exc:
        fail(str(exc))
    out.print(f"{action}: {username}")


def _user_change(action: str, doc: str) -> None:
    """Register ``tuyen portal user <action> USERNAME`` (one :func:`_change`)."""

    def command(ctx: typer.Context, username: str, state_dir: StateDir = None) -> None:
        _change(ctx, action, username, state_dir)

    command.__doc__ = doc
    user_app.command(action)(command)


_user_change("disable", "Disable an account (its sessions end, its tokens stop working).")
_user_change("enable", "Enable a disabled account.")
_user_change("unlock", "Lift a login lockout.")
_user_change("passwd", "Set a new password (from stdin when piped, else generated and shown once).")


@portal_app.command("approvers")
def approvers(
    ctx: typer.Context,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="write the JSON here (default: stdout)")
    ] = None,
    state_dir: StateDir = None,
) -> None:
    """The approvers' registry entries (public keys) of the portal's approver accounts, as
    JSON for TUYEN_APPROVER_KEYS: the portal signs their decisions with keys it holds, and
    the sign-off accepts a decision only from a registered key."""
    from sinks.portal.signing import ApproverKeys

    accounts, _ = _accounts(ctx, state_dir)
    doc = ApproverKeys(accounts.db).registry(u.account for u in accounts.list())
    text = orjson.dumps(doc, option=orjson.OPT_INDENT_2)
    if out_file is None:
        print(text.decode())
        return
    out_file.write_bytes(text + b"\n")
    console.print(f"wrote {len(doc['approvers'])} approver(s) to {out_file}")


@token_app.command("add")
def token_add(
    ctx: typer.Context,
    username: str,
    name: Annotated[str, typer.Option(help="what the token is for")] = "script",
    state_dir: StateDir = None,
) -> None:
    """Create an API token for an account; the token is shown once."""
    from sinks.portal.accounts import AccountError

    _, tokens = _accounts(ctx, state_dir)
    try:
        tid, token = tokens.create(username, name)
    except AccountError as exc:
        fail(str(exc))
    out.print(f"token {tid} for {username} (shown once; send as 'Authorization: Bearer …'):")
    print(token)


@token_app.command("list")
def token_list(ctx: typer.Context, username: str | None = None, state_dir: StateDir = None) -> None:
    """API tokens (never their secret)."""
    _, tokens = _accounts(ctx, state_dir)
    table = Table("id", "user", "name", "revoked")
    for t in tokens.list(username):
        table.add_row(t.id, t.username, t.name, "yes" if t.revoked else "")
    out.print(table)


@token_app.command("revoke")
def token_revoke(ctx: typer.Context, token_id: str, state_dir: StateDir = None) -> None:
    """Revoke an API token."""
    from sinks.portal.accounts import AccountError

    _, tokens = _accounts(ctx, state_dir)
    try:
        tokens.revoke(token_id)
    except AccountError as exc:
        fail(str(exc))
    out.print(f"revoked {token_id}")


def _log_path(s: Settings, log: Path | None, state_dir: Path | None) -> Path:
    return log or _state_dir(s, state_dir) / "access.log"


@audit_app.command("verify")
def audit_verify(
    ctx: typer.Context,
    log: Annotated[Path | None, typer.Option(help="log file (default: the portal's)")] = None,
    expect: Annotated[str | None, typer.Option(help="SEQ:HASH recorded earlier")] = None,
    state_dir: StateDir = None,
) -> None:
    """Check the hash chain and head; exit 1 on any sign of tampering."""
    from sinks.reports.accesslog import verify

    s = settings(ctx)
    key = access_log_key(s, _state_dir(s, state_dir))
    result = verify(_log_path(s, log, state_dir), key, expect=expect)
    if not key:
        console.print("[yellow]TUYEN_ACCESS_LOG_KEY not set: checking an unkeyed chain[/yellow]")
    if result.ok:
        out.print(
            f"ok: {result.entries} entries ({result.legacy} legacy lines), "
            f"head {result.head_seq}:{result.head_hash}"
        )
        return
    for e in result.errors:
        out.print(f"[red]{e}[/red]")
    raise typer.Exit(1)


@audit_app.command("show")
def audit_show(
    ctx: typer.Context,
    n: Annotated[int, typer.Option("-n", help="how many entries, newest first")] = 50,
    log: Annotated[Path | None, typer.Option(help="log file (default: the portal's)")] = None,
    state_dir: StateDir = None,
) -> None:
    """The latest entries as JSON lines."""
    from sinks.reports import AccessLog

    for entry in AccessLog(_log_path(settings(ctx), log, state_dir)).tail(n):
        print(orjson.dumps(entry).decode())
