"""Fail closed: the stream worker's trust anchors and the portal's keys are required outside
development mode, the development ones are refused there, and development mode says so
loudly."""

from __future__ import annotations

import base64
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from nacl.signing import SigningKey
from pydantic import SecretStr, ValidationError

from deploy.anchors import PORTAL_DEV_KEYS, access_log_key, portal_anchors, worker_anchors
from deploy.exceptions import ConfigError, MissingTrustAnchor
from deploy.settings import Settings
from schemas import DevKeyRegistry, Revocation, SignerKey, StaticKeyRegistry
from schemas.kafka import KafkaConnection
from schemas.keys import DEV_KEY_SEED
from streams.config import StreamsConfig
from streams.pseudonym_key import DEV_PSEUDONYM_KEY

STRONG = base64.b64encode(os.urandom(32)).decode()


def registry_file(tmp_path: Path, *, dev: bool = False, name: str = "keys.json") -> Path:
    if dev:
        key = DevKeyRegistry(DEV_KEY_SEED).lookup("hw-00004-1")
        assert key is not None
    else:
        pub = bytes(SigningKey.generate().verify_key)
        key = SignerKey(signer="hw-00004-1", station="00004", public_key=pub)
    path = tmp_path / name
    path.write_bytes(StaticKeyRegistry([key]).to_json())
    return path


def settings(**values: object) -> Settings:
    """Settings as an entry point reads them, without anything from this process's env."""
    base: dict[str, object] = {
        "dev": False,
        "key_registry": None,
        "pseudonym_key": None,
        "portal_session_key": None,
        "access_log_key": None,
        "approver_keys": None,
    }
    return Settings.model_construct(**{**Settings.load().model_dump(), **base, **values})


def test_without_anchors_the_worker_refuses_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(MissingTrustAnchor, match=r"TUYEN_KEY_REGISTRY is not set: .*--dev"):
        worker_anchors(settings())
    with pytest.raises(MissingTrustAnchor, match=r"TUYEN_PSEUDONYM_KEY is not set: .*--dev"):
        worker_anchors(settings(key_registry=str(registry_file(tmp_path))))


def test_real_anchors_are_accepted(tmp_path: Path) -> None:
    path = str(registry_file(tmp_path))
    got = worker_anchors(settings(key_registry=path, pseudonym_key=SecretStr(STRONG)))
    assert (got.development, got.key_registry_path) == (False, path)
    assert got.pseudonym_key.get_secret_value() == STRONG


@pytest.mark.parametrize("key", [DEV_PSEUDONYM_KEY, "short", "A" * 44])
def test_weak_keys_are_refused(key: str, tmp_path: Path) -> None:
    s = settings(key_registry=str(registry_file(tmp_path)), pseudonym_key=SecretStr(key))
    with pytest.raises(ConfigError, match="TUYEN_PSEUDONYM_KEY is refused"):
        worker_anchors(s)


def test_the_development_registry_is_refused_outside_development(tmp_path: Path) -> None:
    path = str(registry_file(tmp_path, dev=True))
    s = settings(key_registry=path, pseudonym_key=SecretStr(STRONG))
    with pytest.raises(ConfigError, match=r"holds development keys .* hw-00004-1"):
        worker_anchors(s)
    assert worker_anchors(s.model_copy(update={"dev": True})).key_registry_path == path


