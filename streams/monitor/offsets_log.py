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

__all__ = ["GroupMembers", "OffsetCommitRecord", "decode_group_metadata", "decode_offset_commit"]

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
        return self.text(flexible=False)

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

    def text(self, flexible: bool) -> str:
        """A (nullable) string: int16 length, or unsigned varint length + 1 when flexible."""
        n = self.uvarint() - 1 if flexible else self.i16()
        if n < 0:
            return ""
        raw = self.data[self.pos : self.pos + n]
        if len(raw) != n:
            raise ValueError("truncated string")
        self.pos += n
        return raw.decode("utf-8")

    def blob(self, flexible: bool) -> bytes:
        n = self.uvarint() - 1 if flexible else self.i32()
        if n < 0:
            return b""
        raw = self.data[self.pos : self.pos + n]
        self.pos += n
        return raw

    def count(self, flexible: bool) -> int:
        return self.uvarint() - 1 if flexible else self.i32()

    def skip_tags(self, flexible: bool) -> None:
        if flexible:
            for _ in range(self.uvarint()):
                self.uvarint()
                self.pos += self.uvarint()


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


@dataclass(frozen=True, slots=True)
class GroupMembers:
    """A classic consumer group's members as its coordinator last stored them: each member's
    (client id, host) and the partitions assigned to it. ``members`` None: group deleted."""

    group: str
    members: tuple[tuple[str, str], ...] | None
    owners: dict[tuple[str, int], tuple[str, str]]


def _assignment(raw: bytes) -> list[tuple[str, int]]:
    """Partitions of a ConsumerProtocolAssignment (versions 0-3, not flexible)."""
    if len(raw) < 2:
        return []
    r = _Reader(raw)
    r.i16()
    out = []
    for _ in range(r.i32()):
        topic = r.string()
        out += [(topic, r.i32()) for _ in range(r.i32())]
    return out


def decode_group_metadata(key: bytes | None, value: bytes | None) -> GroupMembers | None:
    """The members in one ``__consumer_offsets`` group metadata record (key version 2), or
    None for any other record. Value versions 0-4 (4 is flexible)."""
    if not key or len(key) < 2:
        return None
    try:
        k = _Reader(key)
        if k.i16() != 2:
            return None
        group = k.string()
        if value is None:
            return GroupMembers(group, None, {})
        v = _Reader(value)
        version = v.i16()
        if not 0 <= version <= 4:
            raise ValueError(f"unknown group metadata value version {version}")
        flex = version >= 4
        v.text(flex)  # protocol type
        v.i32()  # generation
        v.text(flex)  # protocol
        v.text(flex)  # leader
        if version >= 2:
            v.i64()  # current state timestamp
        members: list[tuple[str, str]] = []
        owners: dict[tuple[str, int], tuple[str, str]] = {}
        for _ in range(v.count(flex)):
            v.text(flex)  # member id
            if version >= 3:
                v.text(flex)  # group instance id
            client, host = v.text(flex), v.text(flex)
            if version >= 1:
                v.i32()  # rebalance timeout
            v.i32()  # session timeout
            v.blob(flex)  # subscription
            assignment = v.blob(flex)
            v.skip_tags(flex)
            members.append((client, host))
            for tp in _assignment(assignment):
                owners[tp] = (host, client)
    except (struct.error, IndexError, UnicodeDecodeError) as exc:
        raise ValueError(f"malformed group metadata record: {exc}") from exc
    return GroupMembers(group, tuple(members), owners)
