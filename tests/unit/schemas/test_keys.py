"""The key registry: several keys per signer, key ids, revocation judged by the broker's
receive time (whatever ``ce_time`` says), load-time refusals, and reloading without a restart
— in the stream worker's check processes too."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import pickle
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator

from schemas import (
    ContractViolation,
    Reason,
    ReloadingKeyRegistry,
    Revocation,
    SignerKey,
    StaticKeyRegistry,
    dev_signing_key,
    sign,
    verify,
)
from schemas.examples import example_change
from schemas.kafka import KafkaConnection
from schemas.keys import DEV_KEY_SEED, DevKeyRegistry
from schemas.schema_export import SCHEMA_ROOT

SIGNER = "hw-00004-1"
T0 = datetime(2025, 1, 15, 12, tzinfo=UTC)  # example_change's ce_time


def key(name: str) -> Any:
    return dev_signing_key(b"test-keys", name)


def pub(name: str) -> bytes:
    return bytes(key(name).verify_key)


def signed(name: str, key_id: str | None = None, when: datetime = T0) -> Any:
    change = example_change("immunization", on=when.date())
    return sign(change, key(name), key_id=key_id)


def reason(change: Any, registry: Any, received: datetime) -> Reason | None:
    try:
        verify(change, registry, received=received)
    except ContractViolation as exc:
        return exc.reason
    return None


ROTATING = StaticKeyRegistry(
    [
        SignerKey(SIGNER, "00004", pub("old"), key_id="2024"),
        SignerKey(SIGNER, "00004", pub("new"), key_id="2025"),
    ],
    [Revocation(SIGNER, T0 + timedelta(days=30), "2024", "tablet lost")],
)


def test_rotation_both_keys_sign_while_they_overlap() -> None:
    received = T0 + timedelta(days=1)
    assert reason(signed("old", "2024"), ROTATING, received) is None
    assert reason(signed("new", "2025"), ROTATING, received) is None
    assert reason(signed("new"), ROTATING, received) is None, "no key_id: every key is tried"
    assert reason(signed("new", "2024"), ROTATING, received) is Reason.TAMPERED
    assert reason(signed("new", "1999"), ROTATING, received) is Reason.UNKNOWN_KEY_ID


def test_revocation_uses_the_receive_time_not_ce_time() -> None:
    """A key revoked at R rejects what the broker received from R on, however far back the
    sender dates the event; what was received before R stays valid."""
    revoked = T0 + timedelta(days=30)
    backdated = signed("old", "2024", when=T0 - timedelta(days=300))
    assert reason(backdated, ROTATING, revoked - timedelta(seconds=1)) is None
    assert reason(backdated, ROTATING, revoked) is Reason.SIGNER_KEY_REVOKED
    assert reason(signed("old"), ROTATING, revoked + timedelta(days=1)) is Reason.SIGNER_KEY_REVOKED
    assert reason(signed("new", "2025"), ROTATING, revoked + timedelta(days=1)) is None


def test_validity_starts_at_ce_time_and_ends_at_receive_time() -> None:
    """A key signs what was made from ``valid_from`` on and received before ``valid_to``: an
    event backdated into the key's life but received after it ended is refused."""
    start, end = T0 - timedelta(days=30), T0 + timedelta(days=30)
    registry = StaticKeyRegistry(
        [SignerKey(SIGNER, "00004", pub("k"), valid_from=start, valid_to=end)]
    )
    assert reason(signed("k"), registry, end - timedelta(seconds=1)) is None
    assert reason(signed("k"), registry, end) is Reason.SIGNER_KEY_EXPIRED
    before = signed("k", when=start - timedelta(days=1))
    assert reason(before, registry, T0) is Reason.SIGNER_KEY_EXPIRED


@pytest.mark.parametrize(
    ("life", "says"),
    [
        ({"valid_to": T0}, "(it signs only events received before 2025-01-15T12:00:00.000000Z)"),
        (
            {"valid_from": T0 + timedelta(days=1)},
            "(it signs only events made from 2025-01-16T12:00:00.000000Z on)",
        ),
        (
            {"valid_from": T0 + timedelta(days=1), "valid_to": T0 + timedelta(days=9)},
            "(it signs only events made from 2025-01-16T12:00:00.000000Z on and received before "
            "2025-01-24T12:00:00.000000Z)",
        ),
    ],
    ids=["no start", "no end", "both ends"],
)
def test_an_expired_key_is_explained_by_the_ends_it_has(life: dict[str, Any], says: str) -> None:
    """The refusal names only the ends of the key's life that exist (never "valid - to")."""
    registry = StaticKeyRegistry([SignerKey(SIGNER, "00004", pub("k"), key_id="k1", **life)])
    with pytest.raises(ContractViolation) as refused:
        verify(signed("k"), registry, received=T0 + timedelta(days=10))
    assert refused.value.reason is Reason.SIGNER_KEY_EXPIRED
    assert str(refused.value).endswith(says), str(refused.value)
    assert " - " not in str(refused.value)


