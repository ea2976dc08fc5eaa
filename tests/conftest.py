"""Shared fixtures: one real Kafka broker per test session, unique names per test.

The broker follows the project's rule (KAFKA_BOOTSTRAP, else Docker via testcontainers,
else local KRaft jars). A test that needs a broker and cannot get one fails: it never skips.

The tests ask for development mode explicitly (``TUYEN_DEV=1``, set here for this process and
every ``tuyen`` it starts): they sign with the development keys. A test of what happens
outside development mode removes it from its own environment.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import NewTopic
from xdist.scheduler import LoadScopeScheduling

from deploy.broker import BrokerHandle, provision
from deploy.broker.cluster import LocalCluster
from deploy.broker.local import pid_alive
from deploy.broker.state import external_connection, local_cluster, stop_default
from deploy.settings import Settings
from schemas.kafka import KafkaConnection, admin
from tests.helpers import unique_name

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"

os.environ["TUYEN_DEV"] = "1"


# `make test` runs the suite on two pytest-xdist workers (`-n 2 --dist loadfile`): the tests wait
# on brokers and subprocesses about half the time, so two at once fill both cores. Each worker
# starts its own session fixtures; a test file goes to one worker whole (its module and class
# fixtures, a fault test's run, start once), and the files that use the three-broker cluster or
# the secured broker go to one worker together, so each of those starts once per run.
SHARED_BROKER_FILES = frozenset(
    {
        "tests/faults/test_replication.py",
        "tests/integration/test_access_matrix.py",
        "tests/integration/test_cli_broker.py",
    }
)
_SHARED_FIXTURES = ("kafka_cluster", "secured_broker")


def _file(nodeid: str) -> str:
    return nodeid.split("::")[0]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses a shared broker fixture outside SHARED_BROKER_FILES would start a
    second cluster on the other worker: stop the run and say where to declare it."""
    stray = sorted(
        {
            _file(item.nodeid)
            for item in items
            if any(f in getattr(item, "fixturenames", ()) for f in _SHARED_FIXTURES)
        }
        - SHARED_BROKER_FILES
    )
    if stray:
        raise pytest.UsageError(
            f"{stray} use {' or '.join(_SHARED_FIXTURES)}: add them to SHARED_BROKER_FILES "
            "in tests/conftest.py"
        )


class _FileScheduling(LoadScopeScheduling):
    """``--dist loadfile``, with every file of SHARED_BROKER_FILES in one work unit."""

    def _split_scope(self, nodeid: str) -> str:
        file = _file(nodeid)
        return "shared-brokers" if file in SHARED_BROKER_FILES else file


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> LoadScopeScheduling | None:
    """The scheduler of ``--dist loadfile`` runs (xdist's own for any other mode)."""
    return _FileScheduling(config, log) if config.getoption("dist") == "loadfile" else None


@pytest.fixture(scope="session")
def settings() -> Settings:
    """Settings read from the environment, as an entry point does."""
    return Settings.load()


def _session_broker(what: str, start: Callable[[], BrokerHandle]) -> Iterator[BrokerHandle]:
    """Start a broker for the session (a broker test fails loudly, never skips), stop it and
    remove its local state afterwards."""
    try:
        handle = start()
    except Exception as exc:
        pytest.fail(f"no {what} for the tests: {exc}", pytrace=False)
    yield handle
    handle.stop()
    if handle.local is not None:
        shutil.rmtree(handle.local.state_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def broker(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerHandle]:
    """A real broker for the whole session (started once, stopped after)."""
    yield from _session_broker(
        "Kafka broker",
        lambda: provision(
            mode=settings.broker_mode,
            external=external_connection(settings),
            home=settings.home,
            state_name=f"pytest-{tmp_path_factory.getbasetemp().name}",
            tie_to_parent=True,
        ),
    )


@pytest.fixture(scope="session")
def secured_broker(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BrokerHandle]:
    """A real broker with TLS, SASL/SCRAM-SHA-512 and ACLs, deny by default (the demo's and
    every deployment's shape; ``deploy.broker.secure``), for the tests of who may do what.
    ``secured_broker.kafka`` is the admin; ``secured_broker.connection(principal)`` any
    principal that ``secured_broker.grant`` created. Always from the jars."""
    yield from _session_broker(
        "secured Kafka broker",
        lambda: provision(
            mode="local",
            external=None,
            home=settings.home,
            state_name=f"pytest-secure-{tmp_path_factory.getbasetemp().name}",
            tie_to_parent=True,
            secure=True,
        ),
    )


@pytest.fixture(scope="session")
def kafka(broker: BrokerHandle) -> KafkaConnection:
    """The connection every test client is built from (``schemas.kafka``)."""
    return broker.kafka


@pytest.fixture(scope="session")
def kafka_bootstrap(broker: BrokerHandle) -> str:
    """The broker's bootstrap address (for ``--bootstrap`` and child processes)."""
    return broker.bootstrap


@pytest.fixture(scope="session")
def kafka_cluster(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalCluster]:
    """A local three-broker KRaft cluster (combined broker+controller nodes, RF 3,
    ``min.insync.replicas`` 2), started once for the session and shared by every test that
    needs replication; ``kafka_cluster.kafka`` is its connection (``schemas.kafka``). Always
    run from the jars: the fault tests kill and pause its nodes. A test that uses it must
    leave it whole (every node running, nothing under-replicated).

    It lives where `tuyen broker up --brokers 3` puts one under a private ``TUYEN_HOME``
    (``kafka_cluster.state_dir.parents[1]``), so the CLI finds it there; the teardown stops it
    as `tuyen broker down --purge` does, and fails when a node survives."""
    private = tmp_path_factory.mktemp("cluster-home")
    home = settings.model_copy(update={"home": private, "kafka_bootstrap": None})
    cluster = local_cluster(home, size=3, cache_dir=settings.home)
    try:
        cluster.start(tie_to_parent=True)
    except Exception as exc:  # a cluster test must fail loudly, never skip
        pytest.fail(f"no local Kafka cluster for the tests: {exc}", pytrace=False)
    yield cluster
    running = cluster.state()
    said = stop_default(home, purge=True)
    alive = [n.node_id for n in running.nodes if pid_alive(n.pid)] if running else []
    assert said == "broker stopped" and not alive, f"{said}; nodes still running: {alive}"


@pytest.fixture
def unique(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """``unique("orders")`` → a name unique to this test and run, for topics and groups."""
    stem = re.sub(r"[^a-zA-Z0-9]+", "-", request.node.name)[:40].strip("-")
    return lambda kind: unique_name(f"{kind}-{stem}")


@pytest.fixture
def make_topic(kafka: KafkaConnection, unique: Callable[[str], str]) -> Callable[..., str]:
    """Create a fresh topic (default 3 partitions) and return its name."""

    def _make(
        kind: str = "topic", partitions: int = 3, config: dict[str, str] | None = None
    ) -> str:
        name = unique(kind)
        client = admin(kafka)  # held while its future completes
        fut = client.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})]
        )[name]
        fut.result(timeout=30)
        return name

    return _make


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where tests keep artefacts for people to look at (screenshots, reports)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
