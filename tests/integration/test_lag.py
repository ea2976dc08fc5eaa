"""`tuyen lag` against the real broker: drive a consumer group into each Burrow state.

A driver commits explicit offsets for a group (as a consumer does after processing), so the
commit history is exactly what each state needs; the OK case uses a real subscribed
consumer. Time is injected: the collector's clock is frozen at the last commit's timestamp
(or moved far past it for STOP), so no test sleeps.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import orjson
import pytest
from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    Producer,
    TopicPartition,
)
from typer.testing import CliRunner

from deploy.cli.root import app
from schemas.kafka import KafkaConnection, admin, consumer, producer
from streams.monitor.burrow import Status
from streams.monitor.collector import LagCollector
from streams.monitor.config import MonitorConfig
from streams.monitor.kafka_io import now_ms
from streams.monitor.model import GroupLag
from tests.helpers import commit_offset, wait_until

pytestmark = pytest.mark.broker


@dataclass
class FakeClock:
    """Milliseconds the test decides; ``None`` = wall clock."""

    value: int | None = None

    def __call__(self) -> int:
        return now_ms() if self.value is None else self.value


def next_ms() -> None:
    """Let the millisecond clock tick, so later messages are stamped after the last commit."""
    start = now_ms()
    wait_until(lambda: now_ms() > start, timeout=1, interval=0.0005, message="clock tick")


FAST = {"retry.backoff.ms": 10, "retry.backoff.max.ms": 100}  # idle clients start fast


@dataclass
class Driver:
    """One topic (1 partition), a producer and a group committing chosen offsets."""

    kafka: KafkaConnection
    topic: str
    group: str
    producer: Producer = field(init=False)
    committer: Consumer = field(init=False)

    def __post_init__(self) -> None:
        self.producer = producer(self.kafka, {"linger.ms": 0, **FAST})
        self.committer = consumer(
            self.kafka, {"group.id": self.group, "enable.auto.commit": False, **FAST}
        )

    def produce(self, n: int) -> None:
        for i in range(n):
            self.producer.produce(self.topic, key=b"k", value=b"v%d" % i)
        assert self.producer.flush(10) == 0

    def commit(self, offset: int) -> None:
        commit_offset(self.committer, self.topic, offset)
        next_ms()

    def close(self) -> None:
        self.committer.close()


@pytest.fixture
def driver(
    kafka: KafkaConnection, make_topic: Callable[..., str], unique: Callable[[str], str]
) -> Iterator[Driver]:
    d = Driver(kafka, make_topic("lag", partitions=1), unique("group"))
    yield d
    d.close()


def collect(driver: Driver, clock: FakeClock, after_last_ms: int | None = 0) -> GroupLag:
    """The group's lag; the clock at last commit + ``after_last_ms`` (None: wall clock)."""
    collector = LagCollector(MonitorConfig(kafka=driver.kafka, groups=(driver.group,)))
    collector.clock = clock
    try:
        collector.log.catch_up()
        commits = collector.log.commits(driver.group, driver.topic, 0)
        if after_last_ms is not None and commits:
            clock.value = commits[-1].timestamp_ms + after_last_ms
        (group,) = collector.collect()
    finally:
        collector.close()
    return group


def assert_matches_broker(driver: Driver, group: GroupLag) -> None:
    """Offsets and lag equal what AdminClient and a watermark query report."""
    client = admin(driver.kafka)  # held while its futures complete
    res = client.list_consumer_group_offsets([ConsumerGroupTopicPartitions(driver.group)])
    (tp,) = res[driver.group].result(timeout=10).topic_partitions
    _low, high = driver.committer.get_watermark_offsets(
        TopicPartition(driver.topic, 0), timeout=10, cached=False
    )
    (p,) = group.partitions
    assert (p.topic, p.partition) == (driver.topic, 0)
    assert p.committed == tp.offset
    assert p.end_offset == high
    assert p.lag == high - tp.offset


def test_caught_up_group_is_ok(driver: Driver) -> None:
    driver.produce(20)
    member = consumer(
        driver.kafka,
        {
            "group.id": driver.group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
            **FAST,
        },
    )
    member.subscribe([driver.topic])
    seen = []

    def drained() -> bool:
        msg = member.poll(0.2)
        if msg is not None and msg.error() is None:
            seen.append(msg.offset())
            member.commit(message=msg, asynchronous=False)
        return len(seen) == 20

    try:
        wait_until(drained, timeout=30, interval=0, message="20 messages consumed")
    finally:
        member.close()
    group = collect(driver, FakeClock(), after_last_ms=None)  # wall clock: caught up wins
    assert group.status is Status.OK
    (p,) = group.partitions
    assert (p.lag, p.lag_seconds, p.status) == (0, 0.0, Status.OK)
    assert p.commits == 10 and p.complete == 1.0  # the window holds the last 10 of 20
    assert group.complete == 1.0 and group.partition_count == 1
    assert_matches_broker(driver, group)


def test_consumer_that_died_caught_up_is_stop_once_data_arrives(driver: Driver) -> None:
    """Burrow #290: every commit had zero lag, then the consumer died and data kept coming.
    The end-offset history (seeded from message timestamps) shows it was not caught up
    recently, so it is STOP, not OK for ever."""
    for i in range(1, 11):
        driver.produce(1)
        driver.commit(i)  # caught up at every commit
    driver.produce(5)
    clock = FakeClock()
    group = collect(driver, clock, after_last_ms=3_600_000)
    (p,) = group.partitions
    assert (group.status, p.status, p.lag) == (Status.ERR, Status.STOP, 5)
    assert p.start is not None and p.end is not None
    assert (p.start.lag, p.end.lag) == (0, 0)