def entry(signer: str = SIGNER, name: str = "k", **extra: Any) -> dict[str, Any]:
    return {
        "signer": signer,
        "station": "00004",
        "public_key": base64.b64encode(pub(name)).decode(),
        **extra,
    }


@pytest.mark.parametrize(
    ("label", "doc"),
    [
        ("same signer twice", {"keys": [entry(), entry(name="k2")]}),
        ("same key id twice", {"keys": [entry(key_id="a"), entry(name="k2", key_id="a")]}),
        ("one key without id", {"keys": [entry(key_id="a"), entry(name="k2")]}),
        ("two stations", {"keys": [entry(key_id="a"), {**entry(name="b", key_id="b"),
                                                      "station": "00007"}]}),
        ("public key twice", {"keys": [entry(), entry("hw-00004-2")]}),
        ("revocation of nobody", {"keys": [entry()], "revocations": [
            {"signer": "hw-00004-9", "revoked_at": "2025-01-01T00:00:00Z"}]}),
        ("revocation of no such key", {"keys": [entry(key_id="a")], "revocations": [
            {"signer": SIGNER, "key_id": "b", "revoked_at": "2025-01-01T00:00:00Z"}]}),
        ("unknown field", {"keys": [entry(comment="x")]}),
        ("time without offset", {"keys": [entry(valid_from="2025-01-01T00:00:00")]}),
        ("signer with a newline", {"keys": [entry(SIGNER + "\n")]}),
        ("short public key", {"keys": [{**entry(), "public_key": "AAAA"}]}),
        ("not json", "{"),
    ],
)  # fmt: skip
def test_bad_registries_are_refused_at_load(label: str, doc: Any) -> None:
    raw = doc if isinstance(doc, str) else orjson.dumps(doc)
    with pytest.raises(ContractViolation) as info:
        StaticKeyRegistry.from_json(raw)
    assert "bad key registry" in str(info.value), label


def test_registry_file_round_trip_and_its_json_schema() -> None:
    back = StaticKeyRegistry.from_json(ROTATING.to_json())
    assert back.keys_of(SIGNER) == ROTATING.keys_of(SIGNER)
    assert back.keys_of(SIGNER)[0].revoked_at == T0 + timedelta(days=30)
    schema = orjson.loads((SCHEMA_ROOT / "key_registry" / "v1.json").read_bytes())
    Draft202012Validator(schema).validate(orjson.loads(ROTATING.to_json()))


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def write(path: Path, registry: StaticKeyRegistry) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(registry.to_json())
    tmp.replace(path)  # how operators (and Kubernetes secret mounts) swap files: atomically


def test_reloads_on_change_and_keeps_the_last_good_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "keys.json"
    write(path, StaticKeyRegistry([SignerKey(SIGNER, "00004", pub("k"))]))
    clock = Clock()
    reg = ReloadingKeyRegistry(path, 10.0, clock=clock)
    later = datetime.now(UTC) + timedelta(days=1)
    assert reason(signed("k"), reg, later) is None
    revoked = StaticKeyRegistry(
        [SignerKey(SIGNER, "00004", pub("k"))], [Revocation(SIGNER, datetime.now(UTC))]
    )
    write(path, revoked)
    clock.t = 9.9
    assert reason(signed("k"), reg, later) is None, "not looked at before the interval"
    clock.t = 10.0
    assert reason(signed("k"), reg, later) is Reason.SIGNER_KEY_REVOKED
    assert reg.reloads == 1
    path.write_bytes(b'{"keys": [')  # an operator's mistake
    clock.t = 20.0
    with caplog.at_level(logging.ERROR, "schemas.keyreload"):
        assert reason(signed("k"), reg, later) is Reason.SIGNER_KEY_REVOKED, "previous kept"
    assert reg.failures == 1 and "failed to load" in caplog.text
    path.unlink()
    clock.t = 30.0
    assert reason(signed("k"), reg, later) is Reason.SIGNER_KEY_REVOKED
    with pytest.raises(FileNotFoundError):
        ReloadingKeyRegistry(path)  # the first load fails closed


