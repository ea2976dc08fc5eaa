"""TUYEN_ERASURE_KEY (deploy.anchors.erasure_key): the writers of record rows and dead letters
(`tuyen sink`, `tuyen compact`) apply the erasure register with the key derived from the
pseudonym key, refuse to start without it outside development mode, and never read the
pseudonym key; `tuyen keys erasure-key` derives it as the registers were always written;
`tuyen purge` refuses a configured one that does not match its pseudonym key."""

from __future__ import annotations

import base64
import os
import threading
from pathlib import Path
from typing import Any, ClassVar

import pytest
from typer.testing import CliRunner, Result

import deploy.cli.common
import sinks.consumer
from deploy.anchors import erasure_key_text
from deploy.cli.root import app
from sinks.config import SinkConfig
from sinks.consumer import SinkStats
from sinks.erasure import REGISTER_DIR, ErasedWrites, Register, erasure_hasher, key_check
from sinks.store import Store
from streams.pseudonym_key import DEV_PSEUDONYM_KEY, decode_pseudonym_key
from streams.pseudonymise import Pseudonymiser
from tests.unit.deploy.test_pipeline_state import _pipeline

KEY = base64.b64encode(os.urandom(32)).decode()
OTHER = base64.b64encode(os.urandom(32)).decode()
GONE = "0000000003"
KAFKA = ["--bootstrap", "127.0.0.1:1"]


def _derived(pseudonym_key: str) -> bytes:
    """The derivation registers were written with before TUYEN_ERASURE_KEY existed."""
    return Pseudonymiser(decode_pseudonym_key(pseudonym_key)).digest("register", "erasure-key")


class _Writer:
    files_written = 0


class _Runner:
    """Stands in for SinkRunner: keeps what it was given, stops at once."""

    made: ClassVar[list[_Runner]] = []

    def __init__(self, config: SinkConfig, erasure: ErasedWrites | None = None) -> None:
        self.config, self.erasure = config, erasure
        self.stats, self.writer = SinkStats(), _Writer()
        _Runner.made.append(self)

    def run(self, stop: threading.Event, *, exit_when_idle_s: float | None = None) -> SinkStats:
        return self.stats


