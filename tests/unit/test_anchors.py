"""Fail closed: the stream worker's trust anchors are required outside development mode, the
development ones are refused there, and development mode says so loudly."""

from __future__ import annotations

import base64
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from nacl.signing import SigningKey
from pydantic import SecretStr, ValidationError

from deploy.anchors import worker_anchors
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
    base: dict[str, object] = {"dev": False, "key_registry": None, "pseudonym_key": None}
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
