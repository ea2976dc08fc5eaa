from __future__ import annotations

import pytest

from schemas.topics import RAW, topic_name, topic_specs


def test_every_topic_declared_once_with_prefix() -> None:
    specs = topic_specs("t1.")
    names = [s.name for s in specs]
    assert len(names) == len(set(names))
    assert all(n.startswith("t1.") for n in names)
    assert topic_name(RAW, "t1.") in names


def test_partition_override_and_unknown_topic() -> None:
    assert {s.partitions for s in topic_specs(partitions=2)} == {2}
    with pytest.raises(KeyError):
        topic_name("nope")


def test_compacted_topic_config() -> None:
    agg = next(s for s in topic_specs() if s.cleanup_policy == "compact")
    assert agg.broker_config()["cleanup.policy"] == "compact"
