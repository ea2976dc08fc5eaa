"""A real portal for the browser tests: a small simulated store, accounts, a running
``tuyen portal serve`` process (one per test module) sending its approvals to the session's
Kafka broker, a real ``signoff`` sink writing them into the store, and Debian's chromium via
Playwright."""

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
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import orjson
import pytest
from playwright.sync_api import Browser, sync_playwright

from deploy.settings import kafka_env
from deploy.topics import apply_topics
from producers.simulator import SimulationResult
from schemas.kafka import KafkaConnection
from schemas.topics import SIGNOFF, topic_name, topic_specs
from sinks.config import sink_config
from sinks.consumer import SinkRunner
from sinks.portal.accounts import Accounts
from sinks.portal.db import Database
from sinks.portal.service import load_hierarchy
from sinks.portal.signing import ApproverKeys
from sinks.roots import StoreRoots
from tests.helpers import unique_name, wait_until
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


def _seed(state: Path) -> Path:
    """The accounts, and the approvers' registry of the approver accounts (what an operator
    makes with `tuyen portal approvers`); returns the registry file."""
    h = load_hierarchy(None)
    db = Database(state / "portal.sqlite")
    accounts = Accounts(db, h)
    for name, (password, scope, roles, facility) in ACCOUNTS.items():
        accounts.add(name, password, scope, roles, facility=facility)
    registry = ApproverKeys(db).registry(u.account for u in accounts.list())
    db.close()
    path = state / "approvers.json"
    path.write_bytes(orjson.dumps(registry))
    return path


@pytest.fixture(scope="module")
def portal_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The portal's state dir, seeded (accounts, keys, ``approvers.json``)."""
    state = tmp_path_factory.mktemp("portal-state")
    _seed(state)
    return state


@pytest.fixture(scope="module")
def signoff_sink(
    kafka: KafkaConnection, portal_store: StoreData, portal_state: Path
) -> Iterator[str]:
    """The ``signoff`` sink writing verified decisions into each province's root, on a topic
    prefix of its own; yields the prefix (the portal's ``TUYEN_TOPIC_PREFIX``)."""
    prefix = unique_name("portal") + "."
    signoff = topic_name(SIGNOFF, prefix)
    apply_topics(kafka, [t for t in topic_specs(prefix, 1) if t.name == signoff])
    registry = portal_state / "approvers.json"
    roots = StoreRoots.under(str(portal_store.root))
    runner = SinkRunner(
        sink_config(
            "signoff", kafka=kafka, store_root=roots.quarantine, prefix=prefix,
            province_roots=roots.province, approver_keys=str(registry), flush_interval_s=0.2,
            session_timeout_ms=6000,
        )
    )  # fmt: skip
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,), name="signoff-sink", daemon=True)
    thread.start()
    yield prefix
    stop.set()
    thread.join(timeout=60)
    assert not thread.is_alive(), "the signoff sink did not stop"


def _pump(stream: IO[str], sink: list[str]) -> None:
    for line in stream:
        sink.append(line)


@pytest.fixture(scope="module")
def portal(
    portal_store: StoreData,
    kafka: KafkaConnection,
    signoff_sink: str,
    portal_state: Path,
) -> Iterator[Server]:
    state = portal_state
    registry = state / "approvers.json"
    env = {
        **kafka_env(kafka, os.environ),
        "TUYEN_TOPIC_PREFIX": signoff_sink,
        "TUYEN_APPROVER_KEYS": str(registry),
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
    server = Server(url, state, portal_store.root, env, proc)
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
