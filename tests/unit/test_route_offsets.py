"""The offset guard the stream shell uses against faust skipping a run of offsets."""

from __future__ import annotations

from streams.offsets import OffsetGuard


def coords(e: tuple[int, int]) -> tuple[int, int]:
    return e


def test_consecutive_offsets_pass() -> None:
    g = OffsetGuard()
    keep, seeks = g.check([(0, 5), (0, 6), (1, 0)], coords, {0: 5})
    assert keep == [(0, 5), (0, 6), (1, 0)] and not seeks


def test_jump_after_assignment_seeks_back_to_committed() -> None:
    g = OffsetGuard()
    g.check([(2, 1210), (2, 1211)], coords, {2: 1210})
    g.on_assignment()
    keep, seeks = g.check([(1, 7), (2, 1260), (2, 1261)], coords, {1: 7, 2: 1212})
    assert keep == [(1, 7)] and seeks == {2: 1212}
    keep, seeks = g.check([(2, 1212), (2, 1213)], coords)
    assert keep == [(2, 1212), (2, 1213)] and not seeks


def test_redelivery_of_older_offsets_is_processed() -> None:
    g = OffsetGuard()
    g.check([(0, 10), (0, 11)], coords, {})
    keep, seeks = g.check([(0, 3), (0, 4)], coords)
    assert keep == [(0, 3), (0, 4)] and not seeks


def test_stale_events_after_a_seek_do_not_seek_again_until_retry() -> None:
    g = OffsetGuard(retry_seek_s=10)
    g.check([(0, 1)], coords, {0: 1}, now=0)
    keep, seeks = g.check([(0, 50), (0, 51)], coords, now=1)
    assert not keep and seeks == {0: 2}
    keep, seeks = g.check([(0, 52)], coords, now=2)  # still stale, fetch already restarted
    assert not keep and not seeks
    keep, seeks = g.check([(0, 53)], coords, now=12)  # no re-fetch for too long: seek again
    assert seeks == {0: 2}
    keep, seeks = g.check([(0, 2), (0, 3)], coords, now=13)
    assert keep == [(0, 2), (0, 3)] and not seeks and not g.pending
