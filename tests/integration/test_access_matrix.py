"""Who may do what, tried on a real secured broker (TLS, SCRAM-SHA-512, StandardAuthorizer,
deny by default), with the principals and ACLs of ``deploy.principals``.

Every claim of the access matrix (docs/deploy.md) is attempted, the allowed and the refused:
a station writes ``station.changes`` and nothing else, and so does a registered facility (a
hospital importing its exports) through its own principal; a province's sink reads its own
province's record-level topic only; the national sink the national tier only; the monitor
describes everything, gets lag in seconds and freshness, and reads no record-level value nor
the DLQ; only the operators and the DLQ sink read the DLQ; nobody gets in without TLS and a
valid credential. The same derivation on a secured three-broker cluster ends the module.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from pydantic import SecretStr

from deploy.broker import BrokerHandle, provision
from deploy.principals import (
    MONITOR,
    OPERATORS,
    STREAMS,
    TOPICS_ADMIN,
    facility_principals,
    principals,
    province_sink,
    sink_principal,
    station_principal,
)
from deploy.settings import Settings
from deploy.topics import apply_topics
from schemas import topics as T
from schemas.facilities import FacilityRegistry
from schemas.kafka import KafkaConnection, KafkaUnreachable, check_connection, consumer, producer
from sinks.config import sink_group
from streams.monitor.collector import LagCollector
from streams.monitor.config import MonitorConfig
from streams.monitor.health import HealthCollector
from streams.monitor.kafka_io import KafkaClients
from tests.helpers import unique_name

PROVINCES = ("01", "79")
STATIONS = ("00004", "00007")
#: a provincial hospital of the facility registry: it publishes as ``station-90001``
FACILITIES = FacilityRegistry.from_csv(
    "ma_cskcb,source,name,province,valid_from,valid_to\n01001,90001,BV tỉnh,01,,\n"
    "01002,00004,TYT (a station that exports files only),,,\n"
)
OK = "ok"
DENIED = {
    "TOPIC_AUTHORIZATION_FAILED",
    "GROUP_AUTHORIZATION_FAILED",
    "CLUSTER_AUTHORIZATION_FAILED",
    "_NOT_IMPLEMENTED",
    "UNKNOWN_TOPIC_OR_PART",  # a topic it may not Describe does not exist for it
}


@dataclass(frozen=True)
class Matrix:
    """One prefix's principals and topics on the secured broker."""

    handle: BrokerHandle
    prefix: str

    def conn(self, principal: str) -> KafkaConnection:
        return self.handle.connection(self.prefix + principal)

    def topic(self, base: str) -> str:
        return T.topic_name(base, self.prefix)

    def province(self, code: str) -> str:
        return T.province_topic(code, self.prefix)


@pytest.fixture(scope="module")
def matrix(secured_broker: BrokerHandle) -> Iterator[Matrix]:
    prefix = unique_name("acl") + "."
    secured_broker.grant(
        principals(
            prefix,
            record_topics="province",
            provinces=PROVINCES,
            stations=STATIONS,
            facilities=FACILITIES,
        )
    )
    m = Matrix(secured_broker, prefix)
    specs = T.topic_specs(prefix, 1, record_topics="province", provinces=PROVINCES)
    apply_topics(m.conn(TOPICS_ADMIN), specs)
    # one record on every topic, written by the admin (super user)
    p = producer(secured_broker.kafka)
    now = time.time()
    for spec in specs:
        p.produce(spec.name, b'{"x": 1}', b"k", headers=[("ce_time", _iso(now - 5))])
    assert p.flush(30) == 0
    yield m


def _iso(ts: float) -> bytes:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(ts)).encode()


def produce(conn: KafkaConnection, topic: str) -> str:
    """``ok`` or the error name of one produce."""
    got: list[KafkaError | None] = []
    p = producer(conn, {"message.timeout.ms": 15000, "enable.idempotence": True})
    try:
        p.produce(topic, b"v", b"k", on_delivery=lambda err, _msg: got.append(err))
        p.flush(20)
    except KafkaException as exc:  # fatal: e.g. no idempotent producer id without any Write
        return str(exc.args[0].name())
    except SystemError as exc:  # the fatal error raised while a delivery report was being made
        if isinstance(exc.__cause__, KafkaException):
            return str(exc.__cause__.args[0].name())
        raise
    if not got:
        return "no delivery report"
    return OK if got[0] is None else got[0].name()


