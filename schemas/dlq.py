"""The dead-letter record: a rejected input kept whole, with why and where it came from.

Value = the original bytes, untouched (None stays None). Headers = the original headers,
followed by the ``tuyen_*`` headers below. Key = the original key.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "H_MESSAGE",
    "H_REASON",
    "H_REJECTED_AT",
    "H_SOURCE_OFFSET",
    "H_SOURCE_PARTITION",
    "H_SOURCE_TOPIC",
    "H_STAGE",
    "dlq_headers",
    "header_value",
]

H_REASON = "tuyen_reason"  # machine-readable code (schemas.reasons.Reason)
H_MESSAGE = "tuyen_message"  # human message
H_STAGE = "tuyen_stage"  # which stage rejected it (validate, route, ...)
H_SOURCE_TOPIC = "tuyen_source_topic"
H_SOURCE_PARTITION = "tuyen_source_partition"
H_SOURCE_OFFSET = "tuyen_source_offset"
H_REJECTED_AT = "tuyen_rejected_at"  # RFC 3339 UTC


def dlq_headers(
    original: Sequence[tuple[str, bytes | None]] | None,
    *,
    reason: str,
    message: str,
    stage: str,
    topic: str,
    partition: int,
    offset: int,
    rejected_at: str,
) -> list[tuple[str, bytes]]:
    """The original headers plus the DLQ's own."""
    headers = [(k, v if v is not None else b"") for k, v in (original or ())]
    headers += [
        (H_REASON, reason.encode()),
        (H_MESSAGE, message.encode("utf-8", "replace")[:2000]),
        (H_STAGE, stage.encode()),
        (H_SOURCE_TOPIC, topic.encode()),
        (H_SOURCE_PARTITION, str(partition).encode()),
        (H_SOURCE_OFFSET, str(offset).encode()),
        (H_REJECTED_AT, rejected_at.encode()),
    ]
    return headers


def header_value(headers: Sequence[tuple[str, bytes | None]] | None, name: str) -> str | None:
    """The last value of header ``name`` as text, or None."""
    found: str | None = None
    for key, value in headers or ():
        if key == name:
            found = (value or b"").decode("utf-8", "replace")
    return found