def test_a_development_key_is_refused_outside_development_at_load_and_reload(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Fail closed while running too: a registry file swapped in that holds a key derived
    from the published development seed is refused like one that does not parse."""
    path = tmp_path / "keys.json"
    write(path, StaticKeyRegistry([SignerKey(SIGNER, "00004", pub("k"))]))
    clock = Clock()
    reg = ReloadingKeyRegistry(path, 10.0, clock=clock)
    dev_key = DevKeyRegistry(DEV_KEY_SEED).lookup("hw-00004-2")
    assert dev_key is not None
    write(path, StaticKeyRegistry([SignerKey(SIGNER, "00004", pub("k")), dev_key]))
    clock.t = 10.0
    with caplog.at_level(logging.ERROR, "schemas.keyreload"):
        assert reg.check() is False
    assert reg.failures == 1 and reg.keys_of("hw-00004-2") == ()
    assert "holds development keys" in caplog.text and "hw-00004-2" in caplog.text
    with pytest.raises(ContractViolation, match=r"holds development keys .* hw-00004-2"):
        ReloadingKeyRegistry(path)  # the first load fails closed
    in_dev = ReloadingKeyRegistry(path, development=True)
    assert in_dev.keys_of("hw-00004-2") == (dev_key,)
    copy = pickle.loads(pickle.dumps(in_dev))  # what a check process gets
    assert copy.development is True and copy.keys_of("hw-00004-2") == (dev_key,)
    write(path, StaticKeyRegistry([]))
    with pytest.raises(ContractViolation, match="holds no keys"):
        ReloadingKeyRegistry(path, development=True)


def test_check_processes_cut_a_revoked_key_off_within_one_interval(tmp_path: Path) -> None:
    """The stream worker's stage 1 runs in spawned processes, each with its own registry: a
    revocation written to the file reaches them without a restart, and a backdated event
    signed with the thief's copy of the key is rejected from then on."""
    from streams.checkpool import CheckPool
    from streams.config import StreamsConfig
    from streams.validate import Accepted, Rejected
    from tests.data.bad_inputs import EventFactory
    from tests.helpers import wait_until
    from tests.unit.streams.test_validate import raw

    f = EventFactory(seed="the-stations-own-keys")  # a real registry: no development mode
    path = tmp_path / "keys.json"
    registry = f.key_registry()
    write(path, registry)
    config = StreamsConfig(
        kafka=KafkaConnection(bootstrap="unused:9092"),
        pseudonym_key=base64.b64encode(os.urandom(32)).decode(),
        key_registry_path=str(path),
        key_registry_reload_s=0.5,
    )
    stolen = "hw-00004-2"
    pool = CheckPool(2, config)
    try:
        before = raw([f.message(f.change("encounter", signer=stolen))])
        assert isinstance(pool.check_sync(before, datetime.now(UTC))[0], Accepted)
        cut_at = datetime.now(UTC)
        keys = [k for s in ("hw-00004-1", stolen) for k in registry.keys_of(s)]
        write(path, StaticKeyRegistry(keys, [Revocation(stolen, cut_at, None, "stolen")]))

        async def spread(msgs: list[Any]) -> list[Any]:
            out: list[Any] = []
            async for _part, verdicts in pool.chunks(msgs, datetime.now(UTC), 1):
                out += verdicts  # one message per chunk, all submitted at once: every process
            return out

        def cut_off() -> bool:
            thief = f.change("encounter", signer=stolen, when=cut_at - timedelta(days=20))
            verdicts = asyncio.run(spread(raw([f.message(thief)] * 8)))
            return all(
                isinstance(v, Rejected) and v.reason is Reason.SIGNER_KEY_REVOKED for v in verdicts
            )

        wait_until(cut_off, timeout=30, interval=0.2, message="revocation reached the processes")
        other = raw([f.message(f.change("encounter", signer="hw-00004-1"))])
        assert isinstance(pool.check_sync(other, datetime.now(UTC))[0], Accepted)
    finally:
        pool.close()


def test_the_key_that_verified_a_submission_must_hold_the_station_head_role() -> None:
    """Roles are per key: a signer rotating from a station-head key to one without the role
    signs records with both, the month's submission only with the first; the role is read
    from the registry file and survives a round trip."""
    from schemas.keys import STATION_HEAD, require_role

    registry = StaticKeyRegistry(
        [
            SignerKey(SIGNER, "00004", pub("head"), key_id="h", roles=frozenset({STATION_HEAD})),
            SignerKey(SIGNER, "00004", pub("plain"), key_id="p"),
        ]
    )
    received = T0 + timedelta(days=1)
    require_role(verify(signed("head", "h"), registry, received=received), STATION_HEAD)
    plain = verify(signed("plain"), registry, received=received)  # no key_id: found by trying
    assert plain.key_id == "p"
    with pytest.raises(ContractViolation) as exc:
        require_role(plain, STATION_HEAD)
    assert exc.value.reason is Reason.SIGNER_NOT_AUTHORISED
    back = StaticKeyRegistry.from_json(registry.to_json())
    assert [k.roles for k in back.keys_of(SIGNER)] == [frozenset({STATION_HEAD}), frozenset()]
    doc = orjson.loads(registry.to_json())
    doc["keys"][0]["roles"] = ["boss"]
    with pytest.raises(ContractViolation, match="roles"):
        StaticKeyRegistry.from_json(orjson.dumps(doc))