def consume(conn: KafkaConnection, topic: str, group: str | None = None) -> str:
    """``ok`` when a record of ``topic`` is read (in ``group``, or assigned without a group),
    else the error name; within a deadline."""
    overrides: dict[str, Any] = {
        "group.id": group or unique_name("_assign-only"),
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "topic.metadata.refresh.interval.ms": 1000,
    }
    c = consumer(conn, overrides)
    try:
        # a topic the principal may not Describe does not exist for it
        if topic not in c.list_topics(timeout=10).topics:
            return "UNKNOWN_TOPIC_OR_PART"
        if group is None:
            c.assign([TopicPartition(topic, 0, 0)])
        else:
            c.subscribe([topic])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                msg = c.poll(0.5)
            except KafkaException as exc:
                return str(exc.args[0].name())
            if msg is None:
                continue
            err = msg.error()
            if err is None:
                return OK
            if group is None and err.code() == KafkaError.GROUP_AUTHORIZATION_FAILED:
                continue  # assign-only: the coordinator lookup of an unused group id
            if err.code() != KafkaError._PARTITION_EOF:
                return str(err.name())
        return "timeout"
    finally:
        c.close()


def denied(outcome: str) -> bool:
    return outcome in DENIED


# ---------------------------------------------------------------- stations


def test_a_facility_publishes_as_its_own_station_principal() -> None:
    """The registry's hospital gets ``station-90001`` with a station's rights; the station
    that only exports files keeps its own station principal (no second one)."""
    assert facility_principals(FACILITIES) == dict([station_principal("90001")])


@pytest.mark.parametrize(
    "name", [station_principal(STATIONS[0])[0], *facility_principals(FACILITIES)]
)
def test_a_station_writes_station_changes_and_nothing_else(matrix: Matrix, name: str) -> None:
    station = matrix.conn(name)
    assert produce(station, matrix.topic(T.RAW)) == OK
    for other in (T.VALID, T.DLQ, T.TIER_NATIONAL, T.AGGREGATES, T.REJECTIONS):
        assert denied(produce(station, matrix.topic(other))), other
    assert denied(produce(station, matrix.province("01")))
    # it reads nothing, not even its own topic, and cannot join a group
    assert denied(consume(station, matrix.topic(T.RAW)))
    assert denied(consume(station, matrix.topic(T.RAW), group=matrix.prefix + "station-group"))
    assert denied(consume(station, matrix.province("01")))
    # it sees only the one topic it may write
    md = producer(station).list_topics(timeout=10)
    visible = {t for t in md.topics if t.startswith(matrix.prefix)}
    assert visible == {matrix.topic(T.RAW)}


# ---------------------------------------------------------------- sinks


def test_a_province_sink_reads_its_own_province_only(matrix: Matrix) -> None:
    sink = matrix.conn(province_sink("01"))
    own = matrix.province("01")
    assert consume(sink, own, group=sink_group("province", matrix.prefix, "01")) == OK
    assert consume(sink, own, group=sink_group("district", matrix.prefix, "01")) == OK
    assert denied(consume(sink, matrix.province("79")))
    assert denied(consume(sink, matrix.province("79"), sink_group("province", matrix.prefix, "79")))
    for other in (T.TIER_NATIONAL, T.DLQ, T.RAW, T.VALID, T.AGGREGATES):
        assert denied(consume(sink, matrix.topic(other))), other
    # its own topic, in a group that is not its own
    assert denied(consume(sink, own, group=sink_group("province", matrix.prefix, "79")))
    assert denied(produce(sink, own))