def test_stopped_group_while_producing_continues_is_stop(driver: Driver) -> None:
    driver.produce(100)
    for i in range(1, 11):  # consuming and catching up, but never caught up
        driver.commit(5 * i)
    driver.produce(20)  # the consumer stopped; producers go on
    clock = FakeClock()
    assert collect(driver, clock, after_last_ms=0).status is Status.OK  # right after: fine
    group = collect(driver, clock, after_last_ms=3_600_000)  # an hour later, no commit
    (p,) = group.partitions
    assert (group.status, p.status) == (Status.ERR, Status.STOP)
    assert p.lag == 70 and p.lag_seconds is not None and p.lag_seconds >= 3600
    assert_matches_broker(driver, group)


def test_committing_the_same_offset_with_lag_is_stall(driver: Driver) -> None:
    driver.produce(50)
    for _ in range(10):
        driver.commit(5)
    group = collect(driver, FakeClock())
    (p,) = group.partitions
    assert (group.status, p.status) == (Status.ERR, Status.STALL)
    assert p.lag == 45
    assert_matches_broker(driver, group)


def test_lag_growing_across_the_window_is_warn(driver: Driver) -> None:
    for i in range(1, 11):  # five new messages per commit, one consumed
        driver.produce(5)
        driver.commit(i)
    group = collect(driver, FakeClock())
    (p,) = group.partitions
    assert (group.status, p.status) == (Status.WARN, Status.WARN)
    assert p.lag == 40 and p.lag_seconds is not None and p.lag_seconds > 0
    assert_matches_broker(driver, group)


def test_seeking_backwards_and_committing_is_rewind(driver: Driver) -> None:
    driver.produce(50)
    for offset in (10, 20, 30, 15, 16):
        driver.commit(offset)
    group = collect(driver, FakeClock())
    (p,) = group.partitions
    assert (group.status, p.status) == (Status.ERR, Status.REWIND)
    assert p.lag == 34
    assert_matches_broker(driver, group)


def test_lag_seconds_is_the_age_of_the_first_unconsumed_message(driver: Driver) -> None:
    driver.produce(3)
    driver.commit(1)
    clock = FakeClock()
    group = collect(driver, clock, after_last_ms=None)
    reader = consumer(driver.kafka, {"group.id": "unused", **FAST})
    reader.assign([TopicPartition(driver.topic, 0, 1)])
    msg = wait_until(lambda: reader.poll(0.2), timeout=10, message="message at offset 1")
    reader.close()
    (p,) = group.partitions
    # collected before this read, with the wall clock: the age is at most now − timestamp
    assert p.lag_seconds is not None
    assert 0 < p.lag_seconds <= (now_ms() - msg.timestamp()[1]) / 1000


def test_lag_cli_json_and_check_exit_codes(driver: Driver) -> None:
    driver.produce(10)
    for _ in range(10):
        driver.commit(2)
    args = ["lag", "--bootstrap", driver.kafka.bootstrap, "--group", driver.group, "--prefix", ""]
    started = time.monotonic()
    res = CliRunner().invoke(app, [*args, "--format", "json", "--check"])
    assert res.exit_code == 1, res.output
    doc = orjson.loads(res.stdout)
    (g,) = doc["groups"]
    assert g["group"] == driver.group and g["status"] == "ERR"
    assert g["partitions"][0]["lag"] == 8
    driver.commit(10)  # catch up
    res = CliRunner().invoke(app, [*args, "--check"])
    assert res.exit_code == 0, res.output
    assert "OK" in res.stdout and "ERR" not in res.stdout
    assert time.monotonic() - started < 20


def test_a_named_group_that_does_not_exist_is_notfound_exit_2(driver: Driver) -> None:
    driver.produce(3)
    driver.commit(3)  # a real, caught-up group beside the missing one
    args = [
        "lag",
        "--bootstrap",
        driver.kafka.bootstrap,
        "--prefix",
        "",
        "--check",
        "--format",
        "json",
    ]
    res = CliRunner().invoke(app, [*args, "--group", "no-such-group-anywhere"])
    assert res.exit_code == 2, res.output
    (g,) = orjson.loads(res.stdout)["groups"]
    assert (g["group"], g["status"], g["status_code"]) == ("no-such-group-anywhere", "NOTFOUND", 0)
    both = [*args, "--group", "no-such-group-anywhere", "--group", driver.group]
    assert CliRunner().invoke(app, both).exit_code == 2
    res = CliRunner().invoke(app, [*args, "--group", driver.group])
    assert res.exit_code == 0, res.output


def test_an_unreachable_broker_exits_2() -> None:
    from deploy.broker.local import free_port

    res = CliRunner().invoke(app, ["lag", "--bootstrap", f"127.0.0.1:{free_port()}", "--check"])
    assert res.exit_code == 2, res.output
    assert "unreachable" in res.output


def test_allowed_lag_and_min_complete(driver: Driver) -> None:
    driver.produce(10)
    for _ in range(4):
        driver.commit(8)  # stalled two behind: STALL with a 4/10 window
    args = ["lag", "--bootstrap", driver.kafka.bootstrap, "--group", driver.group, "--prefix", ""]
    assert CliRunner().invoke(app, [*args, "--check"]).exit_code == 1
    ok = CliRunner().invoke(app, [*args, "--check", "--allowed-lag", "2"])
    assert ok.exit_code == 0, ok.output
    young = CliRunner().invoke(app, [*args, "--check", "--min-complete", "0.5"])
    assert young.exit_code == 0, young.output
    res = CliRunner().invoke(app, [*args, "--format", "json"])
    (g,) = orjson.loads(res.stdout)["groups"]
    assert (g["partition_count"], g["complete"], g["maxlag"]["lag"]) == (1, 0.0, 2)
