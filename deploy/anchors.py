"""Trust anchors: what a process that verifies signatures or pseudonymises must be given.

Fail closed. Outside development mode the stream worker refuses to start without

- ``TUYEN_KEY_REGISTRY``: the signers' public keys (a key registry JSON file,
  ``key_registry/v1``) that holds keys, none of them a development key (derived from the
  published seed); the worker re-reads it while running and refuses a new file alike;
- ``TUYEN_PSEUDONYM_KEY`` (or ``TUYEN_PSEUDONYM_KEY_FILE``): base64 of ≥ 32 random bytes, not
  a published value (:mod:`streams.pseudonym_key`).

Development mode (``tuyen --dev``, ``TUYEN_DEV=1``) allows the development registry and key
when none is given, and says so with a WARNING naming what is development-only. Jobs that only
make sense with development keys (``tuyen simulate``, ``tuyen demo``, ``publish --dev-keys``)
require development mode.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from pydantic import SecretStr

from deploy.exceptions import ConfigError, MissingTrustAnchor
from deploy.settings import Settings
from schemas import ContractViolation, StaticKeyRegistry
from schemas.keys import development_signers, registry_problem
from streams.pseudonym_key import DEV_PSEUDONYM_KEY, WeakPseudonymKey, decode_pseudonym_key

__all__ = [
    "DEV_HINT",
    "WorkerAnchors",
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
        forged = check_key_registry(registry, development=s.dev)
        if forged:  # development mode only (refused outside it)
            uses.append(_dev_keys_in(registry, forged))
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
    if s.dev:
        warn_development(job, uses)
    return WorkerAnchors(development=s.dev, key_registry_path=registry, pseudonym_key=key)


def check_key_registry(path: str, *, development: bool) -> list[str]:
    """Refuse a registry file that cannot be read or parsed (format ``key_registry/v1``: keys
    with ``key_id``, ``revocations``), holds no key, or (outside development mode) holds a
    development key: a key derived from the published seed (``schemas.keys.registry_problem``,
    which the worker's reloading registry applies to every new file too). Returns the
    signers with a development key (in development mode, where they are allowed)."""
    var = f"TUYEN_KEY_REGISTRY={path}"
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{var} cannot be read: {exc.strerror}") from None
    try:
        registry = StaticKeyRegistry.from_json(raw)
    except ContractViolation as exc:
        raise ConfigError(f"{var} is not a key registry: {exc}") from None
    problem = registry_problem(registry, development=development)
    if problem is None:
        return development_signers(registry) if development else []
    hint = "" if development else f", {DEV_HINT}"
    raise ConfigError(f"{var} {problem}; register the health workers' own keys{hint}")


def _dev_keys_in(path: str, signers: list[str]) -> str:
    shown = ", ".join(signers[:3]) + (f" and {len(signers) - 3} more" if len(signers) > 3 else "")
    return (
        f"development keys in the key registry {path} (for {shown}: derived from the "
        "published seed, anyone can sign as them)"
    )
