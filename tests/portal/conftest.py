"""A real portal for the browser tests: a small simulated store, accounts, a running
``tuyen portal serve`` process (one per test module) and Debian's chromium via Playwright."""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO

import pytest
from playwright.sync_api import Browser, sync_playwright

from producers.simulator import SimulationResult
from sinks.portal.accounts import Accounts
from sinks.portal.approvals import LocalApprovals
from sinks.portal.db import Database
from sinks.portal.service import load_hierarchy
from tests.helpers import wait_until
from tests.portal.store import build_store

AXE_VERSION = "4.14.1"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PROVINCE = "12"  # Lai Châu
OTHER_PROVINCE = "04"  # Cao Bằng
#: Real-looking keys (weak ones are refused even in development mode), fresh each session.
SESSION_KEY = base64.b64encode(secrets.token_bytes(32)).decode()
AUDIT_KEY = base64.b64encode(secrets.token_bytes(32)).decode()

#: name -> (password, scope, roles, facility)
ACCOUNTS = {
    "ana12": ("ana12-password-long", f"province:{PROVINCE}", ["analyst", "approver"], None),
    "natl": ("national-password-long", "national", ["analyst", "administrator"], None),
    "lockme": ("lockme-password-long", f"province:{PROVINCE}", ["analyst"], None),
    "admin": ("admin-password-long", "national", ["administrator"], None),
}


@dataclass
class StoreData:
    root: Path
    sim: SimulationResult


@dataclass
class Server:
    url: str
    state: Path
    store: Path
    env: dict[str, str]
    process: subprocess.Popen[str]
    submissions: list[int] = field(default_factory=list)

    @property
    def access_log(self) -> Path:
        return self.state / "access.log"

    def entries(self) -> list[dict[str, object]]:
        text = self.access_log.read_text(encoding="utf-8") if self.access_log.exists() else ""
        return [json.loads(line) for line in text.splitlines() if line.strip()]


def tuyen_command() -> list[str]:
    exe = Path(sys.executable).with_name("tuyen")
    return (
        [str(exe)]
        if exe.exists()
        else [sys.executable, "-c", "from deploy.cli import main; main()"]
    )


@pytest.fixture(scope="session")
def portal_store(tmp_path_factory: pytest.TempPathFactory) -> StoreData:
    root = tmp_path_factory.mktemp("portal-store")
    return StoreData(root, build_store(root, provinces=(PROVINCE,)))


def _seed(state: Path) -> list[int]:
    h = load_hierarchy(None)
    db = Database(state / "portal.sqlite")
    accounts = Accounts(db, h)
    for name, (password, scope, roles, facility) in ACCOUNTS.items():
        accounts.add(name, password, scope, roles, facility=facility)
    approvals = LocalApprovals(db, h)
    at = date.today()
    districts = [c.code for c in h.children(PROVINCE, at)][:2]
    month = f"{at.year:04d}-{at.month:02d}"
    ids = [approvals.submit(d, month, "head-of-centre").id for d in districts]
    db.close()
    return ids


def _pump(stream: IO[str], sink: list[str]) -> None:
    for line in stream:
        sink.append(line)


@pytest.fixture(scope="module")
def portal(portal_store: StoreData, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    state = tmp_path_factory.mktemp("portal-state")
    submissions = _seed(state)
    env = {
        **os.environ,
        "TUYEN_PORTAL_SESSION_KEY": SESSION_KEY,
        "TUYEN_ACCESS_LOG_KEY": AUDIT_KEY,
        "TUYEN_PORTAL_SECURE_COOKIES": "false",
        "TUYEN_STORE_ROOT": str(portal_store.root),
        "TUYEN_HOME": str(state / "home"),
    }
    proc = subprocess.Popen(
        [*tuyen_command(), "portal", "serve", "--host", "127.0.0.1", "--port", "0",
         "--state-dir", str(state)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    lines: list[str] = []
    assert proc.stdout is not None
    threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True).start()

    def address() -> str | None:
        if proc.poll() is not None:
            raise AssertionError("portal exited:\n" + "".join(lines))
        for line in lines:
            m = re.search(r"listening on (http://\S+?)/?$", line.strip())
            if m:
                return m.group(1)
        return None

    url = wait_until(address, timeout=60, message=lambda: "portal start\n" + "".join(lines))
    server = Server(url, state, portal_store.root, env, proc, submissions)
    yield server
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def axe_js() -> Path:
    """axe-core from the npm registry, pinned by tests/portal/axe/package-lock.json."""
    cache = Path(os.environ.get("TUYEN_HOME", Path.home() / ".cache" / "tuyen"))
    target = cache / f"axe-core-{AXE_VERSION}"
    js = target / "node_modules" / "axe-core" / "axe.min.js"
    if not js.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is needed to install axe-core for the accessibility tests")
        target.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copy(Path(__file__).parent / "axe" / name, target / name)
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
            cwd=target, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        if done.returncode != 0 or not js.exists():
            pytest.fail(f"npm ci axe-core failed: {done.stderr[-2000:]}")
    return js


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Per module: Playwright's sync API keeps an event loop running in this thread while it
    is open, which later ``asyncio.run`` calls (other modules' tests) must not see."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Debian's chromium is needed at {CHROMIUM} (deploy/bin/ensure-system-deps)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()
