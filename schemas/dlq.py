"""The dead-letter record: a rejected input kept whole, with why and where it came from.

Value = the original bytes, untouched (None stays None). Headers = the original headers
(a station's own ``tuyen_*`` header renamed ``original-tuyen_*``, so that only the pipeline's
are read as such), followed by the ``tuyen_*`` headers below. Key = the original key.

A rejected input too large to be dead-lettered whole (:data:`DLQ_MAX_BYTES` of key, value and
headers, well under the producer's 1 MB message limit) is kept as a truncated copy
(:func:`dead_letter`): each header value cut to :data:`TRUNCATED_HEADER_BYTES` and at most
:data:`TRUNCATED_HEADERS` of them, then if still too large the value cut to
:data:`TRUNCATED_VALUE_BYTES` and the key to :data:`TRUNCATED_KEY_BYTES`; ``tuyen_truncated``
(``true``) and ``tuyen_original_bytes`` (the original size) say so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, TypedDict, Unpack

__all__ = [
    "DLQ_MAX_BYTES",
    "H_MESSAGE",
    "H_ORIGINAL_BYTES",
    "H_REASON",
    "H_REJECTED_AT",
    "H_SOURCE_OFFSET",
    "H_SOURCE_PARTITION",
    "H_SOURCE_TOPIC",
    "H_STAGE",
    "H_TRUNCATED",
    "Rejection",
    "dead_letter",
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
H_TRUNCATED = "tuyen_truncated"  # "true" when the original was too large to keep whole
H_ORIGINAL_BYTES = "tuyen_original_bytes"  # the original's key + value + headers size

RESERVED_PREFIX: Final = "tuyen_"
RENAMED_PREFIX: Final = "original-"
DLQ_MAX_BYTES: Final = 512 * 1024
TRUNCATED_HEADERS: Final = 32
TRUNCATED_HEADER_BYTES: Final = 256
TRUNCATED_VALUE_BYTES: Final = 64 * 1024
TRUNCATED_KEY_BYTES: Final = 1024


class Rejection(TypedDict):
    """Why and where an input was rejected: the DLQ's own headers."""

    reason: str
    message: str
    stage: str
    topic: str
    partition: int
    offset: int
    rejected_at: str


def dlq_headers(
    original: Sequence[tuple[str, bytes | None]] | None, **why: Unpack[Rejection]
) -> list[tuple[str, bytes]]:
    """The original headers (a ``tuyen_*`` one renamed ``original-tuyen_*``) plus the DLQ's
    own."""
    headers = [
        (RENAMED_PREFIX + k if k.startswith(RESERVED_PREFIX) else k, v if v is not None else b"")
        for k, v in (original or ())
    ]
    headers += [
        (H_REASON, why["reason"].encode()),
        (H_MESSAGE, why["message"].encode("utf-8", "replace")[:2000]),
        (H_STAGE, why["stage"].encode()),
        (H_SOURCE_TOPIC, why["topic"].encode()),
        (H_SOURCE_PARTITION, str(why["partition"]).encode()),
        (H_SOURCE_OFFSET, str(why["offset"]).encode()),
        (H_REJECTED_AT, why["rejected_at"].encode()),
    ]
    return headers


def header_value(headers: Sequence[tuple[str, bytes | None]] | None, name: str) -> str | None:
    """The last value of header ``name`` as text, or None."""
    found: str | None = None
    for key, value in headers or ():
        if key == name:
            found = (value or b"").decode("utf-8", "replace")
    return found


def _size(key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes]]) -> int:
    return len(key or b"") + len(value or b"") + sum(len(k) + len(v) for k, v in headers)


def dead_letter(
    key: bytes | None,
    value: bytes | None,
    original: Sequence[tuple[str, bytes | None]] | None,
    **why: Unpack[Rejection],
) -> tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]:
    """(key, value, headers) of the dead letter of one input (see the module docstring)."""

    def headers_of(orig: Sequence[tuple[str, bytes | None]] | None) -> list[tuple[str, bytes]]:
        return dlq_headers(orig, **why)

    headers = headers_of(original)
    size = _size(key, value, headers)
    if size <= DLQ_MAX_BYTES:
        return key, value, headers
    cut = [
        (k[:TRUNCATED_HEADER_BYTES], (v or b"")[:TRUNCATED_HEADER_BYTES])
        for k, v in (original or ())[:TRUNCATED_HEADERS]
    ]
    marks = [(H_TRUNCATED, b"true"), (H_ORIGINAL_BYTES, str(size).encode())]
    headers = headers_of(cut) + marks
    if _size(key, value, headers) > DLQ_MAX_BYTES:
        key = key[:TRUNCATED_KEY_BYTES] if key is not None else None
        value = value[:TRUNCATED_VALUE_BYTES] if value is not None else None
    return key, value, headers
