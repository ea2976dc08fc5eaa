"""The approvers' registry: the public keys of the people who approve, send back and lock
monthly reports (``schemas.signoff``), the unit each decides for and what each may do.

The same rules as the health workers' key registry (``schemas.keys``; what both share is
``schemas.keyring``), for supervisors:

- :class:`StaticApproverRegistry`: reference data, the JSON file ``TUYEN_APPROVER_KEYS``
  (schema ``schemas/jsonschema/approver_registry/v1.json``, model
  :class:`ApproverRegistryFileV1`)::

    {"approvers": [{"approver", "unit", "roles": ["approve", "lock"], "public_key" (base64),
                    "key_id"?, "valid_from"?, "valid_to"?}],
     "revocations": [{"approver", "key_id"?, "revoked_at", "reason"?}]}

  An approver may have several keys (rotation); each then has a ``key_id``, and a decision
  names the key that signed it in its ``key_id``. A revocation without ``key_id`` revokes
  every key of the approver. A key signs decisions signed (``time``) from ``valid_from`` on
  and received by the broker before ``valid_to`` and before its revocation (both ends judged
  at the broker's receive time, which the signer cannot choose). Refused at load: a repeated
  ``(approver, key_id)``, an approver with several keys and no ``key_id`` on one, an
  approver's keys for different units or roles, a public key registered twice, a revocation
  naming no registered key, unknown fields and roles, times without an offset.
- :class:`DevApproverRegistry` (development: ``sup-<unit>-<n>``, key ``SHA-256(seed ‖
  "approver:" ‖ id)``; a province's supervisors may approve and lock, others approve). Never
  in production.
- :func:`load_approver_registry`: the file, with the development approvers besides it in
  development mode (:class:`ChainedApproverRegistry`); a file is required outside it.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Final, Literal, Protocol

from nacl.signing import SigningKey
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.keyring import build_keys, parse_registry_file
from schemas.keys import DEV_KEY_SEED, KEY_ID_PATTERN, SIGNER_PATTERN
from schemas.reasons import ContractViolation, Reason

__all__ = [
    "APPROVE_ROLE",
    "LOCK_ROLE",
    "ApproverKey",
    "ApproverRegistry",
    "ApproverRegistryFileV1",
    "ChainedApproverRegistry",
    "DevApproverRegistry",
    "StaticApproverRegistry",
    "dev_approver",
    "development_approvers",
    "load_approver_registry",
]

APPROVE_ROLE: Final = "approve"
LOCK_ROLE: Final = "lock"
_DEV_RE = re.compile(r"sup-([0-9A-Z]{2,6})-([1-9][0-9]{0,2})")


@dataclass(frozen=True, slots=True)
class ApproverKey:
    """One public key of an approver."""

    approver: str
    unit: str
    public_key: bytes
    roles: frozenset[str]
    key_id: str | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None  # exclusive, judged at the broker's receive time
    revoked_at: datetime | None = None

    @property
    def owner(self) -> str:
        return self.approver

    def revoked(self, at: datetime) -> ApproverKey:
        """This key revoked from ``at`` on (the earlier revocation stands)."""
        return replace(self, revoked_at=min(at, self.revoked_at or at))


class ApproverRegistry(Protocol):
    """Where checkers find approvers' keys."""

    def keys_of(self, approver: str) -> tuple[ApproverKey, ...]:
        """Every key of ``approver`` (revoked ones included); empty when not registered."""
        ...


# ---- the file format -------------------------------------------------------------------------


class ApproverEntryV1(BaseModel):
    """One public key of an approver."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    approver: str = Field(pattern=SIGNER_PATTERN, description="the approver's id")
    unit: str = Field(
        pattern=r"^[0-9A-Z]{2,8}$", description="the district / regional centre or province"
    )
    roles: list[Literal["approve", "lock"]] = Field(
        min_length=1, description="approve (and send back) station-months; lock province-months"
    )
    public_key: str = Field(
        pattern=r"^[A-Za-z0-9+/]{43}=$", description="base64 of the 32-byte Ed25519 key"
    )
    key_id: str | None = Field(
        default=None,
        pattern=KEY_ID_PATTERN,
        description="needed when the approver has several keys; decisions name it in key_id",
    )
    valid_from: AwareDatetime | None = Field(
        default=None, description="the earliest signing time of a decision it signs"
    )
    valid_to: AwareDatetime | None = Field(
        default=None, description="decisions the broker receives from then on are refused"
    )


class ApproverRevocationV1(BaseModel):
    """A revoked key: decisions the broker received from ``revoked_at`` on are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    approver: str = Field(pattern=SIGNER_PATTERN)
    key_id: str | None = Field(
        default=None, pattern=KEY_ID_PATTERN, description="absent: every key of the approver"
    )
    revoked_at: AwareDatetime = Field(description="compared with the broker's receive time")
    reason: str | None = Field(default=None, max_length=200)


