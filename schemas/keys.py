"""The key registry: health workers' Ed25519 public keys, the station each belongs to, when
each key may sign, and which keys are revoked.

Implementations of :class:`KeyRegistry`:

- :class:`StaticKeyRegistry`: reference data, loadable from a JSON file (schema
  ``schemas/jsonschema/key_registry/v1.json``, model :class:`KeyRegistryFileV1`)::

    {"keys": [{"signer", "station", "public_key" (base64), "key_id"?, "valid_from"?,
               "valid_to"?, "roles"?}],
     "revocations": [{"signer", "key_id"?, "revoked_at", "reason"?}]}

  A signer may have several keys (rotation: the new key is added before the old one ends);
  then each has a ``key_id`` and events name theirs in the value's ``key_id``. A revocation
  without ``key_id`` revokes every key of the signer. Refused at load: a repeated
  ``(signer, key_id)``, a signer with several keys and no ``key_id`` on one, a signer's keys
  at different stations, a public key registered twice, a revocation naming no registered
  key, unknown fields, times without an offset.
- :class:`schemas.keyreload.ReloadingKeyRegistry`: a registry file watched for changes
  (checked at most every ``interval_s`` on use, so in every process that uses it — the
  stream worker's check processes included); a new file is swapped in whole, a file that
  fails to load is logged and the previous registry stays.
- :class:`DevKeyRegistry`: deterministic keys for development, tests and the simulator.
  Signer ids are ``hw-<station>-<n>`` (``n`` in 1..``signers_per_station``); the private
  key seed is ``SHA-256(seed || signer id)``. Keys are derived lazily and cached, so the
  simulator and the validator agree without shipping tens of thousands of keys.
  ``hw-<station>-1`` is the station head. Never use it in production: anyone who knows the
  seed can sign.

Roles: a key may carry roles; ``station_head`` (:data:`STATION_HEAD`) is the one a station's
monthly report submission needs: the key that verified the submission must hold it
(:func:`require_role`). Each key of a rotating signer names its own roles.

A key signs an event made (``ce_time``) at or after its ``valid_from`` and received by the
broker before its ``valid_to`` and before its ``revoked_at``: the end of a key — planned
(``valid_to``) or not (a revocation) — is judged at the time the broker received the event,
which the sender cannot choose, so backdating never extends a key's life
(``schemas.signing.verify``). Give a rotated-out key a ``valid_to`` late enough for stations'
offline outboxes to drain.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Final, Literal, Protocol

import orjson
from nacl.signing import SigningKey
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.keyring import build_keys, parse_registry_file
from schemas.reasons import ContractViolation, Reason

__all__ = [
    "DEV_KEY_SEED",
    "KEY_ID_PATTERN",
    "ROLES",
    "STATION_HEAD",
    "DevKeyRegistry",
    "KeyRegistry",
    "KeyRegistryFileV1",
    "Revocation",
    "SignerKey",
    "StaticKeyRegistry",
    "dev_signer",
    "dev_signing_key",
    "development_signers",
    "registry_problem",
    "require_role",
]


_DEV_SIGNER_RE = re.compile(r"hw-([0-9]{5})-([1-9][0-9]{0,3})")
SIGNER_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
KEY_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"

#: Seed of the development key registry shared by the simulator and the validator.
DEV_KEY_SEED: Final = b"tuyen-dev-key-seed-v1"
#: The role that signs a station's monthly report submission (the trạm trưởng).
STATION_HEAD: Final = "station_head"
#: Every role a key may carry.
ROLES: Final = (STATION_HEAD,)
Role = Literal["station_head"]


@dataclass(frozen=True, slots=True)
class SignerKey:
    """One public key of a health worker."""

    signer: str
    station: str
    public_key: bytes  # 32 bytes, raw Ed25519
    valid_from: datetime | None = None
    valid_to: datetime | None = None  # exclusive
    key_id: str | None = None
    revoked_at: datetime | None = None  # from the registry's revocation list
    roles: frozenset[str] = frozenset()

    @property
    def owner(self) -> str:
        return self.signer

    def revoked(self, at: datetime) -> SignerKey:
        """This key revoked from ``at`` on (the earlier revocation stands)."""
        return replace(self, revoked_at=min(at, self.revoked_at or at))


@dataclass(frozen=True, slots=True)
class Revocation:
    """A key (or with ``key_id`` None every key of the signer) revoked from ``revoked_at``."""

    signer: str
    revoked_at: datetime
    key_id: str | None = None
    reason: str | None = None


class KeyRegistry(Protocol):
    """Where verifiers find public keys."""

    def keys_of(self, signer: str) -> tuple[SignerKey, ...]:
        """Every key of ``signer`` (revoked ones included); empty when not registered."""
        ...


# ---- the file format -------------------------------------------------------------------------


class KeyEntryV1(BaseModel):
    """One public key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    signer: str = Field(pattern=SIGNER_PATTERN, description="health worker id")
    station: str = Field(pattern=r"^[0-9]{5}$", description="the worker's station (GSO code)")
    public_key: str = Field(
        pattern=r"^[A-Za-z0-9+/]{43}=$", description="base64 of the 32-byte Ed25519 key"
    )
    key_id: str | None = Field(
        default=None,
        pattern=KEY_ID_PATTERN,
        description="needed when the signer has several keys; events name it in key_id",
    )
    valid_from: AwareDatetime | None = Field(
        default=None, description="the earliest ce_time of an event it signs"
    )
    valid_to: AwareDatetime | None = Field(
        default=None, description="events the broker receives from then on are refused"
    )
    roles: list[Role] | None = Field(
        default=None,
        description="what the key may sign besides records: station_head (the station's "
        "monthly report submission)",
    )


