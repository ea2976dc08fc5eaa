"""One batch of raw messages → outputs, DLQ records, aggregate deltas and state. Pure.

The faust agent (``streams.app``) and the benchmark both drive this: stage 1
(:meth:`BatchProcessor.check`) is stateless and may run on worker threads; stage 2
(:meth:`BatchProcessor.finish`) is sequential and touches the state.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from schemas import Reason, format_time
from schemas.dlq import dlq_headers
from schemas.topics import DLQ, topic_name
from streams.aggregate import DeltaBuilder, contribution, deltas
from streams.pseudonymise import Pseudonymiser
from streams.route import TIER_TOPICS, route_headers
from streams.seqgaps import SeqTracker
from streams.state import MemoryState, StateStore
from streams.validate import Accepted, Duplicate, RawMessage, Rejected, Validator, admit

__all__ = ["BatchOutput", "BatchProcessor", "OutMessage"]

logger = logging.getLogger(__name__)


class OutMessage(NamedTuple):
    """A message to publish."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


@dataclass
class BatchOutput:
    """Everything one batch produces. Publish ``outputs`` and ``deltas`` first, then persist
    ``state`` (so a crash in between re-sends rather than loses), then commit."""

    outputs: list[OutMessage] = field(default_factory=list)
    deltas: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    state: list[tuple[str, bytes, int]] = field(default_factory=list)
    accepted: int = 0
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    # deltas collected so far while a batch is finished in chunks (see BatchProcessor.finish)
    pending: DeltaBuilder | None = field(default=None, repr=False)


class BatchProcessor:
    """Validate, dedupe, enrich, route, pseudonymise and compute aggregate deltas."""

    def __init__(
        self,
        validator: Validator,
        pseudonymiser: Pseudonymiser,
        *,
        topic_prefix: str = "",
        aggregate_partitions: int = 6,
        state: StateStore | None = None,
        seq: SeqTracker | None = None,
    ) -> None:
        self.validator = validator
        self.pseudonymiser = pseudonymiser
        self.state: StateStore = state if state is not None else MemoryState()
        self.seq = seq if seq is not None else SeqTracker()
        self.aggregate_partitions = aggregate_partitions
        self.topics = {tier: topic_name(base, topic_prefix) for tier, base in TIER_TOPICS.items()}
        self.dlq_topic = topic_name(DLQ, topic_prefix)
        self.ids_per_record = validator.policy.dedupe_ids_per_record

    def check(
        self, msgs: Sequence[RawMessage], now: datetime | None = None
    ) -> list[Accepted | Rejected]:
        """Stage 1 (stateless; thread-safe)."""
        return self.validator.check_many(msgs, now)

    def process(self, msgs: Sequence[RawMessage], now: datetime | None = None) -> BatchOutput:
        """Both stages in the calling thread."""
        now = now or datetime.now(UTC)
        return self.finish(msgs, self.check(msgs, now), now)

    def finish(
        self,
        msgs: Sequence[RawMessage],
        checked: Sequence[Accepted | Rejected],
        now: datetime | None = None,
        *,
        into: BatchOutput | None = None,
        last: bool = True,
    ) -> BatchOutput:
        """Stage 2: state checks, routing, DLQ records and deltas for a checked batch.

        A batch may be finished in consecutive chunks (in offset order), so stage 2 of one
        chunk overlaps stage 1 of the next: pass the first call's result as ``into`` and
        ``last=False`` on all but the final chunk; ``deltas`` and ``state`` are filled on the
        last one (one delta message per (delta partition, raw partition) per batch)."""
        now = now or datetime.now(UTC)
        out = into if into is not None else BatchOutput()
        builder = out.pending
        if builder is None:
            builder = out.pending = DeltaBuilder(self.aggregate_partitions)
        rejected_at = format_time(now)
        append = out.outputs.append
        dumps = orjson.dumps
        national = self.pseudonymiser.national
        topics = self.topics
        t_valid, t_district, t_province, t_national = (
            topics["valid"],
            topics["district"],
            topics["province"],
            topics["national"],
        )
        state = self.state
        ids_per_record = self.ids_per_record
        seq_add = self.seq.add
        for msg, verdict in zip(msgs, checked, strict=True):
            if isinstance(verdict, Accepted):
                record = verdict.record
                new_c = contribution(record)
                result, prev = admit(
                    verdict,
                    state,
                    msg.partition,
                    ids_per_record=ids_per_record,
                    contribution=new_c,
                )
                if isinstance(result, Duplicate):
                    out.duplicates += 1
                    continue
                if isinstance(result, Rejected):
                    verdict_r: Rejected = result
                else:
                    d = deltas(prev.get("c") if prev else None, new_c)
                    if d:
                        event_ms = int(record["event_time"].timestamp() * 1000)
                        builder.add(msg.partition, msg.offset, d, event_ms)
                    seq_add(record["station_code"], record["station_seq"])
                    # valid, district, province: the same record-level bytes; national: the
                    # pseudonymised copy (same as streams.route.route + tier_headers)
                    nat = national(record)
                    h_valid, h_district, h_province, h_national = route_headers(
                        msg.headers, nat["record_id"]
                    )
                    key = record["record_key"].encode()
                    value = dumps(record)
                    append(OutMessage(t_valid, key, value, h_valid))
                    append(OutMessage(t_district, key, value, h_district))
                    append(OutMessage(t_province, key, value, h_province))
                    append(
                        OutMessage(t_national, nat["record_key"].encode(), dumps(nat), h_national)
                    )
                    out.accepted += 1
                    continue
            else:
                verdict_r = verdict
            out.rejected[verdict_r.reason.value] += 1
            append(self._dlq(msg, verdict_r.reason, verdict_r.message, rejected_at))
        if last:
            out.deltas = builder.drain()
            out.state = self.state.drain()
            out.pending = None
        return out

    def _dlq(self, msg: RawMessage, reason: Reason, message: str, rejected_at: str) -> OutMessage:
        logger.debug(
            "rejected reason=%s topic=%s partition=%d offset=%d",
            reason.value,
            msg.topic,
            msg.partition,
            msg.offset,
        )
        return OutMessage(
            self.dlq_topic,
            msg.key,
            msg.value,
            dlq_headers(
                msg.headers,
                reason=reason.value,
                message=message,
                stage="validate",
                topic=msg.topic,
                partition=msg.partition,
                offset=msg.offset,
                rejected_at=rejected_at,
            ),
        )


def encode_deltas(message: dict[str, Any]) -> bytes:
    """Kafka value of a delta message."""
    return orjson.dumps(message)
