"""The contract's partitioner: Kafka's murmur2, as the Java client's default partitioner and
librdkafka's ``murmur2`` / ``murmur2_random`` compute it.

``partition = (murmur2(key) & 0x7fffffff) % partitions`` over the UTF-8 bytes of the record
key. Every change of one record then lands on the partition where the stream worker keeps
that record's state; the worker dead-letters a message found on another partition
(``wrong_partition``) instead of judging it against state it does not hold. Station software
on the Java client needs no setting (its default); on librdkafka-based clients (Python,
Go, .NET, kcat) set ``partitioner=murmur2_random`` (their default, ``consistent_random``, is
CRC32 and puts most keys elsewhere).
"""

from __future__ import annotations

from typing import Final

__all__ = ["PARTITIONER", "murmur2", "partition_for"]

#: The librdkafka name of the partitioner (``partitioner`` producer setting).
PARTITIONER: Final = "murmur2_random"

_M: Final = 0x5BD1E995
_MASK: Final = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's ``Utils.murmur2`` (seed 0x9747b28c) as an unsigned 32-bit value."""
    length = len(data)
    h = (0x9747B28C ^ length) & _MASK
    end = length & ~3
    for i in range(0, end, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    rest = length & 3
    if rest:
        if rest == 3:
            h ^= data[end + 2] << 16
        if rest >= 2:
            h ^= data[end + 1] << 8
        h ^= data[end]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def partition_for(key: bytes, partitions: int) -> int:
    """The partition of ``key`` on a topic of ``partitions`` partitions."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions
