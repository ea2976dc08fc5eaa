"""Who may do what on Kafka: every principal and its ACLs, derived once from the topic
declarations (``schemas.topics``) and the province list.

This is the ONE derivation every cluster uses: the local secured broker applies it through
the AdminClient (``deploy.broker.secure``), ``deploy/k8s/generate.py`` writes it as Strimzi
``KafkaUser`` resources and as ``deploy/security/kafka-acls.sh`` (which the docker-compose
pilot runs), and the access-matrix tests check it on a real secured broker. Deny by
default: a principal may do exactly what is listed here and nothing else.

- ``station-<code>``: Write + Describe ``station.changes``; nothing else (it cannot read a
  topic, write another or join a group).
- a facility outside the station hierarchy that the facility registry (``TUYEN_FACILITIES``,
  ``schemas.facilities``) lets publish — a hospital, a clinic importing its Decision 130 or
  FHIR exports with ``tuyen import`` — publishes like a station: its own principal
  ``station-<source>`` (its registry source code, ``90000``–``99999``), a station's rights
  exactly (``facility_principals``). A commune station that only exports Decision 130 files
  publishes as itself, with its station principal; so does a station's ``tuyen report
  submit`` (its head's signed submission goes to ``station.changes``).
- ``tuyen-streams``: Read ``station.changes``; Write ``changes.valid``, the DLQ, the
  rejections, ``tier.national``, ``aggregates.live`` and every ``tier.province.<code>``
  (the development shape: ``tier.district``/``tier.province``); its group and its own topics
  (prefix ``tuyen-streams``).
- ``tuyen-sink-province-<code>``: Read ``tier.province.<code>`` in the groups
  ``tuyen-sink-province-<code>`` and ``tuyen-sink-district-<code>`` (that province's
  district and province stores); no other province, not the national tier, not the DLQ.
- ``tuyen-sink-national``, ``tuyen-sink-aggregates``: Read their one topic in their group.
- ``tuyen-sink-dlq``: Read the DLQ in its group (it writes the operators' quarantine root).
- ``tuyen-sink-signoff``: Read ``signoff.decisions`` in its group (it verifies each decision
  and writes it into the root of the decision's province).
- ``tuyen-portal`` and ``tuyen-approver``: Write + Describe ``signoff.decisions`` only: the
  portal's approvals and ``tuyen report approve|send-back|lock`` (never a record topic).
- ``tuyen-sink-district``, ``tuyen-sink-province``: the development shape only
  (``record_topics="single"``, never deployed): the single record-level topics.
- ``tuyen-monitor``: Describe every topic and group (metadata, end offsets, offsets by
  timestamp, committed offsets); Read ``__consumer_offsets`` (commit history),
  ``tier.national``, ``aggregates.live`` (freshness) and the rejections (reasons without
  the payload). Never a record-level topic or the DLQ; never writes.
- ``tuyen-operators``: what the monitor may, and Read the DLQ (inspection, replays).
- ``tuyen-topics``: Create, Describe, Alter, DescribeConfigs, AlterConfigs on topics.
- ``admin``: the only super user (the brokers' own traffic, principals and ACLs).

With a topic prefix (tests, parallel demos on one cluster) every topic, group and principal
name gets the prefix, so the principals of one prefix cannot touch another's topics.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from schemas.topics import (
    AGGREGATES,
    DLQ,
    RAW,
    REJECTIONS,
    SIGNOFF,
    TIER_DISTRICT,
    TIER_NATIONAL,
    TIER_PROVINCE,
    VALID,
    RecordTopics,
    province_codes,
    province_topic,
    province_topic_prefix,
)
from sinks.config import sink_group
from streams.config import APP_ID
from streams.monitor.kafka_io import READER_GROUP_PREFIX
from streams.monitor.offsets_log import OFFSETS_TOPIC

if TYPE_CHECKING:
    from schemas.facilities import FacilityRegistry

__all__ = [
    "ADMIN",
    "APPROVER",
    "MONITOR",
    "OFFSETS_TOPIC",
    "OPERATORS",
    "PORTAL",
    "STREAMS",
    "TOPICS_ADMIN",
    "Acl",
    "Principals",
    "district_sink_group",
    "facility_principals",
    "facility_sources",
    "principals",
    "province_sink",
    "province_sink_group",
    "sink_group",
    "sink_principal",
    "station_principal",
]

Resource = Literal["topic", "group", "cluster"]
Pattern = Literal["literal", "prefix"]

ADMIN: Final = "admin"
STREAMS: Final = APP_ID
MONITOR: Final = "tuyen-monitor"
OPERATORS: Final = "tuyen-operators"
TOPICS_ADMIN: Final = "tuyen-topics"
#: Approvers publish signed sign-off decisions: the portal (its approver accounts) and
#: people running ``tuyen report approve|send-back|lock`` from an operator's machine.
PORTAL: Final = "tuyen-portal"
APPROVER: Final = "tuyen-approver"
STATION_PREFIX: Final = "station-"

#: Sinks of one topic each (group ``tuyen-sink-<name>``); the record-level tiers of the
#: per-province shape are the province sinks (``province_sink``).
SHARED_SINKS: Final[dict[str, str]] = {
    "national": TIER_NATIONAL,
    "aggregates": AGGREGATES,
    "dlq": DLQ,
    "signoff": SIGNOFF,
}
#: The development shape's single record-level topics and their sinks.
SINGLE_TOPIC_SINKS: Final[dict[str, str]] = {
    "district": TIER_DISTRICT,
    "province": TIER_PROVINCE,
}


@dataclass(frozen=True, slots=True)
class Acl:
    """One allow rule: a resource (type, name, literal or prefix pattern) and operations."""

    resource: Resource
    name: str
    operations: tuple[str, ...]
    pattern: Pattern = "literal"


Principals = Mapping[str, tuple[Acl, ...]]


def _read(topic: str, pattern: Pattern = "literal") -> Acl:
    return Acl("topic", topic, ("Read", "Describe"), pattern)


def _write(topic: str, pattern: Pattern = "literal") -> Acl:
    return Acl("topic", topic, ("Write", "Describe"), pattern)


def _group(name: str, pattern: Pattern = "literal") -> Acl:
    return Acl("group", name, ("Read",), pattern)


def _everything(kind: Resource, prefix: str, operations: tuple[str, ...]) -> Acl:
    """Every topic or group of a prefix (literal ``*`` without one)."""
    if prefix:
        return Acl(kind, prefix, operations, "prefix")
    return Acl(kind, "*", operations)


def province_sink_group(code: str, prefix: str = "") -> str:
    """The group of one province's province-store sink."""
    return sink_group("province", prefix, code)


