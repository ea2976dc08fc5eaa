"""One batch of raw messages → outputs, DLQ records, aggregate deltas and state. Pure.

The faust agent (``streams.app``) and the benchmark both drive this: stage 1
(:meth:`BatchProcessor.check`) is stateless and may run on worker threads; stage 2
(:meth:`BatchProcessor.finish`) is sequential and touches the state.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from schemas import Reason, format_time
from schemas.dlq import dead_letter
from schemas.hierarchy.merger import restate_province
from schemas.tier import TierName
from schemas.topics import DLQ, REJECTIONS, RecordTopics, province_topic, topic_name
from streams.aggregate import DeltaBuilder, contribution, deltas
from streams.exceptions import OutputError
from streams.national import national_record
from streams.pseudonymise import Pseudonymiser
from streams.route import TIER_TOPICS, route_headers
from streams.seqgaps import SeqTracker
from streams.state import MemoryState, StateStore
from streams.validate import (
    Accepted,
    Duplicate,
    RawMessage,
    Rejected,
    Validator,
    judge,
    processing_error,
    record,
)

__all__ = ["BatchOutput", "BatchProcessor", "OutMessage"]

logger = logging.getLogger(__name__)


class OutMessage(NamedTuple):
    """A message to publish; ``origin`` is the raw message it derives from (to dead-letter it
    if the broker refuses this output)."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    origin: RawMessage | None = None


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
        record_topics: RecordTopics = "province",
        publish_valid: bool = False,
    ) -> None:
        self.validator = validator
        self.pseudonymiser = pseudonymiser
        self.state: StateStore = state if state is not None else MemoryState()
        self.seq = seq if seq is not None else SeqTracker()
        self.aggregate_partitions = aggregate_partitions
        self.topics = {tier: topic_name(base, topic_prefix) for tier, base in TIER_TOPICS.items()}
        self.dlq_topic = topic_name(DLQ, topic_prefix)
        self.rejections_topic = topic_name(REJECTIONS, topic_prefix)
        self.topic_prefix = topic_prefix
        #: ``province``: one record-level topic per province (both its stores read it);
        #: ``single``: the development shape, ``tier.district`` and ``tier.province``
        self.record_topics = record_topics
        self._province_topics: dict[str, str] = {}
        #: also ``changes.valid`` (``StreamsConfig.publish_valid``; off: nothing reads it)
        self.publish_valid = publish_valid
        #: the tiers of an accepted event's outputs, in publishing order (national last)
        self._tiers: tuple[TierName, ...] = (
            *(("valid",) if publish_valid else ()),
            *(("district", "province") if record_topics == "single" else ("province",)),
            "national",
        )
        self.ids_per_record = validator.policy.dedupe_ids_per_record
        self.max_version_step = validator.policy.max_version_step

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
        state = self.state
        max_step = self.max_version_step
        for msg, verdict in zip(msgs, checked, strict=True):
            if isinstance(verdict, Accepted):
                try:
                    result, prev = judge(verdict, state, msg.partition, max_version_step=max_step)
                    if isinstance(result, Duplicate):
                        out.duplicates += 1
                        continue
                    if isinstance(result, Rejected):
                        verdict_r: Rejected = result
                    else:
                        self._route(msg, verdict, prev, out, builder)
                        continue
                except Exception as exc:  # this event only: dead-lettered, the batch goes on
                    verdict_r = processing_error(msg, "route", exc)
            else:
                verdict_r = verdict
            out.rejected[verdict_r.reason.value] += 1
            out.outputs += (
                self.dead_letter(msg, verdict_r.reason, verdict_r.message, rejected_at),
                self.rejection(msg, verdict_r.reason.value, "validate", rejected_at),
            )
        if last:
            out.deltas = builder.drain()
            out.state = self.state.drain()
            out.pending = None
        return out

    def _route(
        self,
        msg: RawMessage,
        verdict: Accepted,
        prev: Any,
        out: BatchOutput,
        builder: DeltaBuilder,
    ) -> None:
        """The outputs of an accepted event, then its state: everything the event produces is
        built before its state is written (``streams.validate.record``), so an error while
        building leaves the state as if the event had never come."""
        rec = verdict.record
        new_c = contribution(rec)
        old_c = prev.get("c") if prev else None
        d = deltas(old_c, new_c) if old_c is not None else None
        # the record-level outputs carry the same bytes; national: the allow-listed copy
        # (same as streams.route.route + tier_headers)
        nat = national_record(rec, self.pseudonymiser)
        key, value = rec["record_key"].encode(), orjson.dumps(rec)
        nat_key, nat_value = nat["record_key"].encode(), orjson.dumps(nat)
        record(
            verdict,
            self.state,
            msg.partition,
            prev,
            ids_per_record=self.ids_per_record,
            contribution=new_c,
        )
        if d:
            builder.add(msg.partition, msg.offset, d, int(rec["event_time"].timestamp() * 1000))
        elif d is None and new_c is not None:  # a first contribution: no retraction
            builder.add_new(
                msg.partition, msg.offset, new_c, int(rec["event_time"].timestamp() * 1000)
            )
        self.seq.add(rec["station_code"], rec["station_seq"])
        topics = self.topics
        headers = route_headers(rec, nat, self._tiers)
        if self.record_topics == "single":
            record_topics = [topics[t] for t in self._tiers[:-1]]
        else:  # the province's own topic: ACLs are per topic, not per key
            record_topics = [topics["valid"]] if self.publish_valid else []
            record_topics.append(self.province_topic(rec["province_code"]))
        outputs = out.outputs
        for i, topic in enumerate(record_topics):
            outputs.append(OutMessage(topic, key, value, headers[i], msg))
        outputs.append(OutMessage(topics["national"], nat_key, nat_value, headers[-1], msg))
        out.accepted += 1

    def province_topic(self, code: str) -> str:
        """The record-level topic of the province that owns ``code`` now (a record made
        under a pre-2025 province goes to the province it merged into)."""
        topic = self._province_topics.get(code)
        if topic is None:
            topic = province_topic(restate_province(code), self.topic_prefix)
            self._province_topics[code] = topic
        return topic

    def rejection(self, msg: RawMessage, reason: str, stage: str, rejected_at: str) -> OutMessage:
        """What the monitor counts of a dead letter, without its payload: reason, stage, the
        station the input claims (``ce_source``, as sent), when, and where it was read."""
        return OutMessage(
            self.rejections_topic,
            None,
            rejection_value(msg, reason, stage, rejected_at),
            [("tuyen_reason", reason.encode())],
            msg,
        )

    def dead_letter(
        self,
        msg: RawMessage,
        reason: Reason,
        message: str,
        rejected_at: str,
        stage: str = "validate",
    ) -> OutMessage:
        """The DLQ message of ``msg`` (truncated when too large: ``schemas.dlq``)."""
        logger.debug(
            "rejected reason=%s topic=%s partition=%d offset=%d",
            reason.value,
            msg.topic,
            msg.partition,
            msg.offset,
        )
        key, value, headers = dead_letter(
            msg.key,
            msg.value,
            msg.headers,
            reason=reason.value,
            message=message,
            stage=stage,
            topic=msg.topic,
            partition=msg.partition,
            offset=msg.offset,
            rejected_at=rejected_at,
        )
        return OutMessage(self.dlq_topic, key, value, headers, msg)

    def refused(
        self, refusals: Sequence[tuple[OutMessage, str]], now: datetime
    ) -> list[OutMessage]:
        """Dead letters for outputs the broker refused for themselves (``output_rejected``,
        stage ``publish``): of the input each derives from; a refused dead letter is sent
        again reduced to its ``tuyen_*`` headers, 1 KiB of key and 4 KiB of value."""
        rejected_at = format_time(now)
        out = []
        for m, error in refusals:
            origin = m.origin
            if origin is None:  # not one input's (an aggregate): the batch fails and is retried
                raise OutputError(f"an output to {m.topic} was refused: {error}")
            if m.topic == self.rejections_topic:  # its dead letter exists: only the count
                logger.warning("rejection record refused error=%s", error)
                continue
            if m.topic == self.dlq_topic:
                headers = [(k, v) for k, v in m.headers if k.startswith("tuyen_")]
                headers.append(("tuyen_truncated", b"true"))
                key = origin.key[:1024] if origin.key is not None else None
                value = origin.value[:4096] if origin.value is not None else None
                out.append(OutMessage(self.dlq_topic, key, value, headers, origin))
            else:
                message = f"output to {m.topic} refused: {error}"
                reason = Reason.OUTPUT_REJECTED
                out += (
                    self.dead_letter(origin, reason, message, rejected_at, stage="publish"),
                    self.rejection(origin, reason.value, "publish", rejected_at),
                )
        return out


_STATION_SOURCE = re.compile(r"station/([0-9A-Za-z]{1,16})")


def rejection_value(msg: RawMessage, reason: str, stage: str, rejected_at: str) -> bytes:
    """The value of a rejection record (``station.changes.rejections``): no key, value or
    other header of the input, which may hold the record itself."""
    station = None
    for name, raw in msg.headers:
        if name == "ce_source" and raw:
            m = _STATION_SOURCE.fullmatch(raw.decode("ascii", "replace"))
            station = m.group(1) if m else None
            break
    return orjson.dumps(
        {
            "reason": reason,
            "stage": stage,
            "station": station,
            "rejected_at": rejected_at,
            "topic": msg.topic,
            "partition": msg.partition,
            "offset": msg.offset,
        }
    )
