"""Trust anchors: what a process that verifies signatures or pseudonymises must be given.

Fail closed. Outside development mode the stream worker refuses to start without

- ``TUYEN_KEY_REGISTRY``: the signers' public keys (a key registry JSON file,
  ``key_registry/v1``) that holds keys, none of them a development key (derived from the
  published seed); the worker re-reads it while running and refuses a new file alike;
- ``TUYEN_PSEUDONYM_KEY`` (or ``TUYEN_PSEUDONYM_KEY_FILE``): base64 of ≥ 32 random bytes, not
  a published value (:mod:`streams.pseudonym_key`).

The writers of record rows (``tuyen sink`` district, province, dlq, signoff; ``tuyen compact``)
refuse to start without

- ``TUYEN_ERASURE_KEY`` (or ``_FILE``): the erasure register's key, derived once from the
  pseudonym key (``tuyen keys erasure-key``), so they apply a purge's register without
  holding the pseudonym key; ``tuyen purge`` refuses one that does not match its pseudonym key.

Whatever checks monthly sign-off decisions (the ``signoff`` sink, ``tuyen report
approve|send-back|lock``, the portal's approvals) refuses to start without

- ``TUYEN_APPROVER_KEYS``: the approvers' public keys (a ``schemas.signoff`` registry JSON
  file) that holds keys, none of them a development approver's.

``tuyen portal serve`` refuses to start without

- ``TUYEN_PORTAL_SESSION_KEY``: the key that signs its session cookies;
- ``TUYEN_ACCESS_LOG_KEY``: the HMAC key of the access log's hash chain;

each base64 of ≥ 32 random bytes, checked as the pseudonym key is (``*_FILE`` for both), and
not the same key twice.

Development mode (``tuyen --dev``, ``TUYEN_DEV=1``) allows the development registry and key
when none is given, the development approvers (``sup-<unit>-<n>``) besides any approver
file, the erasure key derived from the pseudonym key the process has, and the portal keys
generated once into the portal's state dir, and says so with a WARNING naming what is
development-only. Jobs that only make sense with development keys
(``tuyen simulate``, ``tuyen demo``, ``publish --dev-keys``) require development mode."""

from __future__ import annotations

import base64
import hmac
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import orjson
from pydantic import SecretStr

from deploy.exceptions import ConfigError, MissingTrustAnchor
from deploy.settings import Settings, env_name
from schemas import ContractViolation, StaticKeyRegistry
from schemas.keys import development_signers, registry_problem
from schemas.signoff import (
    ApproverRegistry,
    StaticApproverRegistry,
    development_approvers,
    load_approver_registry,
)
from streams.pseudonym_key import DEV_PSEUDONYM_KEY, WeakPseudonymKey, decode_pseudonym_key
from streams.pseudonymise import Pseudonymiser

__all__ = [
    "DEV_HINT",
    "ERASURE_KEY_DOMAIN",
    "PortalAnchors",
    "WorkerAnchors",
    "access_log_key",
    "approver_registry",
    "check_erasure_key",
    "check_facilities",
    "derive_erasure_key",
    "erasure_key",
    "erasure_key_text",
    "portal_anchors",
    "pseudonym_key",
    "require_development",
    "warn_development",
    "worker_anchors",
]

logger = logging.getLogger(__name__)

DEV_HINT: Final = "or run with --dev (TUYEN_DEV=1) for development"

_DEV_REGISTRY: Final = (
    "the development key registry (its seed is published: anyone can sign as any health worker)"
)
_DEV_APPROVERS: Final = (
    "the development approvers' keys (their seed is published: anyone can approve as them)"
)
_DEV_KEY: Final = (
    "the development pseudonym key (published: anyone can reverse the national pseudonyms)"
)

#: the domain of the erasure register's key, derived from the pseudonym key (sinks.erasure)
ERASURE_KEY_DOMAIN: Final = "erasure-key"
_ERASURE_HINT: Final = (
    "derive it once from the pseudonym key: `tuyen keys erasure-key` where TUYEN_PSEUDONYM_KEY "
    "is set (or TUYEN_ERASURE_KEY_FILE)"
)


