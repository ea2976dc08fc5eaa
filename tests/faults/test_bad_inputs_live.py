"""Fault: the bad-input corpus (``tests/data/bad_inputs.py`` with the hostile inputs of
``tests/data/hostile_inputs.py``: forged and revoked keys, 2^63 versions, a 1 MB header, a
station's ``tuyen_reason``, newlines in ids, another station's person record, the wrong
partition, ...) and the simulator's deliberately bad events, mixed into live traffic while the
real pipeline runs: broker, stream worker (verifying against a real key registry, not the
development keys: the worker runs outside development mode, with a registry of the
stations' own keys and a pseudonym key of its own) and every sink. Every valid event must
reach every store, every bad one the DLQ with its reason and no store, and the worker and
every sink must keep running."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from nacl.signing import SigningKey

from schemas.kafka import KafkaConnection
from tests.data.bad_inputs import EventFactory, bad_inputs
from tests.data.hostile_inputs import rfc8785_float_event
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

#: the stations' keys derive from this, not from the published development seed
REAL_SEED = "bad-live-stations-own-keys"


def _corpus(f: EventFactory) -> list[list[Outgoing]]:
    """Each case as its valid setup messages followed by the bad message."""
    groups = []
    for case in bad_inputs(f):
        items = [Outgoing(valid_change(m).id, m) for m in case.setup]
        items.append(
            Outgoing(
                f"case:{case.name}",
                case.message,
                reason=case.reason,
                wrong_partition=case.wrong_partition,
            )
        )
        groups.append(items)
    # valid too: a float without fraction signed over its RFC 8785 form (60.0 signed as 60)
    float_event = rfc8785_float_event(f)
    groups.append([Outgoing(valid_change(float_event).id, float_event)])
    return groups


@pytest.fixture(scope="module")
def result(
    kafka: KafkaConnection, tmp_path_factory: pytest.TempPathFactory, artifacts_dir: Path
) -> Iterator[FaultResult]:
    events, _ = simulated(
        15,
        start=date.today() - timedelta(days=5),
        days=4,
        bad_fraction=0.05,
        key_seed=REAL_SEED.encode(),
    )
    live = [from_sim(e) for e in events]
    f = EventFactory(seed=REAL_SEED)
    corpus = _corpus(f)
    stations = tuple({e.station for e in events})
    registry = tmp_path_factory.mktemp("keys") / "keys.json"
    registry.write_bytes(f.key_registry(stations, per_station=8).to_json())
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
    approvers = tmp_path_factory.mktemp("approvers") / "approvers.json"
    approver = base64.b64encode(bytes(SigningKey.generate().verify_key)).decode()
    approvers.write_bytes(orjson.dumps({"approvers": [
        {"approver": "sup-01-1", "unit": "01", "roles": ["approve"], "public_key": approver}
    ]}))  # fmt: skip
    anchors = {  # the production trust anchors: not in development mode
        "TUYEN_KEY_REGISTRY": str(registry),
        "TUYEN_PSEUDONYM_KEY": base64.b64encode(os.urandom(32)).decode(),
        "TUYEN_APPROVER_KEYS": str(approvers),  # the signoff sink's
    }
    fp = start_run(kafka, tmp_path_factory, "bad-live", anchors, development=False)
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
        measured: dict[str, Any] = {
            "corpus_cases": sum(1 for o in out if o.label.startswith("case:")),
            "reasons": len({r for r in exp.bad.values()}),
            "stream_committed_mid_publish": committed,
            "catch_up_s": round(fp.wait_caught_up(), 1),
        }
        fp.pipeline.check_alive()
        measured["services_down"] = [n for n, s in fp.pipeline.services.items() if not s.alive]
        measured["sink_threads_died"] = fp.dead_threads("sinks")
        worker_log = fp.pipeline.services["worker-1"].log_path.read_text(errors="replace")
        measured["worker_in_development_mode"] = "DEVELOPMENT MODE" in worker_log
        yield finish(fp, exp, artifacts_dir, "bad_inputs_live", measured)
    finally:
        fp.stop()


class TestBadInputsInLiveTraffic(StoreContract):
    """Every bad input dead-lettered with its reason, the valid traffic around it intact."""

    def test_the_corpus_covers_every_reason(self, result: FaultResult) -> None:
        assert result.measured["corpus_cases"] >= 25 + 30
        assert result.measured["reasons"] >= 25

    def test_worker_and_every_sink_kept_running(self, result: FaultResult) -> None:
        assert result.measured["services_down"] == []
        assert result.measured["sink_threads_died"] == []

    def test_the_worker_ran_with_production_anchors(self, result: FaultResult) -> None:
        assert result.measured["worker_in_development_mode"] is False