class RevocationV1(BaseModel):
    """A revoked key: events the broker received from ``revoked_at`` on are rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    signer: str = Field(pattern=SIGNER_PATTERN)
    key_id: str | None = Field(
        default=None, pattern=KEY_ID_PATTERN, description="absent: every key of the signer"
    )
    revoked_at: AwareDatetime = Field(description="compared with the broker's receive time")
    reason: str | None = Field(default=None, max_length=200)


class KeyRegistryFileV1(BaseModel):
    """The key registry file (``TUYEN_KEY_REGISTRY``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="key_registry/v1")

    keys: list[KeyEntryV1]
    revocations: list[RevocationV1] = Field(default_factory=list)


def _bad(message: str) -> ContractViolation:
    return ContractViolation(Reason.SCHEMA_VIOLATION, f"bad key registry: {message}")


def _station_conflict(other: SignerKey, key: SignerKey) -> str | None:
    if other.station != key.station:
        return f"{key.signer} has keys at stations {other.station} and {key.station}"
    return None


def _build(doc: KeyRegistryFileV1) -> dict[str, tuple[SignerKey, ...]]:
    """Keys by signer, revocations applied; the load-time checks of the module docstring."""
    keys = (
        SignerKey(
            e.signer,
            e.station,
            base64.b64decode(e.public_key, validate=True),
            e.valid_from,
            e.valid_to,
            e.key_id,
            roles=frozenset(e.roles or ()),
        )
        for e in doc.keys
    )
    revocations = ((r.signer, r.key_id, r.revoked_at) for r in doc.revocations)
    return build_keys(keys, revocations, bad=_bad, conflict=_station_conflict)


class StaticKeyRegistry:
    """A fixed set of keys (reference data)."""

    def __init__(self, keys: Sequence[SignerKey], revocations: Sequence[Revocation] = ()) -> None:
        doc = KeyRegistryFileV1(
            keys=[
                KeyEntryV1(
                    signer=k.signer,
                    station=k.station,
                    public_key=base64.b64encode(k.public_key).decode(),
                    key_id=k.key_id,
                    valid_from=k.valid_from,
                    valid_to=k.valid_to,
                    roles=sorted(k.roles) or None,
                )
                for k in keys
            ],
            revocations=[
                RevocationV1(
                    signer=r.signer, key_id=r.key_id, revoked_at=r.revoked_at, reason=r.reason
                )
                for r in revocations
            ]
            + [
                RevocationV1(signer=k.signer, key_id=k.key_id, revoked_at=k.revoked_at)
                for k in keys
                if k.revoked_at is not None
            ],
        )
        self._doc = doc
        self._keys = _build(doc)

    def keys_of(self, signer: str) -> tuple[SignerKey, ...]:
        return self._keys.get(signer, ())

    def lookup(self, signer: str) -> SignerKey | None:
        """The signer's first key, or ``None`` when the signer is not registered."""
        keys = self._keys.get(signer)
        return keys[0] if keys else None

    def __len__(self) -> int:
        return sum(len(k) for k in self._keys.values())

    def entries(self) -> Iterator[SignerKey]:
        """Every registered key (revocations applied), signer by signer."""
        for keys in self._keys.values():
            yield from keys

    @classmethod
    def from_json(cls, raw: bytes | str) -> StaticKeyRegistry:
        """Parse the JSON document described in the module docstring (``ContractViolation``
        with a message naming the problem when it is not one)."""
        doc = parse_registry_file(KeyRegistryFileV1, raw, _bad)
        out = cls.__new__(cls)
        out._doc = doc
        out._keys = _build(doc)
        return out

    @classmethod
    def load(cls, path: Path) -> StaticKeyRegistry:
        return cls.from_json(path.read_bytes())

    def to_json(self) -> bytes:
        return orjson.dumps(
            self._doc.model_dump(mode="json", exclude_none=True), option=orjson.OPT_INDENT_2
        )


