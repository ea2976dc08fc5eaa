"""The demo's portal: a fresh state dir with demo accounts, and (with --keep-running) a
running ``tuyen --dev portal serve`` over the demo's store."""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from schemas.hierarchy import Hierarchy


@dataclass(frozen=True)
class DemoAccount:
    username: str
    password: str
    scope: str
    roles: tuple[str, ...]
    facility: str | None = None


def prepare_portal(out: Path, province: str, month: str) -> list[DemoAccount]:
    """``<out>/portal``: accounts for the nation, one province (analyst and approver: the
    station reports of ``month`` that its regional centres leave wait for it), one of its
    stations and a clinician at that station (patient summaries of the province); and
    ``<out>/approvers.json``, the approvers' registry holding the province account's key (the
    portal signs its decisions with it; the sign-off sink and the portal accept decisions from
    registered keys, and the development approvers the demo's regional centres sign with)."""
    from datetime import date

    import orjson

    from sinks.portal.accounts import Accounts
    from sinks.portal.db import Database
    from sinks.portal.signing import ApproverKeys

    state = out / "portal"
    shutil.rmtree(state, ignore_errors=True)
    h = Hierarchy.default()
    at = date(int(month[:4]), int(month[5:7]), 1)
    district = h.children(province, at)[0].code
    station = h.children(district, at)[0].code
    wanted: list[tuple[str, str, tuple[str, ...], str | None]] = [
        ("national", "national", ("analyst", "administrator"), None),
        (f"province{province}", f"province:{province}", ("analyst", "approver"), None),
        (f"station{station}", f"station:{station}", ("analyst",), None),
        (f"clinician{station}", f"station:{station}", ("clinician",), station),
    ]
    db = Database(state / "portal.sqlite")
    accounts = Accounts(db, h)
    made = []
    for name, scope, roles, facility in wanted:
        password = secrets.token_urlsafe(12)
        accounts.add(name, password, scope, roles, facility=facility)
        made.append(DemoAccount(name, password, scope, roles, facility))
    registry = ApproverKeys(db).registry(u.account for u in accounts.list())
    db.close()
    approvers_file(out).write_bytes(orjson.dumps(registry, option=orjson.OPT_INDENT_2))
    return made


def approvers_file(out: Path) -> Path:
    """The demo's approvers' registry (TUYEN_APPROVER_KEYS of its sinks and portal)."""
    return out / "approvers.json"


def start_portal(
    out: Path, port: int, log: Path, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], str]:
    """``tuyen --dev portal serve`` over the demo's store, with ``env`` (the pipeline's: its
    broker, topic prefix and approvers' registry); returns the process and URL."""
    exe = Path(sys.executable).with_name("tuyen")
    cmd = (
        [str(exe)]
        if exe.exists()
        else [sys.executable, "-c", "from deploy.cli import main; main()"]
    )
    log.parent.mkdir(parents=True, exist_ok=True)
    sink = log.open("wb")
    proc = subprocess.Popen(
        [*cmd, "--dev", "portal", "serve", "--port", str(port),
         "--state-dir", str(out / "portal"), "--store-root", str(out / "store")],
        stdout=sink, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    sink.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = log.read_text(encoding="utf-8", errors="replace")
        found = re.search(r"listening on (http://\S+)", text)
        if found:
            return proc, found.group(1)
        if proc.poll() is not None:
            raise RuntimeError(f"the portal did not start:\n{text[-2000:]}")
        threading.Event().wait(0.1)  # polling the log for its address
    proc.terminate()
    raise RuntimeError("the portal did not report its address within 60 s")


def print_accounts(
    console: Console, url: str | None, out: Path, made: list[DemoAccount], prefix: str
) -> None:
    table = Table("user", "password", "scope", "roles", "facility", title="portal demo accounts")
    for a in made:
        table.add_row(a.username, a.password, a.scope, ", ".join(a.roles), a.facility or "")
    console.print(table)
    if url:
        console.print(f"[bold]portal[/bold]: {url}  (public page: {url}public)")
    else:
        console.print(
            "[bold]portal[/bold]: http://127.0.0.1:8780/ once started with "
            f"`TUYEN_APPROVER_KEYS={approvers_file(out)} TUYEN_TOPIC_PREFIX={prefix!r} tuyen "
            f"--dev portal serve --state-dir {out / 'portal'} --store-root {out / 'store'}` "
            "(approvals need the demo's broker: run the demo with --keep-running)"
        )
