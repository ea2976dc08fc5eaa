"""`tuyen broker up | status | down` as a user runs them, on a private TUYEN_HOME."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from deploy.broker import broker_answers
from deploy.broker.cluster import LocalCluster
from deploy.broker.state import local_metrics_urls
from deploy.settings import Settings

pytestmark = pytest.mark.broker


def _tuyen(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("tuyen")
    return subprocess.run(
        [str(exe), *args], env=env, capture_output=True, text=True, timeout=180, check=False
    )


def test_broker_up_status_down(tmp_path: Path, settings: Settings) -> None:
    if settings.kafka_bootstrap or settings.broker_mode != "auto":
        pytest.skip("this test provisions a local broker itself; an external cluster is set")
    home = tmp_path / "home"
    # share the verified jar cache so the test does not fetch them again
    jars = settings.home / "kafka"
    if jars.exists():
        home.mkdir()
        (home / "kafka").symlink_to(jars)
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP"}
    env["TUYEN_HOME"] = str(home)
    env["TUYEN_BROKER_MODE"] = "local"
    up = _tuyen(env, "broker", "up")
    assert up.returncode == 0, up.stderr
    bootstrap = up.stdout.strip().splitlines()[-1]
    try:
        status = _tuyen(env, "broker", "status")
        assert status.returncode == 0 and status.stdout.strip() == bootstrap
        assert broker_answers(bootstrap)
        state = (home / "brokers" / "default" / "state.json").read_text()
    finally:
        down = _tuyen(env, "broker", "down", "--purge")
    assert down.returncode == 0, down.stderr
    pid = int(__import__("orjson").loads(state)["pid"])
    assert not Path(f"/proc/{pid}").exists() or "kafka" not in Path(
        f"/proc/{pid}/cmdline"
    ).read_text(errors="replace")
    assert _tuyen(env, "broker", "status").returncode == 1
    shutil.rmtree(home, ignore_errors=True)


def test_storage_format_takes_a_cluster_id_that_starts_with_a_dash(tmp_path: Path) -> None:
    """The random cluster id starts with "-" once in 64 starts; formatting must not fail."""
    from deploy.broker.jars import ensure_jars
    from deploy.broker.local import LocalBroker, format_command, free_port

    home = Settings().home
    broker = LocalBroker(tmp_path / "node", home)
    broker.state_dir.mkdir(parents=True)
    broker._write_config(free_port(), free_port())
    cmd = format_command(
        broker._java(), ensure_jars(home), "-" + "A" * 21, broker.state_dir / "server.properties"
    )
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.slow
def test_the_cli_finds_the_local_cluster(kafka_cluster: LocalCluster, settings: Settings) -> None:
    """`tuyen broker up --brokers 3` recorded under TUYEN_HOME: status prints its three
    brokers, up again reuses it, a single broker is refused beside it, commands without
    ``--bootstrap`` use it, and the monitor finds its JMX exporters (`broker down` is the
    fixture's teardown)."""
    home = kafka_cluster.state_dir.parents[1]  # the private TUYEN_HOME of the fixture
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP"}
    env["TUYEN_HOME"] = str(home)
    bootstrap = kafka_cluster.kafka.bootstrap
    assert len(bootstrap.split(",")) == 3
    status = _tuyen(env, "broker", "status")
    assert (status.returncode, status.stdout.strip()) == (0, bootstrap), status.stderr
    again = _tuyen(env, "broker", "up", "--brokers", "3")
    assert again.returncode == 0 and again.stdout.strip() == bootstrap, again.stderr
    single = _tuyen(env, "broker", "up")
    assert single.returncode == 1 and "3-broker setup already runs" in single.stderr
    lag = _tuyen(env, "lag", "--format", "json", "--prefix", "no-such-prefix-")
    assert lag.returncode == 0 and orjson.loads(lag.stdout)["groups"] == [], lag.stderr
    state = kafka_cluster.state()
    assert state is not None
    urls = local_metrics_urls(settings.model_copy(update={"home": home, "kafka_bootstrap": None}))
    assert urls == [f"{n.node_id}={n.metrics_url}" for n in state.nodes]
