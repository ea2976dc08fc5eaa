"""Shared fixtures: one real Kafka broker per test session, unique names per test.

The broker follows the project's rule (KAFKA_BOOTSTRAP, else Docker via testcontainers,
else local KRaft jars). A test that needs a broker and cannot get one fails: it never skips.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from deploy.broker import provision
from deploy.broker.cluster import LocalCluster
from deploy.settings import Settings
from tests.helpers import unique_name

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture(scope="session")
def settings() -> Settings:
    """Settings read from the environment, as an entry point does."""
    return Settings()


@pytest.fixture(scope="session")
def kafka_bootstrap(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap address of a real broker for the whole session (started once, stopped after)."""
    state_name = f"pytest-{tmp_path_factory.getbasetemp().name}"
    try:
        handle = provision(
            mode=settings.broker_mode,
            kafka_bootstrap=settings.kafka_bootstrap,
            home=settings.home,
            state_name=state_name,
            tie_to_parent=True,
        )
    except Exception as exc:  # a broker test must fail loudly, never skip
        pytest.fail(f"no Kafka broker for the tests: {exc}", pytrace=False)
    yield handle.bootstrap
    handle.stop()
    if handle.local is not None:
        shutil.rmtree(handle.local.state_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def kafka_cluster(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalCluster]:
    """A local three-broker KRaft cluster (combined broker+controller nodes, RF 3,
    ``min.insync.replicas`` 2), started once for the session and shared by every test that
    needs replication. Always run from the jars: the fault tests kill and pause its nodes.
    A test that uses it must leave it whole (every node running, nothing under-replicated)."""
    cluster = LocalCluster(tmp_path_factory.mktemp("cluster") / "c", settings.home, size=3)
    try:
        cluster.start(tie_to_parent=True)
    except Exception as exc:  # a cluster test must fail loudly, never skip
        pytest.fail(f"no local Kafka cluster for the tests: {exc}", pytrace=False)
    yield cluster
    cluster.stop()
    shutil.rmtree(cluster.state_dir, ignore_errors=True)


@pytest.fixture
def unique(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """``unique("orders")`` → a name unique to this test and run, for topics and groups."""
    stem = re.sub(r"[^a-zA-Z0-9]+", "-", request.node.name)[:40].strip("-")
    return lambda kind: unique_name(f"{kind}-{stem}")


@pytest.fixture
def make_topic(kafka_bootstrap: str, unique: Callable[[str], str]) -> Callable[..., str]:
    """Create a fresh topic (default 3 partitions) and return its name."""

    def _make(
        kind: str = "topic", partitions: int = 3, config: dict[str, str] | None = None
    ) -> str:
        name = unique(kind)
        admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
        fut = admin.create_topics(
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