def _hashes() -> list[str | None]:
    """What each sink made's erasure hash makes of GONE (None: no key)."""
    hashes = [r.erasure.subject_of if r.erasure else None for r in _Runner.made]
    return [h(GONE) if h else None for h in hashes]


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not in development mode, no key set; no broker needed (the runner is a stand-in)."""
    monkeypatch.setenv("TUYEN_DEV", "0")
    for var in ("TUYEN_PSEUDONYM_KEY", "TUYEN_ERASURE_KEY"):
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var + "_FILE", raising=False)
    monkeypatch.setattr(sinks.consumer, "SinkRunner", _Runner)
    monkeypatch.setattr(deploy.cli.common, "check_connection", lambda *a, **k: None)
    _Runner.made.clear()


def _tuyen(*args: str, **env: str) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


@pytest.mark.usefixtures("production")
@pytest.mark.parametrize(
    "argv",
    [
        ["sink", "province", "district", "--province", "01", *KAFKA],
        ["sink", "dlq", *KAFKA],
        ["sink", "national", "--root", "{root}", *KAFKA],  # one root: every register entry
        ["compact", "--root", "{root}"],
    ],
)
def test_a_writer_refuses_to_start_without_the_erasure_key(argv: list[str], tmp_path: Path) -> None:
    got = _tuyen(*(a.replace("{root}", str(tmp_path)) for a in argv))
    assert got.exit_code == 2, got.output
    text = " ".join(got.output.split())
    assert "TUYEN_ERASURE_KEY is not set" in text and "tuyen keys erasure-key" in text
    assert not _Runner.made, "refused before any sink was made"


@pytest.mark.usefixtures("production")
def test_the_national_and_aggregates_sinks_need_no_erasure_key() -> None:
    got = _tuyen("sink", "national", "aggregates", *KAFKA)
    assert got.exit_code == 0, got.output
    assert _hashes() == [None, None]


@pytest.mark.usefixtures("production")
def test_the_writers_apply_the_derived_key_and_never_read_the_pseudonym_key(
    tmp_path: Path,
) -> None:
    derived = erasure_key_text(KEY)
    # a pseudonym key that is refused if anything reads it
    env = {"TUYEN_ERASURE_KEY": derived, "TUYEN_PSEUDONYM_KEY": "not a key"}
    got = _tuyen("sink", "province", "district", "dlq", "--root", str(tmp_path), *KAFKA, **env)
    assert got.exit_code == 0, got.output
    expected = erasure_hasher(_derived(KEY))(GONE)
    assert _hashes() == [expected] * 3
    got = _tuyen("compact", "--root", str(tmp_path), **env)
    assert got.exit_code == 0, got.output
    assert "PSEUDONYM" not in got.output


@pytest.mark.usefixtures("production")
def test_keys_erasure_key_derives_what_registers_were_written_with(tmp_path: Path) -> None:
    got = _tuyen("keys", "erasure-key", TUYEN_PSEUDONYM_KEY=KEY)
    assert got.exit_code == 0, got.output
    assert base64.b64decode(got.stdout.strip()) == _derived(KEY)
    out = tmp_path / "erasure_key"
    out.write_text("stale")
    out.chmod(0o644)
    got = _tuyen("keys", "erasure-key", "--out", str(out), TUYEN_PSEUDONYM_KEY=KEY)
    assert got.exit_code == 0, got.output
    assert out.stat().st_mode & 0o777 == 0o600
    assert out.read_text().strip() == erasure_key_text(KEY) and KEY not in got.output
    got = _tuyen("keys", "erasure-key")
    assert got.exit_code == 2 and "TUYEN_PSEUDONYM_KEY is not set" in got.output


@pytest.mark.usefixtures("production")
@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("c2hvcnQ=", "at least 32 are needed"),
        (erasure_key_text(DEV_PSEUDONYM_KEY, development=True), "development pseudonym key"),
    ],
)
def test_a_weak_or_development_erasure_key_is_refused(key: str, why: str) -> None:
    got = _tuyen("sink", "dlq", *KAFKA, TUYEN_ERASURE_KEY=key)
    assert got.exit_code == 2
    assert "TUYEN_ERASURE_KEY is refused" in got.output and why in " ".join(got.output.split())


@pytest.mark.usefixtures("production")
def test_the_purge_refuses_an_erasure_key_that_does_not_match(tmp_path: Path) -> None:
    purge = ("purge", "--health-id", GONE, "--reason", "request 17", "--root", str(tmp_path))
    got = _tuyen(*purge, TUYEN_PSEUDONYM_KEY=KEY, TUYEN_ERASURE_KEY=erasure_key_text(OTHER))
    assert got.exit_code == 2, got.output
    assert "TUYEN_ERASURE_KEY does not match TUYEN_PSEUDONYM_KEY" in " ".join(got.output.split())
    assert not (tmp_path / REGISTER_DIR).exists(), "nothing registered"
    got = _tuyen(*purge, TUYEN_PSEUDONYM_KEY=KEY, TUYEN_ERASURE_KEY=erasure_key_text(KEY))
    assert got.exit_code == 0, got.output
    hashed = erasure_hasher(_derived(KEY))
    erased: Any = Register(Store.open(str(tmp_path))).read()
    assert hashed(GONE) in erased.subjects and erased.keys == {key_check(hashed)}


@pytest.mark.usefixtures("production")
def test_in_development_mode_the_key_is_derived_from_the_pseudonym_key() -> None:
    got = _tuyen("--dev", "sink", "dlq", *KAFKA)
    assert got.exit_code == 0, got.output
    dev = erasure_hasher(_derived_dev())
    assert _hashes() == [dev(GONE)]
    assert "the erasure key derived from the development pseudonym key" in got.output
    _Runner.made.clear()
    got = _tuyen("--dev", "sink", "dlq", *KAFKA, TUYEN_PSEUDONYM_KEY=KEY)  # as the purge's
    assert got.exit_code == 0, got.output
    mine = erasure_hasher(_derived(KEY))
    assert _hashes() == [mine(GONE)]


def _derived_dev() -> bytes:
    key = decode_pseudonym_key(DEV_PSEUDONYM_KEY, allow_development=True)
    return Pseudonymiser(key).digest("register", "erasure-key")


def test_a_pipelines_sinks_get_the_derived_key_never_the_pseudonym_key(tmp_path: Path) -> None:
    p = _pipeline(tmp_path, "")
    p.extra_env = {"TUYEN_PSEUDONYM_KEY": KEY}
    p.build()
    assert p.services["worker-1"].env["TUYEN_PSEUDONYM_KEY"] == KEY
    sink = p.services["sinks"].env
    assert "TUYEN_PSEUDONYM_KEY" not in sink
    assert sink["TUYEN_ERASURE_KEY"] == erasure_key_text(KEY)
