"""The ``signoff`` sink's encoder: verified decisions → Parquet, the rest → dead letters.

Every decision on ``signoff.decisions`` is checked before it is stored
(``schemas.signoff.check_decision``: the approver's signature, role and unit, the key's
validity and revocation at the broker's receive time); a decision that fails is written to
the DLQ store with its reason, like any bad input. The receive time must be the broker's
(``LogAppendTime``, the topic's config): a decision stamped with a time its sender chose
(``CreateTime``: a topic not made by ``tuyen topics apply``) is dead-lettered ``bad_time``,
never judged at that time (a revoked or expired key would sign by backdating it). Stored rows go to
``signoff/province=<province>/month=<period>/`` with the broker's receive time of the
decision (when it took effect). Pure apart from loading the approver registry once.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from schemas.hierarchy import Hierarchy
from schemas.reasons import ContractViolation, Reason
from schemas.signoff import check_decision, load_approver_registry, parse_decision
from sinks.columns import SIGNOFF_COLUMNS
from sinks.encode import Encoded, Encoder, MessageLike, _dead_row, _dlq_tables, _merge, _table
from sinks.store import SIGNOFF_DIR, safe_value

__all__ = ["signoff_encoder"]

logger = logging.getLogger(__name__)

#: ``confluent_kafka.TIMESTAMP_LOG_APPEND_TIME`` (this module imports no Kafka client)
LOG_APPEND_TIME = 2


def signoff_encoder(
    approver_keys: str | None,
    hierarchy: Hierarchy | None = None,
    *,
    development: bool = False,
) -> Encoder:
    """Decisions checked against the approvers' keys at ``approver_keys`` (and, in
    ``development`` mode, the development approvers'); ``ValueError`` without a registry
    outside development mode."""
    registry = load_approver_registry(approver_keys, development=development)
    if development:
        logger.warning("signoff: development mode, the development approvers' keys are accepted")
    h = hierarchy or Hierarchy.default()

    def encode(messages: Sequence[MessageLike]) -> Encoded:
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        dead: list[dict[str, Any]] = []
        for msg in messages:
            try:
                decision = parse_decision(msg.value())
                received = _received(msg)
                check_decision(decision, registry, h, received=received)
            except ContractViolation as exc:
                dead.append(_dead_row(msg, exc.reason, exc.message))
                continue
            row = decision.model_dump(mode="json")
            row["signed_time"] = row.pop("time")
            row["received_time"] = received.isoformat()
            row.update(
                kafka_topic=msg.topic(), kafka_partition=msg.partition(), kafka_offset=msg.offset()
            )
            directory = (
                f"{SIGNOFF_DIR}/province={safe_value(decision.province)}"
                f"/month={safe_value(decision.period)}"
            )
            groups[directory].append(row)
        out: Encoded = {d: _table(SIGNOFF_COLUMNS, rows) for d, rows in groups.items()}
        if dead:
            logger.warning("signoff sink dead letters count=%d", len(dead))
            _merge(out, _dlq_tables(dead))
        return out

    return encode


def _received(msg: MessageLike) -> datetime:
    """The broker's receive time of ``msg`` (``ContractViolation`` unless it is one)."""
    kind, stamp = msg.timestamp()
    if kind != LOG_APPEND_TIME:
        raise ContractViolation(
            Reason.BAD_TIME,
            f"the decision's timestamp is not the broker's receive time (topic {msg.topic()} "
            "must have message.timestamp.type=LogAppendTime: `tuyen topics apply`); a time "
            "its sender chose cannot date a key's validity or revocation",
        )
    return datetime.fromtimestamp(stamp / 1000, UTC)
