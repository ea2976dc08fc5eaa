"""The tier record: what the stream layer publishes to ``changes.valid`` and ``tier.*``.

It is the record change after validation, upcast to the current major of its record type
and enriched with the hierarchy valid at event time. The district and province streams
carry it with the full after-image; the national stream carries it pseudonymised
(``pseudonymised=True``: health/citizen ids replaced by keyed HMAC pseudonyms, names,
phone, street address and exact birth date removed, birth month kept).

Kafka layout on tier topics: key = the record key (as on the raw topic), value = this
model as JSON (orjson), headers = the original ``ce_*`` headers plus ``tuyen_tier``.
Sinks may read the JSON directly with orjson for speed; this model documents and checks it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from schemas.envelope import MAX_COUNTER

__all__ = ["TIERS", "TierName", "TierRecord", "dump_tier_record", "load_tier_record"]

TierName = Literal["valid", "district", "province", "national"]
TIERS: tuple[TierName, ...] = ("district", "province", "national")


class TierRecord(BaseModel):
    """One validated, enriched record change."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str = Field(description="CloudEvents id (UUIDv7); the dedupe key")
    record_type: str
    record_id: str = Field(description="the record's id; pseudonymised on the national tier")
    record_key: str = Field(description="the Kafka key; pseudonymised on the national tier")
    op: Literal["upsert", "delete"]
    record_version: int = Field(ge=1, le=MAX_COUNTER)
    station_seq: int = Field(ge=1, le=MAX_COUNTER)
    schema_major: int = Field(ge=1, description="major of `data` after upcasting (the current)")
    source_major: int = Field(ge=1, description="major the station published")
    event_time: datetime = Field(description="when it happened at the station (ce_time)")
    received_time: datetime = Field(description="Kafka timestamp of the raw message")
    processed_time: datetime = Field(description="when the validator accepted it")
    event_month: str = Field(description="event month in Vietnam time, YYYY-MM (entry month)")
    service_month: str = Field(
        description="month of the record's service date, YYYY-MM (schemas.service): the "
        "month every flow indicator counts the record in"
    )
    station_code: str
    station_name: str
    district_code: str
    district_name: str
    province_code: str
    province_name: str
    signer: str
    pseudonymised: bool = False
    data: dict[str, Any] | None = Field(description="after-image (current major); None on delete")


def dump_tier_record(record: TierRecord) -> bytes:
    """The Kafka value bytes of a tier record."""
    return orjson.dumps(record.model_dump(mode="json"))


def load_tier_record(value: bytes) -> TierRecord:
    """Parse and check a tier record value."""
    return TierRecord.model_validate(orjson.loads(value))