class ApproverRegistryFileV1(BaseModel):
    """The approvers' registry file (``TUYEN_APPROVER_KEYS``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="approver_registry/v1")

    approvers: list[ApproverEntryV1]
    revocations: list[ApproverRevocationV1] = Field(default_factory=list)


def _bad(message: str) -> ContractViolation:
    return ContractViolation(Reason.SCHEMA_VIOLATION, f"bad approver registry: {message}")


def _role_conflict(other: ApproverKey, key: ApproverKey) -> str | None:
    if (other.unit, other.roles) != (key.unit, key.roles):
        return f"{key.approver}'s keys differ in unit or roles"
    return None


def _build(doc: ApproverRegistryFileV1) -> dict[str, tuple[ApproverKey, ...]]:
    """Keys by approver, revocations applied; the load-time checks of the module docstring."""
    keys = (
        ApproverKey(
            e.approver,
            e.unit,
            base64.b64decode(e.public_key, validate=True),
            frozenset(e.roles),
            e.key_id,
            e.valid_from,
            e.valid_to,
        )
        for e in doc.approvers
    )
    revocations = ((r.approver, r.key_id, r.revoked_at) for r in doc.revocations)
    return build_keys(keys, revocations, bad=_bad, conflict=_role_conflict)


class StaticApproverRegistry:
    """Approvers' public keys (reference data, see the module docstring)."""

    def __init__(self, doc: ApproverRegistryFileV1) -> None:
        self._keys = _build(doc)

    def keys_of(self, approver: str) -> tuple[ApproverKey, ...]:
        return self._keys.get(approver, ())

    def entries(self) -> list[ApproverKey]:
        return [k for keys in self._keys.values() for k in keys]

    def __len__(self) -> int:
        return sum(len(keys) for keys in self._keys.values())

    @classmethod
    def from_json(cls, raw: bytes | str) -> StaticApproverRegistry:
        """Parse the registry (``ContractViolation`` naming the problem when it is not one)."""
        return cls(parse_registry_file(ApproverRegistryFileV1, raw, _bad))

    @classmethod
    def load(cls, path: Path) -> StaticApproverRegistry:
        return cls.from_json(path.read_bytes())


def dev_approver(unit: str, n: int = 1) -> str:
    """The development approver id of ``unit``: ``sup-<unit>-<n>``."""
    return f"sup-{unit}-{n}"


class DevApproverRegistry:
    """Deterministic development keys: ``sup-<unit>-<n>``; a province's (two-digit unit) may
    approve and lock, any other unit's approve. Never in production."""

    def __init__(self, seed: bytes) -> None:
        self.seed = seed

    def signing_key(self, approver: str) -> SigningKey:
        if not _DEV_RE.fullmatch(approver):
            raise ContractViolation(
                Reason.SIGNER_NOT_REGISTERED, f"{approver} is not a development approver"
            )
        return SigningKey(hashlib.sha256(self.seed + b"approver:" + approver.encode()).digest())

    def keys_of(self, approver: str) -> tuple[ApproverKey, ...]:
        m = _DEV_RE.fullmatch(approver)
        if m is None:
            return ()
        unit = m.group(1)
        roles = {APPROVE_ROLE, LOCK_ROLE} if len(unit) == 2 else {APPROVE_ROLE}
        public = bytes(self.signing_key(approver).verify_key)
        return (ApproverKey(approver, unit, public, frozenset(roles)),)


class ChainedApproverRegistry:
    """Several registries, asked in order (the first that knows an approver answers)."""

    def __init__(self, *registries: ApproverRegistry) -> None:
        self.registries: Sequence[ApproverRegistry] = registries

    def keys_of(self, approver: str) -> tuple[ApproverKey, ...]:
        for registry in self.registries:
            found = registry.keys_of(approver)
            if found:
                return found
        return ()


def load_approver_registry(path: str | Path | None, *, development: bool) -> ApproverRegistry:
    """The approvers' keys: the registry file at ``path``. In development mode the
    development approvers (``sup-<unit>-<n>``) are accepted too, and alone when there is no
    file; outside it a file is required (``ValueError``): fail closed."""
    if path:
        static = StaticApproverRegistry.load(Path(path))
        if development:
            return ChainedApproverRegistry(static, DevApproverRegistry(DEV_KEY_SEED))
        return static
    if not development:
        raise ValueError("no approver registry (TUYEN_APPROVER_KEYS) outside development mode")
    return DevApproverRegistry(DEV_KEY_SEED)


def development_approvers(registry: StaticApproverRegistry) -> list[str]:
    """Approvers of ``registry`` whose key is their development key (derived from the
    published seed: anyone can sign as them)."""
    dev = DevApproverRegistry(DEV_KEY_SEED)
    found = []
    for key in registry.entries():
        derived = dev.keys_of(key.approver)
        if derived and derived[0].public_key == key.public_key:
            found.append(key.approver)
    return found
