"""LinkedIn Burrow's own evaluator cases, ported one for one.

Source: ``core/internal/evaluator/caching_test.go`` of github.com/linkedin/Burrow (master,
the ``tests`` table read by ``TestCachingEvaluator_CheckRules``): every case checks each rule
helper and the final status. Timestamps are milliseconds, ``time_now`` is seconds (as there).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from streams.monitor.burrow import (
    Commit,
    Status,
    evaluate_partition,
    lag_always_not_zero,
    lag_not_decreasing,
    partition_status,
    recent_lag_zero,
    rewind_index,
    stalled,
    stopped,
)


@dataclass(frozen=True)
class Case:
    offsets: tuple[tuple[int, int, int | None], ...]  # (offset, timestamp ms, lag)
    broker_offsets: tuple[int, ...]
    current_lag: int
    time_now: int  # seconds
    allowed_lag: int
    lag_always_not_zero: bool
    rewind_index: int
    stopped: bool
    stalled: bool
    lag_not_decreasing: bool
    recent_lag_zero: bool
    status: Status


def _five(offsets: tuple[int, ...], lags: tuple[int, ...]) -> tuple[tuple[int, int, int], ...]:
    return tuple(
        (o, (i + 1) * 100_000, lag) for i, (o, lag) in enumerate(zip(offsets, lags, strict=True))
    )


_STEADY = _five((1000, 2000, 3000, 4000, 5000), (0, 50, 100, 150, 200))
_BEHIND = _five((1000, 2000, 3000, 4000, 5000), (50, 100, 150, 200, 250))
_SAME_0 = _five((1000,) * 5, (0, 50, 100, 150, 200))
_SAME = _five((1000,) * 5, (100, 150, 200, 250, 300))
_SAME_FLAT = _five((1000,) * 5, (100,) * 5)
_REWOUND = _five((1000, 2000, 3000, 2000, 4000), (100, 150, 200, 1250, 300))
_NOT_RECOVERED = _five((1000, 2000, 3000, 2000, 2500), (100, 150, 200, 1250, 300))
_BURROW_290 = tuple(
    (792748079 + i, ts, 0)
    for i, ts in enumerate(
        (
            1512224618356,
            1512224619362,
            1512224620366,
            1512224621367,
            1512224622370,
            1512224623373,
            1512224624378,
            1512224625379,
            1512224626383,
            1512224627383,
            1512224628383,
            1512224629388,
            1512224630391,
            1512224631394,
            1512224632397,
        )
    )
)
_WITH_NIL = tuple(
    (1000 + 500 * i, 100_000 + 50_000 * i, (50 * (i // 2)) if i % 2 == 0 else None)
    for i in range(10)
)
_ALLOWED = ((1000, 100_000, 2), (2000, 200_000, 1), (2000, 300_000, 1))

T, F = True, False
S = Status
CASES: dict[int, Case] = {
    # 0 - OK because there is zero lag somewhere
    0: Case(_STEADY, (5200,), 200, 600, 0, F, -1, F, F, T, F, S.OK),
    # 1 - not STOP: time since last commit (400 s) equals the window's span, not greater
    1: Case(_STEADY, (5200,), 200, 900, 0, F, -1, F, F, T, F, S.OK),
    # 2 - STOP although the lag was zero at the start (#290)
    2: Case(_STEADY, (5200,), 200, 1000, 0, F, -1, T, F, T, F, S.STOP),
    # 3 - STOP when the lag is always non-zero as well
    3: Case(_BEHIND, (5250,), 250, 1000, 0, T, -1, T, F, T, F, S.STOP),
    # 4 - OK because of zero lag, although the offset never moves
    4: Case(_SAME_0, (1200,), 200, 600, 0, F, -1, F, T, T, F, S.OK),
    # 5 - STALL: the lag is always non-zero
    5: Case(_SAME, (1300,), 300, 600, 0, T, -1, F, T, T, F, S.STALL),
    # 6 - still STALL when the lag stays the same
    6: Case(_SAME_FLAT, (1100,), 100, 600, 0, T, -1, F, T, T, F, S.STALL),
    # 7 - OK: the offsets went backwards but the consumer got past the rewind point again
    7: Case(_REWOUND, (4300,), 300, 600, 0, T, 3, F, F, F, F, S.OK),
    # 8 - OK: the current lag is 0, although the timestamps say stopped
    8: Case(_BEHIND, (5250,), 0, 1000, 0, T, -1, T, F, T, F, S.OK),
    # 9 - STOP: lag zero at every commit, but new data arrived and no commit followed (#290)
    9: Case(
        _BURROW_290,
        (792749024, 792749000, 792748800, 792748600, 792748500),
        931,
        1512224650,
        0,
        F,
        -1,
        T,
        F,
        T,
        F,
        S.STOP,
    ),
    # 10 - OK: would be STOP, but the recent end offsets show it caught up (#303)
    10: Case(
        _BURROW_290,
        (792748094, 792748093, 792748093, 792748093),
        1,
        1512224650,
        0,
        F,
        -1,
        T,
        F,
        T,
        T,
        S.OK,
    ),
    # 11 - case 0 with unknown (nil) lags in between, which change nothing
    11: Case(_WITH_NIL, (5700,), 200, 600, 0, F, -1, F, F, T, F, S.OK),
    # 12 - OK thanks to the allowed lag, although the current lag is > 0 and stopped
    12: Case(_ALLOWED, (2001,), 1, 550, 1, F, -1, T, F, F, F, S.OK),
    # 13 - case 5 with an allowed lag
    13: Case(_SAME, (1300,), 300, 600, 99, T, -1, F, T, T, F, S.STALL),
    # 14 - case 7 with an allowed lag
    14: Case(_REWOUND, (4300,), 300, 600, 99, T, 3, F, F, F, F, S.OK),
    # 15 - REWIND: the consumer did not get back to the offset before the rewind
    15: Case(_NOT_RECOVERED, (4300,), 300, 600, 0, T, 3, F, F, F, F, S.REWIND),
}


def commits(case: Case) -> list[Commit]:
    return [Commit(o, ts, lag) for o, ts, lag in case.offsets]


def test_all_sixteen_cases_are_here() -> None:
    assert sorted(CASES) == list(range(16))


@pytest.mark.parametrize("number", sorted(CASES))
def test_burrow_case(number: int) -> None:
    case = CASES[number]
    w = commits(case)
    now_ms = case.time_now * 1000
    assert lag_always_not_zero(w, case.allowed_lag) is case.lag_always_not_zero
    assert rewind_index(w) == case.rewind_index
    assert stopped(w, now_ms) is case.stopped
    assert stalled(w) is case.stalled
    assert lag_not_decreasing(w) is case.lag_not_decreasing
    assert recent_lag_zero(w, case.broker_offsets) is case.recent_lag_zero
    got = partition_status(w, case.broker_offsets, case.current_lag, now_ms, case.allowed_lag)
    assert got is case.status
    verdict = evaluate_partition(
        w,
        case.current_lag,
        now_ms,
        broker_offsets=case.broker_offsets,
        window=len(w),
        allowed_lag=case.allowed_lag,
    )
    assert (verdict.status, verdict.complete) == (case.status, 1.0)
