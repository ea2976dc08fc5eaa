"""Fault: the bad-input corpus (``tests/data/bad_inputs.py``, every rejection reason) and
the simulator's deliberately bad events mixed into live traffic while the pipeline runs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from schemas.kafka import KafkaConnection
from tests.data.bad_inputs import EventFactory, bad_inputs
from tests.faults.checks import FaultResult, StoreContract, finish
from tests.faults.pipeline import start_run
from tests.faults.traffic import (
    Expectation,
    Outgoing,
    from_sim,
    phases,
    simulated,
    valid_change,
)

pytestmark = [pytest.mark.slow, pytest.mark.broker]


def _corpus() -> list[list[Outgoing]]:
    """Each case as its valid setup messages followed by the bad message."""
    groups = []
    for case in bad_inputs(EventFactory()):
        items = [Outgoing(valid_change(m).id, m) for m in case.setup]
        items.append(Outgoing(f"case:{case.name}", case.message, reason=case.reason))
        groups.append(items)
    return groups


@pytest.fixture(scope="module")
def result(
    kafka: KafkaConnection, tmp_path_factory: pytest.TempPathFactory, artifacts_dir: Path
) -> Iterator[FaultResult]:
    events, _ = simulated(15, start=date.today() - timedelta(days=5), days=4, bad_fraction=0.05)
    live = [from_sim(e) for e in events]
    corpus = _corpus()
    every = max(1, len(live) // (len(corpus) + 1))
    out: list[Outgoing] = []
    for i, o in enumerate(live):
        out.append(o)
        if i % every == every - 1 and corpus:
            out.extend(corpus.pop(0))
    for group in corpus:
        out.extend(group)
    exp = Expectation()
    exp.add(out)
    fp = start_run(kafka, tmp_path_factory, "bad-live")
    try:
        fp.start()
        first, second, third = phases(out, 0.4, 0.3)
        fp.publisher.send(first)
        fp.publisher.flush()
        committed = fp.wait_streams_mid_batch(len(first))
        fp.publisher.send(second)
        fp.publisher.flush()
        fp.publisher.send(third)
        fp.publisher.flush()
        measured = {
            "corpus_cases": sum(1 for o in out if o.label.startswith("case:")),
            "reasons": len({r for r in exp.bad.values()}),
            "stream_committed_mid_publish": committed,
            "catch_up_s": round(fp.wait_caught_up(), 1),
        }
        yield finish(fp, exp, artifacts_dir, "bad_inputs_live", measured)
    finally:
        fp.stop()


class TestBadInputsInLiveTraffic(StoreContract):
    """Every bad input dead-lettered with its reason, the valid traffic around it intact."""

    def test_the_corpus_covers_every_reason(self, result: FaultResult) -> None:
        assert result.measured["corpus_cases"] >= 25
        assert result.measured["reasons"] >= 25
