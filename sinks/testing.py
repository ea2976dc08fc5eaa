"""Fixtures for tests and benchmarks of the stores: tier records and in-memory messages.

``tier_record(...)`` builds a valid :class:`schemas.tier.TierRecord` (example payloads from
``schemas.examples``) without a stream; ``FakeMessage`` quacks like ``confluent_kafka.Message``
so encoders and segment writers can be driven without a broker.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import orjson

from schemas.examples import example_data, example_record_id
from schemas.registry import CURRENT_MAJOR, RecordType, record_key
from schemas.service import service_month
from schemas.tier import TierRecord, dump_tier_record

__all__ = ["FakeMessage", "tier_record", "tier_value"]

_PROVINCES = {
    "01": ("Thành phố Hà Nội", "001", "Quận Ba Đình", "00001", "Phường Phúc Xá"),
    "79": ("Thành phố Hồ Chí Minh", "760", "Quận 1", "26734", "Phường Tân Định"),
}


def tier_record(
    record_type: str = "encounter",
    *,
    n: int = 0,
    record_id: str | None = None,
    version: int = 1,
    op: Literal["upsert", "delete"] = "upsert",
    province: str = "01",
    event_time: datetime | None = None,
    event_id: str | None = None,
    data: dict[str, Any] | None = None,
    pseudonymised: bool = False,
) -> TierRecord:
    """A valid tier record; ``n`` varies the health id so records differ."""
    rt = RecordType(record_type)
    when = event_time or datetime(2026, 3, 10, 5, 0, tzinfo=UTC) + timedelta(minutes=n)
    health_id = f"{(n % 10**10):010d}"
    prov_name, dist, dist_name, station, station_name = _PROVINCES.get(
        province, (f"Tỉnh {province}", "999", "Huyện thử", "99999", "Trạm thử")
    )
    local = when.astimezone(UTC) + timedelta(hours=7)
    rid = record_id or example_record_id(
        rt, health_id=health_id, local_id=f"r{n}", station=station, period=local.strftime("%Y-%m")
    )
    payload = None
    if op == "upsert":
        payload = (
            data if data is not None else example_data(rt, health_id=health_id, on=local.date())
        )
    return TierRecord(
        event_id=event_id or str(uuid.UUID(int=uuid.uuid4().int)),
        record_type=rt.value,
        record_id=rid,
        record_key=record_key(rt, rid),
        op=op,
        record_version=version,
        station_seq=n + 1,
        schema_major=CURRENT_MAJOR[rt],
        source_major=CURRENT_MAJOR[rt],
        event_time=when,
        received_time=when + timedelta(seconds=1),
        processed_time=when + timedelta(seconds=2),
        event_month=local.strftime("%Y-%m"),
        service_month=service_month(rt.value, payload, local.strftime("%Y-%m")),
        station_code=station,
        station_name=station_name,
        district_code=dist,
        district_name=dist_name,
        province_code=province,
        province_name=prov_name,
        signer="HW-0001",
        pseudonymised=pseudonymised,
        data=payload,
    )


def tier_value(record: TierRecord) -> bytes:
    """The Kafka value of a tier record."""
    return dump_tier_record(record)


@dataclass
class FakeMessage:
    """An in-memory stand-in for ``confluent_kafka.Message``."""

    _topic: str
    _partition: int
    _offset: int
    _value: bytes | None
    _key: bytes | None = None
    _headers: list[tuple[str, bytes]] | None = None
    _timestamp_ms: int = field(default_factory=lambda: 1_772_000_000_000)
    #: 1: CreateTime (the producer's), 2: LogAppendTime (the broker's)
    _timestamp_type: int = 1

    @classmethod
    def of(
        cls, topic: str, partition: int, offset: int, record: TierRecord | dict[str, Any] | bytes
    ) -> FakeMessage:
        if isinstance(record, TierRecord):
            return cls(topic, partition, offset, tier_value(record), record.record_key.encode())
        if isinstance(record, dict):
            return cls(topic, partition, offset, orjson.dumps(record))
        return cls(topic, partition, offset, record)

    def topic(self) -> str | None:
        return self._topic

    def partition(self) -> int | None:
        return self._partition

    def offset(self) -> int | None:
        return self._offset

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> list[tuple[str, bytes]] | None:
        return self._headers

    def timestamp(self) -> tuple[int, int]:
        return (self._timestamp_type, self._timestamp_ms)

    def error(self) -> None:
        return None


def today() -> date:
    """Today in UTC (for fixtures that need "now")."""
    return datetime.now(UTC).date()