def test_the_national_sink_reads_the_national_tier_only(matrix: Matrix) -> None:
    sink = matrix.conn(sink_principal("national"))
    national = matrix.topic(T.TIER_NATIONAL)
    assert consume(sink, national, group=sink_group("national", matrix.prefix)) == OK
    for code in PROVINCES:
        assert denied(consume(sink, matrix.province(code)))
    for other in (T.DLQ, T.RAW, T.VALID, T.AGGREGATES, T.REJECTIONS):
        assert denied(consume(sink, matrix.topic(other))), other


def test_only_the_operators_and_the_dlq_sink_read_the_dlq(matrix: Matrix) -> None:
    dlq = matrix.topic(T.DLQ)
    assert consume(matrix.conn(OPERATORS), dlq) == OK
    dlq_sink = matrix.conn(sink_principal("dlq"))
    assert consume(dlq_sink, dlq, group=sink_group("dlq", matrix.prefix)) == OK
    others = [
        STREAMS,
        MONITOR,
        TOPICS_ADMIN,
        sink_principal("national"),
        sink_principal("aggregates"),
        *(province_sink(c) for c in PROVINCES),
        *(station_principal(s)[0] for s in STATIONS),
    ]
    for name in others:
        assert denied(consume(matrix.conn(name), dlq)), name


def test_the_stream_worker_reads_raw_and_writes_derived_topics_only(matrix: Matrix) -> None:
    streams = matrix.conn(STREAMS)
    assert consume(streams, matrix.topic(T.RAW)) == OK
    for topic in (T.VALID, T.DLQ, T.REJECTIONS, T.TIER_NATIONAL, T.AGGREGATES):
        assert produce(streams, matrix.topic(topic)) == OK, topic
    assert produce(streams, matrix.province("79")) == OK
    assert denied(produce(streams, matrix.topic(T.RAW)))
    for topic in (matrix.province("01"), matrix.topic(T.TIER_NATIONAL), matrix.topic(T.DLQ)):
        assert denied(consume(streams, topic)), topic


# ---------------------------------------------------------------- the monitor


def test_the_monitor_describes_everything_and_reads_no_record_level_value(
    matrix: Matrix,
) -> None:
    monitor = matrix.conn(MONITOR)
    for topic in (*(matrix.province(c) for c in PROVINCES), matrix.topic(T.DLQ)):
        assert denied(consume(monitor, topic)), topic
    assert denied(consume(monitor, matrix.topic(T.RAW)))
    # what it needs: the national and aggregate feeds (freshness), the rejections (reasons)
    for topic in (T.TIER_NATIONAL, T.AGGREGATES, T.REJECTIONS):
        assert consume(monitor, matrix.topic(topic)) == OK, topic
    assert denied(produce(monitor, matrix.topic(T.TIER_NATIONAL)))

    # a province sink consumes and commits, and lags: the monitor sees it all by Describe
    group = sink_group("province", matrix.prefix, "01")
    sink = consumer(
        matrix.conn(province_sink("01")),
        {"group.id": group, "enable.auto.commit": False, "auto.offset.reset": "earliest"},
    )
    sink.subscribe([matrix.province("01")])
    msg = None
    deadline = time.monotonic() + 30
    while msg is None and time.monotonic() < deadline:
        m = sink.poll(0.5)
        msg = m if m is not None and m.error() is None else None
    assert msg is not None
    sink.commit(message=msg, asynchronous=False)
    sink.close()
    admin = producer(matrix.handle.kafka)
    for _ in range(3):
        admin.produce(matrix.province("01"), b"later", b"k")
    admin.flush(10)

    config = MonitorConfig(kafka=monitor, topic_prefix=matrix.prefix, group_prefix=matrix.prefix)
    clients = KafkaClients(monitor)
    groups = {g.group: g for g in LagCollector(config, clients).collect()}
    lag = groups[group]
    [part] = lag.partitions
    assert part.lag == 3 and part.lag_seconds is not None and part.lag_seconds >= 0
    health = HealthCollector(config, clients).collect()
    assert health.topic_events[matrix.province("01")] >= 4
    assert "national" in health.freshness_histograms