def test_the_registry_format_with_key_ids_and_revocations(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Rotation and revocation (``key_id``, ``revocations``) are understood; a development key
    hidden among a signer's rotated keys is still refused outside development mode, and in
    development mode the WARNING names it."""
    real = [
        SignerKey("hw-00004-2", "00004", bytes(SigningKey.generate().verify_key), key_id=k)
        for k in ("2025", "2026")
    ]
    cut = Revocation("hw-00004-2", datetime(2026, 3, 1, tzinfo=UTC), "2025", "stolen")
    path = tmp_path / "rotating.json"
    path.write_bytes(StaticKeyRegistry(real, [cut]).to_json())
    s = settings(key_registry=str(path), pseudonym_key=SecretStr(STRONG))
    assert worker_anchors(s).key_registry_path == str(path)
    dev = DevKeyRegistry(DEV_KEY_SEED).lookup("hw-00004-1")
    assert dev is not None
    hidden = [
        SignerKey("hw-00004-1", "00004", bytes(SigningKey.generate().verify_key), key_id="a"),
        SignerKey("hw-00004-1", "00004", dev.public_key, key_id="b"),
    ]
    path.write_bytes(StaticKeyRegistry([*real, *hidden], [cut]).to_json())
    with pytest.raises(ConfigError, match=r"holds development keys .* hw-00004-1"):
        worker_anchors(s)
    with caplog.at_level(logging.WARNING, logger="deploy.anchors"):
        worker_anchors(s.model_copy(update={"dev": True}))
    assert "development keys in the key registry" in caplog.text and "hw-00004-1" in caplog.text


def test_a_broken_registry_is_named(tmp_path: Path) -> None:
    for content, why in ((None, "cannot be read"), (b"{", "is not a key registry"),
                         (b'{"keys": []}', "holds no keys")):  # fmt: skip
        path = tmp_path / "r.json"
        if content is not None:
            path.write_bytes(content)
        s = settings(key_registry=str(path), pseudonym_key=SecretStr(STRONG))
        with pytest.raises(ConfigError, match=f"TUYEN_KEY_REGISTRY={path} {why}"):
            worker_anchors(s)


def test_development_mode_uses_the_development_anchors_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="deploy.anchors"):
        got = worker_anchors(settings(dev=True))
    assert got.development and got.key_registry_path is None
    assert got.pseudonym_key.get_secret_value() == DEV_PSEUDONYM_KEY
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    text = record.getMessage()
    assert "DEVELOPMENT MODE" in text
    assert "development key registry" in text and "development pseudonym key" in text


def test_streams_config_fails_closed_too(tmp_path: Path) -> None:
    kafka = KafkaConnection(bootstrap="unused:9092")
    with pytest.raises(ValidationError, match="key_registry_path is required"):
        StreamsConfig(kafka=kafka, pseudonym_key=SecretStr(STRONG))
    with pytest.raises(ValidationError, match="pseudonym key refused"):
        StreamsConfig(
            kafka=kafka, pseudonym_key=SecretStr(DEV_PSEUDONYM_KEY), key_registry_path="x"
        )
    ok = StreamsConfig(kafka=kafka, pseudonym_key=SecretStr(STRONG), key_registry_path="x")
    assert ok.pseudonym_key_bytes() == base64.b64decode(STRONG)
    dev = StreamsConfig(kafka=kafka, pseudonym_key=SecretStr(DEV_PSEUDONYM_KEY), development=True)
    assert len(dev.pseudonym_key_bytes()) == 32


def _strong() -> SecretStr:
    return SecretStr(base64.b64encode(os.urandom(32)).decode())


def test_the_portal_refuses_to_start_without_its_keys(tmp_path: Path) -> None:
    with pytest.raises(MissingTrustAnchor) as refused:
        portal_anchors(settings(), tmp_path)
    text = str(refused.value)
    assert (
        "TUYEN_PORTAL_SESSION_KEY is not set" in text and "TUYEN_ACCESS_LOG_KEY is not set" in text
    )
    assert "_FILE" in text and "--dev" in text
    only = settings(portal_session_key=_strong())
    with pytest.raises(MissingTrustAnchor, match="TUYEN_ACCESS_LOG_KEY is not set") as one:
        portal_anchors(only, tmp_path)
    assert "TUYEN_PORTAL_SESSION_KEY" not in str(one.value)
    assert not (tmp_path / PORTAL_DEV_KEYS).exists()


def test_the_portal_accepts_strong_keys(tmp_path: Path) -> None:
    session, audit = _strong(), _strong()
    got = portal_anchors(settings(portal_session_key=session, access_log_key=audit), tmp_path)
    assert (got.development, got.session_key, got.access_log_key) == (False, session, audit)
    assert access_log_key(settings(access_log_key=audit)) == audit.get_secret_value().encode()
    assert access_log_key(settings()) is None  # `tuyen report` without a key: unkeyed chain


@pytest.mark.parametrize("weak", [DEV_PSEUDONYM_KEY, "short", "s" * 40, "correct horse battery"])
@pytest.mark.parametrize("field", ["portal_session_key", "access_log_key"])
def test_weak_portal_keys_are_refused_even_in_development(
    field: str, weak: str, tmp_path: Path
) -> None:
    var = "TUYEN_PORTAL_SESSION_KEY" if field == "portal_session_key" else "TUYEN_ACCESS_LOG_KEY"
    values = {"portal_session_key": _strong(), "access_log_key": _strong(), field: SecretStr(weak)}
    for dev in (False, True):
        with pytest.raises(ConfigError, match=f"{var} is refused"):
            portal_anchors(settings(dev=dev, **values), tmp_path)
    if field == "access_log_key":
        with pytest.raises(ConfigError, match=f"{var} is refused"):
            access_log_key(settings(access_log_key=SecretStr(weak)))


def test_the_portal_keys_must_differ(tmp_path: Path) -> None:
    key = _strong()
    with pytest.raises(ConfigError, match="are the same key"):
        portal_anchors(settings(portal_session_key=key, access_log_key=key), tmp_path)


def test_development_mode_generates_the_portal_keys_once_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = tmp_path / "portal"
    with caplog.at_level(logging.WARNING, logger="deploy.anchors"):
        first = portal_anchors(settings(dev=True), state)
    (record,) = caplog.records
    text = record.getMessage()
    assert "DEVELOPMENT MODE" in text and "tuyen portal serve" in text
    assert "TUYEN_PORTAL_SESSION_KEY and TUYEN_ACCESS_LOG_KEY generated into" in text
    assert first.development
    keys = state / PORTAL_DEV_KEYS
    assert keys.stat().st_mode & 0o777 == 0o600
    again = portal_anchors(settings(dev=True), state)
    assert (again.session_key, again.access_log_key) == (first.session_key, first.access_log_key)
    # a key that is set wins over the generated one; only the other is generated
    own = _strong()
    mixed = portal_anchors(settings(dev=True, access_log_key=own), state)
    assert (mixed.session_key, mixed.access_log_key) == (first.session_key, own)
    # `tuyen portal audit verify` in development mode finds the generated access-log key
    generated = first.access_log_key.get_secret_value().encode()
    assert access_log_key(settings(dev=True), state) == generated
    assert access_log_key(settings(), state) is None
    assert access_log_key(settings(dev=True), tmp_path / "elsewhere") is None
    keys.write_bytes(b'{"session": "x", "audit": "y"}')  # another format: refused, named
    with pytest.raises(ConfigError, match=f"{keys} does not hold the portal's development keys"):
        portal_anchors(settings(dev=True), state)


def approvers_file(tmp_path: Path, *, dev: bool = False) -> Path:
    from schemas.signoff import DevApproverRegistry

    key = (
        DevApproverRegistry(DEV_KEY_SEED).signing_key("sup-01-1") if dev else SigningKey.generate()
    ).verify_key
    entry = {"approver": "sup-01-1", "unit": "01", "roles": ["approve", "lock"]}
    path = tmp_path / "approvers.json"
    entry["public_key"] = base64.b64encode(bytes(key)).decode()
    path.write_bytes(orjson.dumps({"approvers": [entry]}))
    return path


def test_whatever_checks_decisions_needs_the_approvers_keys(tmp_path: Path) -> None:
    """TUYEN_APPROVER_KEYS: named when missing, refused when broken, empty or a development
    approver's outside development mode; the sink's config refuses to run without it too."""
    from deploy.anchors import approver_registry
    from sinks.config import sink_config

    with pytest.raises(MissingTrustAnchor, match=r"TUYEN_APPROVER_KEYS is not set: .*--dev"):
        approver_registry(settings(), "tuyen sink signoff")
    real = approvers_file(tmp_path)
    assert approver_registry(settings(approver_keys=str(real)), "x").keys_of("sup-01-1")
    assert approver_registry(settings(approver_keys=str(real)), "x").keys_of("sup-02-1") == ()
    with pytest.raises(ConfigError, match=r"development keys .* sup-01-1"):
        approver_registry(settings(approver_keys=str(approvers_file(tmp_path, dev=True))), "x")
    (tmp_path / "empty.json").write_bytes(b'{"approvers": []}')
    with pytest.raises(ConfigError, match="holds no keys"):
        approver_registry(settings(approver_keys=str(tmp_path / "empty.json")), "x")
    with pytest.raises(ConfigError, match="cannot be read"):
        approver_registry(settings(approver_keys=str(tmp_path / "nope.json")), "x")
    # development mode: the development approvers, alone or besides the file
    dev = approver_registry(settings(dev=True), "x")
    assert dev.keys_of("sup-02-1")
    both = approver_registry(settings(dev=True, approver_keys=str(real)), "x")
    assert both.keys_of("sup-01-1") and both.keys_of("sup-02-1")
    conn = KafkaConnection(bootstrap="localhost:1")
    with pytest.raises(ValidationError, match="approver_keys is required"):
        sink_config("signoff", kafka=conn, store_root=str(tmp_path))
    assert sink_config("signoff", kafka=conn, store_root=str(tmp_path), development=True)
    assert sink_config("national", kafka=conn, store_root=str(tmp_path))  # verifies nothing


def test_the_worker_loads_the_facility_registry_or_refuses_naming_it(tmp_path: Path) -> None:
    base = {"dev": True, "key_registry": str(registry_file(tmp_path))}
    good = tmp_path / "facilities.csv"
    good.write_text(
        "ma_cskcb,source,name,province,valid_from,valid_to\n"
        "04101,90001,Bệnh viện đa khoa tỉnh Cao Bằng,04,,\n",
        encoding="utf-8",
    )
    assert worker_anchors(settings(**base, facilities=str(good))).facilities_path == str(good)
    assert worker_anchors(settings(**base)).facilities_path is None
    nowhere = tmp_path / "nowhere.csv"  # a facility of a province that does not exist
    nowhere.write_text(good.read_text(encoding="utf-8").replace(",04,", ",99,"), "utf-8")
    missing = tmp_path / "missing.csv"
    for path, why in ((missing, "cannot be read"), (nowhere, "is not a facility registry")):
        with pytest.raises(ConfigError, match=rf"TUYEN_FACILITIES={path} {why}"):
            worker_anchors(settings(**base, facilities=str(path)))