def district_sink_group(code: str, prefix: str = "") -> str:
    """The group of one province's district-store sink (same topic, same principal)."""
    return sink_group("district", prefix, code)


def sink_principal(name: str, prefix: str = "") -> str:
    """The principal of a shared sink (national, aggregates, dlq; development shape's
    district and province)."""
    return f"{prefix}tuyen-sink-{name}"


def province_sink(code: str, prefix: str = "") -> str:
    """The principal of one province's record-level sinks (its district and province
    stores): ``tuyen-sink-province-<code>``."""
    return f"{prefix}tuyen-sink-province-{code}"


def station_principal(code: str, prefix: str = "") -> tuple[str, tuple[Acl, ...]]:
    """``station-<code>`` and its one rule: Write + Describe ``station.changes``."""
    return f"{prefix}{STATION_PREFIX}{code}", (_write(prefix + RAW),)


def facility_sources(registry: FacilityRegistry) -> tuple[str, ...]:
    """The source codes the registry's facilities outside the station hierarchy publish as
    (hospitals, clinics; a station in the registry publishes as itself), sorted."""
    return tuple(sorted({f.source for f in registry if not f.is_station}))


def facility_principals(registry: FacilityRegistry, prefix: str = "") -> dict[str, tuple[Acl, ...]]:
    """``station-<source>`` for each registered facility outside the station hierarchy: it
    publishes its imports to ``station.changes`` like a station, with a station's rights and
    nothing more (the worker then checks its signature against its own keys)."""
    return dict(station_principal(code, prefix) for code in facility_sources(registry))