def test_lag_seconds_from_list_offsets_equal_the_message_timestamps(matrix: Matrix) -> None:
    """The timestamp search by ListOffsets finds each message's own timestamp (timestamps
    that only go forward, as LogAppendTime and the pipeline's own producers make them)."""
    topic = matrix.prefix + "timestamps"
    apply_topics(matrix.conn(TOPICS_ADMIN), [T.TopicSpec(topic, 1)])
    admin = producer(matrix.handle.kafka)
    base = int(time.time() * 1000) - 60_000
    stamps = [base + i * 997 for i in range(20)] + [base + 30_000] * 3
    for ts in stamps:
        admin.produce(topic, b"v", b"k", timestamp=ts)
    admin.flush(10)
    monitor = KafkaClients(matrix.conn(MONITOR))
    end = monitor.end_offsets([(topic, 0)])[(topic, 0)]
    first = end - len(stamps)
    assert first == 0
    for i, ts in enumerate(stamps):
        got = monitor.timestamps_at({(topic, 0): first + i})
        assert got == {(topic, 0): ts}, i


# ---------------------------------------------------------------- no way in without credentials


def test_nobody_gets_in_without_tls_and_a_valid_credential(matrix: Matrix) -> None:
    good = matrix.conn(MONITOR)
    plaintext = KafkaConnection(bootstrap=good.bootstrap)
    with pytest.raises(KafkaUnreachable):
        check_connection(plaintext, timeout_s=5)
    wrong = good.model_copy(update={"sasl_password": SecretStr("not-the-password")})
    with pytest.raises(KafkaUnreachable, match="refused the credentials"):
        check_connection(wrong, timeout_s=10)
    nobody = good.model_copy(update={"sasl_username": "nobody"})
    with pytest.raises(KafkaUnreachable):
        check_connection(nobody, timeout_s=10)
    untrusted = good.model_copy(update={"ssl_ca_location": None})  # the system's CAs
    with pytest.raises(KafkaUnreachable):
        check_connection(untrusted, timeout_s=10)


def test_node_config_has_no_plaintext_listener_and_one_super_user(
    secured_broker: BrokerHandle,
) -> None:
    assert secured_broker.local is not None
    props = dict(
        line.split("=", 1)
        for line in (secured_broker.local.state_dir / "server.properties").read_text().splitlines()
    )
    assert set(props["listener.security.protocol.map"].split(",")) == {
        "BROKER:SASL_SSL",
        "CONTROLLER:SASL_SSL",
    }
    assert props["super.users"] == "User:admin"
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["authorizer.class.name"].endswith("StandardAuthorizer")
    mode = (secured_broker.local.state_dir / "server.properties").stat().st_mode & 0o777
    assert mode == 0o600


# ---------------------------------------------------------------- three brokers


@pytest.mark.slow
def test_the_same_access_on_a_secured_three_broker_cluster(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    home = tmp_path_factory.mktemp("secure-cluster")
    handle = provision(
        mode="local",
        external=None,
        home=home,
        state_name="cluster",
        tie_to_parent=True,
        brokers=3,
        secure=True,
    )
    try:
        prefix = "c."
        m = Matrix(handle, prefix)
        handle.grant(
            principals(prefix, record_topics="province", provinces=("01",), stations=("00004",))
        )
        specs = T.topic_specs(prefix, 3, record_topics="province", provinces=("01",))
        apply_topics(m.conn(TOPICS_ADMIN), specs)
        station = m.conn(station_principal("00004")[0])
        assert produce(station, m.topic(T.RAW)) == OK
        assert denied(produce(station, m.topic(T.TIER_NATIONAL)))
        assert produce(m.conn(STREAMS), m.province("01")) == OK
        sink = m.conn(province_sink("01"))
        assert consume(sink, m.province("01"), sink_group("province", prefix, "01")) == OK
        assert denied(consume(sink, m.topic(T.DLQ)))
        md = producer(handle.kafka).list_topics(timeout=10)
        assert len(md.brokers) == 3
        assert {len(p.replicas) for p in md.topics[m.topic(T.RAW)].partitions.values()} == {3}
    finally:
        handle.stop()