def dev_signing_key(seed: bytes, signer: str) -> SigningKey:
    """The development private key of ``signer``: Ed25519 seed = SHA-256(seed || signer)."""
    return SigningKey(hashlib.sha256(seed + signer.encode()).digest())


def dev_signer(station: str, n: int = 1) -> str:
    """The development signer id ``hw-<station>-<n>``."""
    return f"hw-{station}-{n}"


def development_signers(registry: StaticKeyRegistry, seed: bytes = DEV_KEY_SEED) -> list[str]:
    """Signers of ``registry`` whose key is their development key, derived from ``seed`` (the
    published development seed by default): anyone who knows it can sign as them. Only
    development signer ids (``hw-<station>-<n>``) are derived, so real registries cost
    nothing."""
    dev = DevKeyRegistry(seed, signers_per_station=9999)
    found: list[str] = []
    for key in registry.entries():
        derived = dev.lookup(key.signer)
        if derived is not None and derived.public_key == key.public_key:
            found.append(key.signer)
    return found


def registry_problem(registry: StaticKeyRegistry, *, development: bool) -> str | None:
    """Why a verifier must not run with ``registry`` (fail closed), or ``None``: it holds no
    key (every event would be rejected) or, outside ``development``, a development key
    (:func:`development_signers`). Phrased to follow the registry's name."""
    if len(registry) == 0:
        return "holds no keys: every event would be rejected"
    if development:
        return None
    forged = development_signers(registry)
    if not forged:
        return None
    shown = ", ".join(forged[:5]) + (f" and {len(forged) - 5} more" if len(forged) > 5 else "")
    return (
        f"holds development keys (derived from the published seed) for {shown}: "
        "anyone can sign as them"
    )


class DevKeyRegistry:
    """Deterministic development keys for every station (see the module docstring)."""

    def __init__(self, seed: bytes, *, signers_per_station: int = 8) -> None:
        self.seed = seed
        self.signers_per_station = signers_per_station
        self._lookup = lru_cache(maxsize=65536)(self._derive)

    def _derive(self, signer: str) -> SignerKey | None:
        m = _DEV_SIGNER_RE.fullmatch(signer)
        if m is None or int(m.group(2)) > self.signers_per_station:
            return None
        pub = bytes(dev_signing_key(self.seed, signer).verify_key)
        roles = frozenset({STATION_HEAD}) if m.group(2) == "1" else frozenset()
        return SignerKey(signer=signer, station=m.group(1), public_key=pub, roles=roles)

    def lookup(self, signer: str) -> SignerKey | None:
        return self._lookup(signer)

    def keys_of(self, signer: str) -> tuple[SignerKey, ...]:
        key = self._lookup(signer)
        return () if key is None else (key,)

    def signing_key(self, signer: str) -> SigningKey:
        """The private key of a registered development signer."""
        if self.lookup(signer) is None:
            raise ContractViolation(
                Reason.SIGNER_NOT_REGISTERED, f"{signer} is not a development signer"
            )
        return dev_signing_key(self.seed, signer)


def require_role(key: SignerKey, role: str) -> None:
    """Raise ``signer_not_authorised`` unless ``key`` (the key that verified the signature,
    :func:`schemas.signing.verify`) holds ``role``."""
    if role not in key.roles:
        raise ContractViolation(
            Reason.SIGNER_NOT_AUTHORISED,
            f"{key.signer}'s key {key.key_id or '(only)'} does not hold the role {role}",
            field="signer",
        )
