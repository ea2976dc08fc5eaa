"""Trust anchors: what a process that verifies signatures or pseudonymises must be given.

Fail closed. Outside development mode the stream worker refuses to start without

- ``TUYEN_KEY_REGISTRY``: the signers' public keys (a StaticKeyRegistry JSON file) that
  holds keys, none of them a development key (derived from the published seed);
- ``TUYEN_PSEUDONYM_KEY`` (or ``TUYEN_PSEUDONYM_KEY_FILE``): base64 of ≥ 32 random bytes, not
  a published value (:mod:`streams.pseudonym_key`).

Development mode (``tuyen --dev``, ``TUYEN_DEV=1``) allows the development registry and key
when none is given, and says so with a WARNING naming what is development-only. Jobs that only
make sense with development keys (``tuyen simulate``, ``tuyen demo``, ``publish --dev-keys``)
require development mode.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson
from pydantic import SecretStr

from deploy.exceptions import ConfigError, MissingTrustAnchor
from deploy.settings import Settings
from schemas import ContractViolation, DevKeyRegistry, StaticKeyRegistry
from schemas.keys import DEV_KEY_SEED
from streams.pseudonym_key import DEV_PSEUDONYM_KEY, WeakPseudonymKey, decode_pseudonym_key

__all__ = [
    "DEV_HINT",
    "WorkerAnchors",
    "check_facilities",
    "require_development",
    "warn_development",
    "worker_anchors",
]

logger = logging.getLogger(__name__)

DEV_HINT: Final = "or run with --dev (TUYEN_DEV=1) for development"

_DEV_REGISTRY: Final = (
    "the development key registry (its seed is published: anyone can sign as any health worker)"
)
_DEV_KEY: Final = (
    "the development pseudonym key (published: anyone can reverse the national pseudonyms)"
)


@dataclass(frozen=True, slots=True)
class WorkerAnchors:
    """The stream worker's trust anchors, checked. ``key_registry_path`` ``None``: the
    development registry (development mode only)."""

    development: bool
    key_registry_path: str | None
    pseudonym_key: SecretStr
    #: the facility registry (``TUYEN_FACILITIES``), checked; ``None``: stations only
    facilities_path: str | None = None


def warn_development(job: str, uses: list[str]) -> None:
    """The loud WARNING every development-mode process logs at start."""
    what = "; ".join(uses) if uses else "no development-only anchor, but development rules"
    logger.warning(
        "DEVELOPMENT MODE (--dev / TUYEN_DEV=1): %s runs with %s. Never use it with real "
        "health records.",
        job,
        what,
    )


def require_development(s: Settings, job: str, why: str, *, pseudonym_key: bool = False) -> None:
    """Refuse ``job`` outside development mode (it uses development keys: ``why``); in it,
    warn that ``job`` uses the development registry (and the pseudonym key, when it runs
    stream workers)."""
    if not s.dev:
        raise ConfigError(f"{job} {why}: run it with --dev (or TUYEN_DEV=1), for development only")
    warn_development(job, [_DEV_REGISTRY, *([_DEV_KEY] if pseudonym_key else [])])


def worker_anchors(s: Settings, job: str = "the stream worker") -> WorkerAnchors:
    """The key registry and pseudonym key ``job`` runs with, or :class:`ConfigError` naming
    the setting that is missing or refused."""
    uses: list[str] = []
    registry = s.key_registry
    if registry:
        check_key_registry(registry, development=s.dev)
    elif s.dev:
        uses.append(_DEV_REGISTRY)
    else:
        raise MissingTrustAnchor(
            f"TUYEN_KEY_REGISTRY is not set: {job} needs the signers' public keys (a key "
            f"registry JSON file); set it, {DEV_HINT}"
        )
    if s.pseudonym_key is not None:
        key = s.pseudonym_key
        try:
            decode_pseudonym_key(key.get_secret_value(), allow_development=s.dev)
        except WeakPseudonymKey as exc:
            raise ConfigError(f"TUYEN_PSEUDONYM_KEY is refused: {exc}") from None
        if key.get_secret_value().strip() == DEV_PSEUDONYM_KEY:
            uses.append(_DEV_KEY)
    elif s.dev:
        key = SecretStr(DEV_PSEUDONYM_KEY)
        uses.append(_DEV_KEY)
    else:
        raise MissingTrustAnchor(
            f"TUYEN_PSEUDONYM_KEY is not set: {job} needs the key of the national pseudonyms "
            "(base64 of at least 32 random bytes: `openssl rand -base64 32`; or "
            f"TUYEN_PSEUDONYM_KEY_FILE); set it, {DEV_HINT}"
        )
    if s.facilities:
        check_facilities(s.facilities)
    if s.dev:
        warn_development(job, uses)
    return WorkerAnchors(
        development=s.dev,
        key_registry_path=registry,
        pseudonym_key=key,
        facilities_path=s.facilities,
    )


def check_facilities(path: str) -> None:
    """Refuse a facility registry (``TUYEN_FACILITIES``) that cannot be read or does not fit
    the hierarchy: the worker would otherwise fail in every check process, or dead-letter a
    registered hospital's events as ``unknown_station``."""
    import csv

    from schemas.facilities import load_hierarchy
    from schemas.hierarchy import InvalidReferenceData

    var = f"TUYEN_FACILITIES={path}"
    try:
        load_hierarchy(path)
    except OSError as exc:
        raise ConfigError(f"{var} cannot be read: {exc.strerror}") from None
    except (InvalidReferenceData, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"{var} is not a facility registry: {exc}") from None


def check_key_registry(path: str, *, development: bool) -> None:
    """Refuse a registry file that cannot be read, holds no key, or (outside development
    mode) holds a development key: a key derived from the published seed."""
    var = f"TUYEN_KEY_REGISTRY={path}"
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{var} cannot be read: {exc.strerror}") from None
    try:
        registry = StaticKeyRegistry.from_json(raw)
    except ContractViolation as exc:
        raise ConfigError(f"{var} is not a key registry: {exc}") from None
    if len(registry) == 0:
        raise ConfigError(f"{var} holds no keys: every event would be rejected")
    if development:
        return
    forged = development_signers(orjson.loads(raw))
    if forged:
        shown = ", ".join(forged[:5]) + (f" and {len(forged) - 5} more" if len(forged) > 5 else "")
        raise ConfigError(
            f"{var} holds development keys (derived from the published seed) for {shown}: "
            f"anyone can sign as them; register the health workers' own keys, {DEV_HINT}"
        )


def development_signers(doc: Any) -> list[str]:
    """Signers whose registered public key is their development key (any JSON layout that
    has objects with ``signer`` and base64 ``public_key``)."""
    import base64
    import binascii

    dev = DevKeyRegistry(DEV_KEY_SEED, signers_per_station=9999)
    found: list[str] = []
    for entry in _objects(doc):
        signer, public = entry.get("signer"), entry.get("public_key")
        if not isinstance(signer, str) or not isinstance(public, str):
            continue
        derived = dev.lookup(signer)
        if derived is None:
            continue
        try:
            if base64.b64decode(public, validate=True) == derived.public_key:
                found.append(signer)
        except (binascii.Error, ValueError):
            continue
    return found


def _objects(doc: Any) -> Iterator[dict[str, Any]]:
    if isinstance(doc, dict):
        yield doc
        for value in doc.values():
            yield from _objects(value)
    elif isinstance(doc, list):
        for value in doc:
            yield from _objects(value)
