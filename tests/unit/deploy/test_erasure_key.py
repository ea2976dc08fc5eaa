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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

import deploy.cli.common
import sinks.consumer
from deploy.anchors import erasure_key_text
from deploy.cli.root import app
from deploy.settings import SECRET_FIELDS, SINK_SECRET_FIELDS, WORKER_SECRET_FIELDS, env_name
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
        ["compact", "--province", "01"],  # what each province's CronJob runs
        ["compact", "--owner", "quarantine"],  # the dead letters carry ids
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
def test_compact_province_opens_that_provinces_root_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`tuyen compact --province <code>` (each province's CronJob, holding that province's
    store credentials alone) compacts that root and no other; an unknown code or a second
    root is refused before anything is opened."""
    for code in ("01", "79"):
        (tmp_path / f"province-{code}" / "province").mkdir(parents=True)
    import deploy.cli.sink

    opened: list[str] = []
    real = deploy.cli.sink.run_compact

    def compact(config: Any, **kw: Any) -> Any:
        opened.append(config.store_root)
        return real(config, **kw)

    monkeypatch.setattr(deploy.cli.sink, "run_compact", compact)
    env = {"TUYEN_STORE_ROOT": str(tmp_path), "TUYEN_ERASURE_KEY": erasure_key_text(KEY)}
    got = _tuyen("compact", "--province", "01", **env)
    assert got.exit_code == 0, got.output
    assert opened == [str(tmp_path / "province-01")]
    got = _tuyen("compact", "--province", "../x", **env)
    assert got.exit_code == 2 and "--province '../x'" in got.output, got.output
    got = _tuyen("compact", "--province", "01", "--root", str(tmp_path), **env)
    assert got.exit_code == 2 and "give one of them" in got.output, got.output
    opened.clear()
    got = _tuyen("compact", "--owner", "national", TUYEN_STORE_ROOT=str(tmp_path))
    assert got.exit_code == 0, got.output  # pseudonyms only there: no erasure key needed
    assert opened == [str(tmp_path / "national")]


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


#: The secrets no sink may hold, each as ``X`` and as ``X_FILE``.
_NOT_FOR_SINKS = [env_name(n) for n in SECRET_FIELDS if n not in SINK_SECRET_FIELDS]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    forms=st.fixed_dictionaries(
        {v: st.sampled_from(["", "inline", "file", "both"]) for v in _NOT_FOR_SINKS}
    ),
    from_os=st.booleans(),
)
def test_a_sink_holds_no_secret_but_its_own_in_any_form(
    tmp_path_factory: pytest.TempPathFactory, forms: dict[str, str], from_os: bool
) -> None:
    """Every secret a sink must not hold (the pseudonym key, the access log's and the
    portal's keys, the monitor's token) is taken out of its environment whether the run gives
    it inline, as ``_FILE`` or both, from its own environment or the pipeline's; the erasure
    key is derived from the pseudonym key however that was given; the worker keeps its own."""
    tmp = tmp_path_factory.mktemp("secrets")
    given_env: dict[str, str] = {}
    for var, form in forms.items():
        value = KEY if var == "TUYEN_PSEUDONYM_KEY" else base64.b64encode(os.urandom(32)).decode()
        if form in ("inline", "both"):
            given_env[var] = value
        if form in ("file", "both"):
            path = tmp / var.lower()
            path.write_text(value + "\n", encoding="utf-8")
            given_env[var + "_FILE"] = str(path)
    p = _pipeline(tmp, "")
    saved = dict(os.environ)
    try:
        if from_os:
            os.environ.update(given_env)
        else:
            p.extra_env = given_env
        p.build()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    sink = p.services["sinks"].env
    held = sorted(v for v in sink for s in _NOT_FOR_SINKS if v in (s, s + "_FILE"))
    assert held == [], held
    assert not [v for v in sink.values() if v in given_env.values()]
    if forms["TUYEN_PSEUDONYM_KEY"]:
        assert sink["TUYEN_ERASURE_KEY"] == erasure_key_text(KEY)
    else:
        assert "TUYEN_ERASURE_KEY" not in sink
    worker = p.services["worker-1"].env
    own = {env_name(n) for n in WORKER_SECRET_FIELDS}
    mine = {k: v for k, v in given_env.items() if k.removesuffix("_FILE") in own}
    assert {k: v for k, v in worker.items() if k in given_env} == mine


def test_a_worker_holds_no_secret_but_its_own(tmp_path: Path) -> None:
    """The stream worker keeps the pseudonym key (inline or as a file) and loses every other
    secret of the run in either form: the erasure key, the access log's and the portal's
    keys, the monitor's token."""
    others = [env_name(n) for n in SECRET_FIELDS if n not in WORKER_SECRET_FIELDS]
    given_env = {"TUYEN_PSEUDONYM_KEY": KEY, "TUYEN_PSEUDONYM_KEY_FILE": str(tmp_path / "pk")}
    for var in others:
        given_env[var] = base64.b64encode(os.urandom(32)).decode()
        given_env[var + "_FILE"] = str(tmp_path / var.lower())
    p = _pipeline(tmp_path, "")
    p.extra_env = given_env
    p.build()
    worker = p.services["worker-1"].env
    assert worker["TUYEN_PSEUDONYM_KEY"] == KEY
    assert worker["TUYEN_PSEUDONYM_KEY_FILE"] == str(tmp_path / "pk")
    held = sorted(v for v in worker for s in others if v in (s, s + "_FILE"))
    assert held == [], held


def test_a_runs_own_erasure_key_file_is_not_doubled(tmp_path: Path) -> None:
    """The run gives the sinks their erasure key as a file: the sink gets that file and no
    inline key besides it (both would be refused at start)."""
    path = tmp_path / "erasure_key"
    path.write_text(erasure_key_text(KEY), encoding="utf-8")
    p = _pipeline(tmp_path, "")
    p.extra_env = {"TUYEN_PSEUDONYM_KEY": KEY, "TUYEN_ERASURE_KEY_FILE": str(path)}
    p.build()
    sink = p.services["sinks"].env
    assert sink["TUYEN_ERASURE_KEY_FILE"] == str(path)
    assert "TUYEN_ERASURE_KEY" not in sink and "TUYEN_PSEUDONYM_KEY" not in sink


def test_a_started_sink_process_has_no_pseudonym_key_file(tmp_path: Path) -> None:
    """The sink process as started (its /proc environ, not the mapping handed to Popen)
    holds neither form of the pseudonym key when the run was given it as a file."""
    path = tmp_path / "pseudonym_key"
    path.write_text(KEY + "\n", encoding="utf-8")
    p = _pipeline(tmp_path, "")
    p.sink_names = ["dlq"]
    p.extra_env = {"TUYEN_PSEUDONYM_KEY_FILE": str(path)}
    p.build()
    svc = p.services["sinks"]
    svc.start()
    try:
        assert svc.proc is not None
        environ = Path(f"/proc/{svc.proc.pid}/environ").read_bytes().split(b"\0")
    finally:
        svc.kill()
    names = {e.split(b"=", 1)[0].decode() for e in environ if e}
    assert "TUYEN_PSEUDONYM_KEY_FILE" not in names and "TUYEN_PSEUDONYM_KEY" not in names
    assert "TUYEN_ERASURE_KEY" in names
