"""Decode offset-commit records of Kafka's internal ``__consumer_offsets`` topic (pure).

Key (big-endian): ``int16 version``; versions 0 and 1 are offset commits:
``string group, string topic, int32 partition`` (``string`` = int16 length + UTF-8).
Other key versions are group metadata and the new consumer-group protocol's records: skipped.

Value: ``int16 version`` (0–4), ``int64 offset``, ``int32 leader_epoch`` (v3+),
``metadata`` (v0–3: int16-length string; v4+: compact string, unsigned varint length + 1),
``int64 commit_timestamp``, ``int64 expire_timestamp`` (v1 only), then tagged fields (v4+),
which we do not need. A null value is a tombstone (the offset was deleted).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = ["OffsetCommitRecord", "decode_offset_commit"]

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")


@dataclass(frozen=True, slots=True)
class OffsetCommitRecord:
    """One commit (``offset`` None for a tombstone) and its commit timestamp in ms."""

    group: str
    topic: str
    partition: int
    offset: int | None
    commit_timestamp_ms: int | None


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _take(self, st: struct.Struct) -> int:
        (value,) = st.unpack_from(self.data, self.pos)
        self.pos += st.size
        return int(value)

    def i16(self) -> int:
        return self._take(_I16)

    def i32(self) -> int:
        return self._take(_I32)

    def i64(self) -> int:
        return self._take(_I64)

    def string(self) -> str:
        n = self.i16()
        if n < 0:
            return ""
        raw = self.data[self.pos : self.pos + n]
        if len(raw) != n:
            raise ValueError("truncated string")
        self.pos += n
        return raw.decode("utf-8")

    def uvarint(self) -> int:
        shift = result = 0
        while True:
            b = self.data[self.pos]
            self.pos += 1
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7

    def skip_compact_string(self) -> None:
        n = self.uvarint() - 1
        if n > 0:
            self.pos += n


def decode_offset_commit(key: bytes | None, value: bytes | None) -> OffsetCommitRecord | None:
    """The commit in one ``__consumer_offsets`` record, or None if the record is not a commit.

    Raises ``ValueError`` on truncated or unknown-version data of an offset-commit record.
    """
    if not key or len(key) < 2:
        return None
    try:
        k = _Reader(key)
        if k.i16() not in (0, 1):
            return None
        group, topic, partition = k.string(), k.string(), k.i32()
        if value is None:
            return OffsetCommitRecord(group, topic, partition, None, None)
        v = _Reader(value)
        version = v.i16()
        if not 0 <= version <= 4:
            raise ValueError(f"unknown offset commit value version {version}")
        offset = v.i64()
        if version >= 3:
            v.i32()  # leader epoch
        if version >= 4:
            v.skip_compact_string()
        else:
            v.string()
        commit_ts = v.i64()
    except (struct.error, IndexError, UnicodeDecodeError) as exc:
        raise ValueError(f"malformed offset commit record: {exc}") from exc
    return OffsetCommitRecord(group, topic, partition, offset, commit_ts)
