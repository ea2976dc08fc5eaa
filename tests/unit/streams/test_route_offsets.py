"""The offset guard the stream shell uses against faust skipping a run of offsets."""

from __future__ import annotations

from streams.offsets import OffsetGuard


def coords(e: tuple[int, int]) -> tuple[int, int]:
    return e


def test_consecutive_offsets_pass() -> None:
    g = OffsetGuard()
    keep, seeks = g.check([(0, 5), (0, 6), (1, 0)], coords, {0: 5, 1: 0})
    assert keep == [(0, 5), (0, 6), (1, 0)] and not seeks


def test_jump_after_assignment_seeks_back_to_committed() -> None:
    g = OffsetGuard()
    g.check([(2, 1210), (2, 1211)], coords, {2: 1210})
    g.on_assignment()
    keep, seeks = g.check([(1, 7), (2, 1260), (2, 1261)], coords, {1: 7, 2: 1212})
    assert keep == [(1, 7)] and seeks == {2: 1212}
    keep, seeks = g.check([(2, 1212), (2, 1213)], coords)
    assert keep == [(2, 1212), (2, 1213)] and not seeks


def test_redelivery_of_offsets_already_let_through_is_dropped() -> None:
    """Below the expected offset: processed already (or below the committed baseline)."""
    g = OffsetGuard()
    g.check([(0, 10), (0, 11)], coords, {0: 10})
    keep, seeks = g.check([(0, 3), (0, 11), (0, 12)], coords)
    assert keep == [(0, 12)] and not seeks and g.expected == {0: 13}


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


def test_a_partition_without_baseline_takes_the_start_offset_the_shell_fetched() -> None:
    """After a restart or a rebalance every partition needs a baseline from the broker (seen:
    a stale fetch from beyond the committed offset, processed and committed, the run before
    it lost). Given their start offsets the guard holds the stale events back and seeks."""
    g = OffsetGuard()
    assert g.without_baseline([0, 1, 1, 2]) == [0, 1, 2]
    keep, seeks = g.check([(0, 134), (0, 135), (1, 90), (2, 40)], coords, {0: 84, 1: 90, 2: 40})
    assert keep == [(1, 90), (2, 40)] and seeks == {0: 84}
    assert g.without_baseline([0, 1, 2, 3]) == [3]  # the others have expectations now
    keep, seeks = g.check([(3, 7)], coords, {3: 5})  # a partition first seen later
    assert not keep and seeks == {3: 5}
    g.on_assignment()
    assert g.without_baseline([0, 1]) == [0, 1]  # a new assignment needs new baselines


def test_a_partition_with_no_known_start_is_held_back_and_sought_to_its_first_event() -> None:
    g = OffsetGuard()
    keep, seeks = g.check([(0, 12), (0, 13), (1, 4)], coords, {1: 4})
    assert keep == [(1, 4)] and seeks == {0: 12}
    assert g.without_baseline([0, 1]) == [0]  # asked again with the next batch
