from __future__ import annotations

import pytest

from schemas.topics import RAW, replay_specs, topic_name, topic_specs


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


def test_replayed_raw_topic_keeps_old_history() -> None:
    """Replayed history is stamped with its stations' times (CreateTime): time retention and
    segment rolls would count from those, deleting history older than 30 days before the
    worker read it; the replayed raw topic keeps everything and rolls by size only."""
    specs = {s.name: s for s in replay_specs(topic_specs("x."), "x.")}
    raw = specs[topic_name(RAW, "x.")].broker_config()
    assert raw["message.timestamp.type"] == "CreateTime"
    assert raw["retention.ms"] == "-1"
    assert int(raw["segment.ms"]) >= 10 * 365 * 24 * 3600 * 1000
    others = {n: s for n, s in specs.items() if n != topic_name(RAW, "x.")}
    assert others == {s.name: s for s in topic_specs("x.") if s.name != topic_name(RAW, "x.")}
