"""The contract's partitioner is Kafka's murmur2: Java's own test vectors."""

from __future__ import annotations

import pytest

from schemas.partition import murmur2, partition_for

# org.apache.kafka.common.utils.UtilsTest.testMurmur2 (signed 32-bit results)
JAVA_VECTORS = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize(("data", "expected"), JAVA_VECTORS.items())
def test_java_murmur2_vectors(data: bytes, expected: int) -> None:
    assert murmur2(data) == expected & 0xFFFFFFFF


def test_partition_is_the_positive_hash_modulo_the_count() -> None:
    for data, h in JAVA_VECTORS.items():
        for n in (1, 3, 12, 48):
            assert partition_for(data, n) == (h & 0x7FFFFFFF) % n
