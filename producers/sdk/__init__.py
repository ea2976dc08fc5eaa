"""The station SDK: typed builders, signing, a durable SQLite outbox, an idempotent producer."""

from producers.sdk.builders import Draft, delete_draft, record_id_for, upsert_draft
from producers.sdk.client import Accepted, StationClient
from producers.sdk.outbox import Outbox, OutboxRow
from producers.sdk.publisher import OutboxPublisher

__all__ = [
    "Accepted",
    "Draft",
    "Outbox",
    "OutboxPublisher",
    "OutboxRow",
    "StationClient",
    "delete_draft",
    "record_id_for",
    "upsert_draft",
]
