"""Stage 1 with its Ed25519 verifications run apart (``Validator.prepare`` →
``schemas.signing.verify_checks`` → ``Validator.conclude``; ``StreamsRuntime`` runs them on a
thread with ``signature_thread``): the verdicts are ``Validator.check``'s, event for event."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from typing import Any

import orjson

from schemas import KafkaMessage, Reason, SignerKey, StaticKeyRegistry, encode, sign
from schemas.hierarchy import Hierarchy
from schemas.signing import first_check, verify, verify_checks
from streams.runtime import Verifications
from streams.validate import Accepted, Rejected, Validator
from tests.data.bad_inputs import ROTATED, EventFactory, bad_inputs
from tests.unit.streams.test_agents import _consumed, _runtime
from tests.unit.streams.test_validate import PARTITIONS, corpus_stream, raw


def _verdict(v: Accepted | Rejected) -> Any:
    return (v.record, v.signature) if isinstance(v, Accepted) else (v.reason, v.message)


def _apart(validator: Validator, msgs: Any, now: datetime) -> list[Accepted | Rejected]:
    items, checks = validator.prepare(msgs, now)
    return validator.conclude(items, verify_checks(checks), now)


def test_the_corpus_gets_the_same_verdicts_with_the_verifications_apart() -> None:
    f = EventFactory()
    validator = Validator(Hierarchy.default(), f.key_registry(), partitions=PARTITIONS)
    msgs = corpus_stream(f.valid(40), bad_inputs(f))
    now = datetime.now(UTC)
    inline = validator.check_many(msgs, now)
    apart = _apart(validator, msgs, now)
    assert [_verdict(v) for v in apart] == [_verdict(v) for v in inline]
    reasons = {v.reason for v in apart if isinstance(v, Rejected)}
    assert {Reason.TAMPERED, Reason.SIGNER_KEY_REVOKED, Reason.BAD_SIGNATURE} <= reasons
    assert sum(isinstance(v, Accepted) for v in apart) >= 40


def test_a_signature_of_the_signers_second_key_is_found_as_verify_finds_it() -> None:
    """Without a key id every usable key is tried: the first check fails, the event is
    checked again whole and accepted with the key that verifies."""
    f = EventFactory()
    keys = f.key_registry()
    both = [
        SignerKey(ROTATED, "00004", bytes(f.signing_key(ROTATED, k).verify_key), key_id=k)
        for k in ("a", "b")
    ]
    registry = StaticKeyRegistry([*(k for k in keys.entries() if k.signer != ROTATED), *both])
    change = sign(f.change(signer=ROTATED), f.signing_key(ROTATED, "b"))  # no key id
    planned = first_check(change, registry, received=datetime.now(UTC))
    assert planned is not None and planned.key.key_id == "a"
    assert verify_checks([planned]) == [False]
    assert verify(change, registry).key_id == "b"
    validator = Validator(Hierarchy.default(), registry, partitions=PARTITIONS)
    now = datetime.now(UTC)
    msgs = raw([encode(change)])
    [verdict] = _apart(validator, msgs, now)
    assert isinstance(verdict, Accepted)
    assert _verdict(verdict) == _verdict(validator.check(msgs[0], now))


def test_the_runtime_gives_the_same_outputs_with_the_signatures_on_a_thread() -> None:
    f = EventFactory()
    good = f.valid(600)  # chunks of 256, 256 and the rest
    altered = []
    for m in good[::50]:  # a changed version: the signature no longer verifies
        doc = orjson.loads(m.value)
        doc["record_version"] += 1
        altered.append(KafkaMessage(m.key, orjson.dumps(doc), m.headers))
    msgs = _consumed([*good, *altered])
    now = datetime.now(UTC)
    outputs = []
    for on in (False, True):  # off: the default
        runtime = _runtime(signature_thread=on)
        try:
            assert (runtime.signer is not None) == on
            out, _finish_s = asyncio.run(runtime.process(msgs, now))
            outputs.append([(m.topic, m.key, m.value) for m in out.outputs])
            assert out.accepted == len(good)
            assert out.rejected == {Reason.TAMPERED.value: len(altered)}
        finally:
            runtime.close()
    assert outputs[0] == outputs[1]


def test_the_signature_thread_is_used_only_with_stage_1_on_the_loop() -> None:
    for overrides in ({"verify_threads": 1}, {"verify_processes": 1}):
        runtime = _runtime(signature_thread=True, **overrides)
        try:
            assert runtime.signer is None
        finally:
            runtime.close()


def test_the_loop_verifies_what_a_busy_signature_thread_has_not() -> None:
    """A thread the machine gives no core (here: blocked) never holds a batch up."""
    msgs = _consumed(EventFactory().valid(300))
    now = datetime.now(UTC)
    runtime = _runtime(signature_thread=True)
    release = threading.Event()
    try:
        assert runtime.signer is not None
        blocked = runtime.signer.submit(release.wait)
        out, _finish_s = asyncio.run(runtime.process(msgs, now))
        assert out.accepted == len(msgs) and not blocked.done()
    finally:
        release.set()
        runtime.close()


def test_a_check_that_raises_is_not_verified() -> None:
    f = EventFactory()
    registry = f.key_registry()
    change = f.change()
    planned = first_check(change, registry, received=datetime.now(UTC))
    assert planned is not None
    broken = planned._replace(signature=None)  # type: ignore[arg-type]
    verifications = Verifications([planned, broken])
    verifications.run()

    async def outcomes() -> list[bool]:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return await verifications.outcomes(done)

    assert asyncio.run(outcomes()) == [True, False]