def _monitor_acls(prefix: str) -> tuple[Acl, ...]:
    return (
        _everything("topic", prefix, ("Describe",)),
        _everything("group", prefix, ("Describe",)),
        Acl("group", READER_GROUP_PREFIX, ("Describe",), "prefix"),
        _read(OFFSETS_TOPIC),
        _read(prefix + TIER_NATIONAL),
        _read(prefix + AGGREGATES),
        _read(prefix + REJECTIONS),
    )


def service_principals(
    prefix: str = "", record_topics: RecordTopics = "province"
) -> dict[str, tuple[Acl, ...]]:
    """The pipeline's own services (not the stations, not the per-province sinks); the
    development shape's single record-level topics only with ``record_topics="single"``."""
    p = prefix
    streams = p + STREAMS
    single = SINGLE_TOPIC_SINKS if record_topics == "single" else {}
    users: dict[str, tuple[Acl, ...]] = {
        streams: (
            _read(p + RAW),
            Acl("topic", p + RAW, ("DescribeConfigs",)),  # the worker checks its input topic
            _write(p + VALID),
            _write(p + DLQ),
            _write(p + REJECTIONS),
            _write(p + TIER_NATIONAL),
            _write(p + AGGREGATES),
            _write(province_topic_prefix(p), "prefix"),
            *(_write(p + t) for t in single.values()),
            _group(streams, "prefix"),
            # faust's own topics: table changelogs, the aggregate deltas, the leader topic
            Acl(
                "topic",
                streams,
                ("Create", "Read", "Write", "Describe", "DescribeConfigs"),
                "prefix",
            ),
        ),
        p + MONITOR: _monitor_acls(p),
        p + OPERATORS: (*_monitor_acls(p), _read(p + DLQ)),
        p + PORTAL: (_write(p + SIGNOFF),),
        p + APPROVER: (_write(p + SIGNOFF),),
        p + TOPICS_ADMIN: (
            _everything(
                "topic", p, ("Create", "Describe", "Alter", "DescribeConfigs", "AlterConfigs")
            ),
        ),
    }
    for name, topic in {**SHARED_SINKS, **single}.items():
        users[sink_principal(name, p)] = (_read(p + topic), _group(sink_group(name, p)))
    return users


def province_principals(
    prefix: str = "", provinces: Iterable[str] | None = None
) -> dict[str, tuple[Acl, ...]]:
    """``tuyen-sink-province-<code>`` for each province (default: today's 34): read only
    ``tier.province.<code>``, in that province's two groups."""
    codes = province_codes() if provinces is None else tuple(provinces)
    return {
        province_sink(c, prefix): (
            _read(province_topic(c, prefix)),
            _group(province_sink_group(c, prefix)),
            _group(district_sink_group(c, prefix)),
        )
        for c in codes
    }


def principals(
    prefix: str = "",
    *,
    record_topics: RecordTopics = "province",
    provinces: Iterable[str] | None = None,
    stations: Iterable[str] = (),
    facilities: FacilityRegistry | None = None,
) -> dict[str, tuple[Acl, ...]]:
    """Every principal of a deployment (without ``admin``, which needs no ACL): the
    services, one record-level sink per province, ``station-<code>`` per station and per
    registered facility of ``facilities`` (the facility registry)."""
    users = service_principals(prefix, record_topics)
    users.update(province_principals(prefix, provinces))
    for code in stations:
        name, acls = station_principal(code, prefix)
        users[name] = acls
    if facilities is not None:
        users.update(facility_principals(facilities, prefix))
    return users
