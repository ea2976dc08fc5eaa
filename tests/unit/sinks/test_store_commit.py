"""The sink's commits: retriable failures stay pending and are retried with backoff, a
revoke drops them, other errors propagate (the `tuyen sink` process then exits non-zero)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka import TopicPartition as TP

from schemas.kafka import KafkaConnection
from sinks.config import sink_config
from sinks.consumer import SinkRunner, retriable_commit_error
from sinks.segments import Commit


class FakeConsumer:
    """Records commits; raises the queued errors first."""

    def __init__(self) -> None:
        self.errors: list[KafkaException] = []
        self.committed_offsets: list[list[tuple[int, int, str | None]]] = []

    def commit(self, *, offsets: list[TP], asynchronous: bool) -> None:
        assert asynchronous is False
        if self.errors:
            raise self.errors.pop(0)
        self.committed_offsets.append([(o.partition, o.offset, o.metadata) for o in offsets])

    def close(self) -> None:
        pass


def _runner(tmp_path: Path) -> tuple[SinkRunner, FakeConsumer]:
    cfg = sink_config(
        "national",
        kafka=KafkaConnection(bootstrap="127.0.0.1:1"),
        store_root=str(tmp_path),
        topic="t",
        group="g",
    )
    runner = SinkRunner(cfg)
    runner.consumer.close()
    fake = FakeConsumer()
    runner.consumer = fake  # type: ignore[assignment]
    return runner, fake


def _err(code: int, **kw: Any) -> KafkaException:
    return KafkaException(KafkaError(code, "test", **kw))


@pytest.mark.parametrize(
    "code",
    [
        KafkaError._WAIT_COORD,
        KafkaError.NOT_COORDINATOR,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError._TRANSPORT,
        KafkaError.REBALANCE_IN_PROGRESS,
    ],
)
def test_outage_errors_are_retriable(code: int) -> None:
    assert retriable_commit_error(_err(code))


def test_fatal_and_other_errors_are_not() -> None:
    assert not retriable_commit_error(_err(KafkaError._WAIT_COORD, fatal=True))
    assert not retriable_commit_error(_err(KafkaError.TOPIC_AUTHORIZATION_FAILED))
    assert not retriable_commit_error(_err(KafkaError.OFFSET_METADATA_TOO_LARGE))


def test_a_failed_commit_stays_pending_and_is_retried_after_backoff(tmp_path: Path) -> None:
    runner, fake = _runner(tmp_path)
    fake.errors = [_err(KafkaError._WAIT_COORD), _err(KafkaError.NOT_COORDINATOR)]
    assert not runner._commit([Commit(0, 10, 0), Commit(1, 5, 0)])
    assert runner.pending_commits == {0: Commit(0, 10, 0), 1: Commit(1, 5, 0)}
    assert not runner._commit([Commit(0, 20, 10)])  # within the backoff: not even tried
    assert fake.errors and not fake.committed_offsets
    assert not runner._commit([], force=True)  # second failure
    assert runner._commit([], force=True)
    assert fake.committed_offsets == [[(0, 20, "tuyen-seg=10"), (1, 5, "tuyen-seg=0")]]
    assert runner.pending_commits == {}
    assert runner.stats.commits == 1


def test_a_revoke_drops_the_pending_commits_of_its_partitions(tmp_path: Path) -> None:
    runner, fake = _runner(tmp_path)
    fake.errors = [_err(KafkaError.REQUEST_TIMED_OUT)]
    runner._commit([Commit(0, 10, 0), Commit(1, 5, 0)])
    runner._on_revoke(runner.consumer, [TP("t", 0)])
    assert runner._commit([], force=True)
    assert fake.committed_offsets == [[(1, 5, "tuyen-seg=0")]]


def test_a_non_retriable_commit_error_propagates(tmp_path: Path) -> None:
    runner, fake = _runner(tmp_path)
    fake.errors = [_err(KafkaError.TOPIC_AUTHORIZATION_FAILED)]
    with pytest.raises(KafkaException):
        runner._commit([Commit(0, 10, 0)])