def derive_erasure_key(pseudonymiser: Pseudonymiser) -> bytes:
    """The erasure register's key of a pseudonym key: HMAC-SHA256(pseudonym key,
    ``erasure-key:register``), the derivation every register was written with. It makes no
    pseudonym: the writers hold it, never the pseudonym key (``TUYEN_ERASURE_KEY`` is its
    base64)."""
    return pseudonymiser.digest("register", ERASURE_KEY_DOMAIN)


def erasure_key_text(pseudonym_key: str, *, development: bool = False) -> str:
    """``TUYEN_ERASURE_KEY`` of a pseudonym key's text (checked: :class:`WeakPseudonymKey`;
    ``development`` admits the development key): base64 of :func:`derive_erasure_key`."""
    p = Pseudonymiser(decode_pseudonym_key(pseudonym_key, allow_development=development))
    return base64.b64encode(derive_erasure_key(p)).decode()


#: The erasure key of the development pseudonym key (published too: development mode only).
_DEV_ERASURE_KEY: Final = base64.b64decode(erasure_key_text(DEV_PSEUDONYM_KEY, development=True))
_DEV_ERASURE: Final = (
    "the erasure key derived from the development pseudonym key (published: anyone can "
    "compute the erasure register's hashes)"
)

_ERASURE_FROM_PSEUDONYM_KEY: Final = (
    "the erasure key derived from TUYEN_PSEUDONYM_KEY (set TUYEN_ERASURE_KEY: the writers "
    "need nothing more)"
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


@dataclass(frozen=True, slots=True)
class PortalAnchors:
    """The portal's keys, checked (in development mode possibly generated)."""

    development: bool
    session_key: SecretStr
    access_log_key: SecretStr


#: The portal's keys: Settings field → what it is for (in refusals).
_PORTAL_KEYS: Final = {
    "portal_session_key": "the key that signs its session cookies",
    "access_log_key": "the HMAC key of its access log's hash chain",
}
#: Development mode: the portal keys generated once into its state dir (0600).
PORTAL_DEV_KEYS: Final = "dev-keys.json"


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
    key = _pseudonym_key(s, job, uses)
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


def pseudonym_key(s: Settings, job: str) -> SecretStr:
    """The pseudonym key ``job`` runs with (the worker's: ``tuyen national release`` and
    ``tuyen purge`` compute the same pseudonyms), or :class:`ConfigError` naming the setting."""
    uses: list[str] = []
    key = _pseudonym_key(s, job, uses)
    if s.dev:
        warn_development(job, uses)
    return key


def _pseudonym_key(s: Settings, job: str, uses: list[str]) -> SecretStr:
    if s.pseudonym_key is not None:
        key = s.pseudonym_key
        try:
            decode_pseudonym_key(key.get_secret_value(), allow_development=s.dev)
        except WeakPseudonymKey as exc:
            raise ConfigError(f"TUYEN_PSEUDONYM_KEY is refused: {exc}") from None
        if key.get_secret_value().strip() == DEV_PSEUDONYM_KEY:
            uses.append(_DEV_KEY)
        return key
    if s.dev:
        uses.append(_DEV_KEY)
        return SecretStr(DEV_PSEUDONYM_KEY)
    raise MissingTrustAnchor(
        f"TUYEN_PSEUDONYM_KEY is not set: {job} needs the key of the national pseudonyms "
        "(base64 of at least 32 random bytes: `openssl rand -base64 32`; or "
        f"TUYEN_PSEUDONYM_KEY_FILE); set it, {DEV_HINT}"
    )


def _configured_erasure_key(s: Settings) -> bytes | None:
    """``TUYEN_ERASURE_KEY`` decoded when set: refused when malformed or weak (the pseudonym
    key's rules) or, outside development mode, derived from the development pseudonym key."""
    if s.erasure_key is None:
        return None
    try:
        key = decode_pseudonym_key(s.erasure_key.get_secret_value())
    except WeakPseudonymKey as exc:
        raise ConfigError(f"TUYEN_ERASURE_KEY is refused: {exc}; {_ERASURE_HINT}") from None
    if key == _DEV_ERASURE_KEY and not s.dev:
        raise ConfigError(
            "TUYEN_ERASURE_KEY is refused: it is derived from the development pseudonym key "
            f"(published); {_ERASURE_HINT}"
        )
    return key


def erasure_key(s: Settings, job: str) -> bytes:
    """The erasure register's key ``job`` writes with (``TUYEN_ERASURE_KEY``, checked), or
    :class:`ConfigError` naming it. ``job`` never reads the pseudonym key outside development
    mode; in it, an unset erasure key is derived from the pseudonym key (WARNING)."""
    uses: list[str] = []
    key = _configured_erasure_key(s)
    if key is None and s.dev:
        pseudonyms = _pseudonym_key(s, job, []).get_secret_value()
        key = base64.b64decode(erasure_key_text(pseudonyms, development=True))
        uses.append(_DEV_ERASURE if key == _DEV_ERASURE_KEY else _ERASURE_FROM_PSEUDONYM_KEY)
    elif key is None:
        raise MissingTrustAnchor(
            f"TUYEN_ERASURE_KEY is not set: {job} applies the erasure register of the roots it "
            f"writes (a purge's) and needs its key; {_ERASURE_HINT}; set it, {DEV_HINT}"
        )
    elif key == _DEV_ERASURE_KEY:
        uses.append(_DEV_ERASURE)
    if s.dev:
        warn_development(job, uses)
    return key


def check_erasure_key(s: Settings, derived: bytes) -> None:
    """Refuse a ``TUYEN_ERASURE_KEY`` other than ``derived`` (the one of this process's
    pseudonym key): the registers written would be unreadable to the writers given it."""
    key = _configured_erasure_key(s)
    if key is not None and not hmac.compare_digest(key, derived):
        raise ConfigError(
            "TUYEN_ERASURE_KEY does not match TUYEN_PSEUDONYM_KEY: it is not the key `tuyen "
            "keys erasure-key` derives from it, so the sinks and compaction given it could "
            "not apply the registers written now; derive it again and give them that one"
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


def approver_registry(s: Settings, job: str) -> ApproverRegistry:
    """The approvers' keys ``job`` checks sign-off decisions against: ``TUYEN_APPROVER_KEYS``
    (checked by :func:`check_approver_keys`), with the development approvers in development
    mode (alone when it is unset); :class:`MissingTrustAnchor` when unset outside it."""
    path = s.approver_keys
    if path:
        check_approver_keys(path, development=s.dev)
    elif not s.dev:
        raise MissingTrustAnchor(
            f"TUYEN_APPROVER_KEYS is not set: {job} needs the approvers' public keys (a "
            f"sign-off registry JSON file, docs/reports.md); set it, {DEV_HINT}"
        )
    if s.dev:
        warn_development(job, [_DEV_APPROVERS])
    return load_approver_registry(path, development=s.dev)


def check_approver_keys(path: str, *, development: bool) -> StaticApproverRegistry:
    """Refuse an approvers' registry that cannot be read, holds no key, or (outside
    development mode) holds a development approver's key."""
    var = f"TUYEN_APPROVER_KEYS={path}"
    if not Path(path).is_file():
        raise ConfigError(f"{var} cannot be read: no such file")
    try:
        registry = StaticApproverRegistry.load(Path(path))
    except ContractViolation as exc:
        raise ConfigError(f"{var} is not an approvers' registry: {exc.message}") from None
    if len(registry) == 0:
        raise ConfigError(f"{var} holds no keys: every sign-off decision would be refused")
    forged = [] if development else development_approvers(registry)
    if forged:
        raise ConfigError(
            f"{var} holds development keys (derived from the published seed) for "
            f"{', '.join(forged[:5])}: anyone can approve as them; {DEV_HINT}"
        )
    return registry


def _dev_keys_in(path: str, signers: list[str]) -> str:
    shown = ", ".join(signers[:3]) + (f" and {len(signers) - 3} more" if len(signers) > 3 else "")
    return (
        f"development keys in the key registry {path} (for {shown}: derived from the "
        "published seed, anyone can sign as them)"
    )


def _checked_key(s: Settings, field: str) -> SecretStr | None:
    """The secret ``field`` of ``s`` when set, refused when weak (the pseudonym key's rules)."""
    value: SecretStr | None = getattr(s, field)
    if value is None:
        return None
    try:
        decode_pseudonym_key(value.get_secret_value())
    except WeakPseudonymKey as exc:
        raise ConfigError(
            f"{env_name(field)} is refused: {exc} (base64 of at least 32 random bytes)"
        ) from None
    return value


def _portal_dev_keys(state_dir: Path, *, create: bool) -> dict[str, str]:
    """Development mode: the portal keys generated once into ``state_dir`` (0600); ``{}``
    when there are none and ``create`` is false."""
    path = state_dir / PORTAL_DEV_KEYS
    if not path.exists():
        if not create:
            return {}
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        keys = {field: secrets.token_urlsafe(48) for field in _PORTAL_KEYS}
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made them first: use theirs
            pass
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(orjson.dumps(keys))
    try:
        data = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError:
        data = None
    keys = {k: v for k, v in (data if isinstance(data, dict) else {}).items() if isinstance(v, str)}
    if not set(_PORTAL_KEYS) <= set(keys):
        raise ConfigError(
            f"{path} does not hold the portal's development keys (an older or broken file): "
            "delete it and start again to generate new ones"
        )
    return {k: keys[k] for k in _PORTAL_KEYS}


def portal_anchors(s: Settings, state_dir: Path, job: str = "tuyen portal serve") -> PortalAnchors:
    """The portal's session and access-log keys, or :class:`ConfigError` naming the setting
    missing (outside development mode) or refused (weak, or the same key twice). In
    development mode a missing key is the one generated into ``state_dir`` (WARNING)."""
    keys = {field: _checked_key(s, field) for field in _PORTAL_KEYS}
    missing = [field for field, value in keys.items() if value is None]
    if missing and not s.dev:
        raise MissingTrustAnchor(
            "; ".join(
                f"{env_name(f)} is not set: {job} needs {_PORTAL_KEYS[f]} (base64 of at least "
                f"32 random bytes: `openssl rand -base64 32`; or {env_name(f)}_FILE)"
                for f in missing
            )
            + f"; set {'them' if len(missing) > 1 else 'it'}, {DEV_HINT}"
        )
    uses: list[str] = []
    if missing:
        generated = _portal_dev_keys(state_dir, create=True)
        for field in missing:
            keys[field] = SecretStr(generated[field])
        shown = " and ".join(env_name(f) for f in missing)
        uses.append(f"{shown} generated into {state_dir / PORTAL_DEV_KEYS} (development only)")
    session, audit = keys["portal_session_key"], keys["access_log_key"]
    assert session is not None and audit is not None
    if session.get_secret_value() == audit.get_secret_value():
        raise ConfigError(
            "TUYEN_PORTAL_SESSION_KEY and TUYEN_ACCESS_LOG_KEY are the same key: give each its "
            "own (`openssl rand -base64 32` twice)"
        )
    if s.dev:
        warn_development(job, uses)
    return PortalAnchors(development=s.dev, session_key=session, access_log_key=audit)


def access_log_key(s: Settings, portal_state_dir: Path | None = None) -> bytes | None:
    """The access log's HMAC key: ``TUYEN_ACCESS_LOG_KEY`` (refused when weak); in development
    mode without it, the key the portal generated into ``portal_state_dir`` if there is one;
    else ``None`` (an unkeyed SHA-256 chain)."""
    key = _checked_key(s, "access_log_key")
    if key is not None:
        return key.get_secret_value().encode()
    if s.dev and portal_state_dir is not None:
        generated = _portal_dev_keys(portal_state_dir, create=False).get("access_log_key")
        return generated.encode() if generated else None
    return None
