"""Sign-off decisions: the unit above approves (or sends back) a station's monthly report,
the province locks a month. Signed, authorised, and kept as an append-only ledger.

A station submits its month with a ``report_submission`` record, signed by the station head,
through the normal pipeline. The decisions that follow are made by supervisors, not
stations, so they have their own small contract:

- :class:`SignoffDecision`: ``approve`` / ``send_back`` of one station-month, ``lock`` of one
  province-month, by an ``approver`` of a ``unit``, signed with the approver's Ed25519 key
  over the canonical bytes (compact JSON, keys sorted, every field but ``signature``: the
  same form as record changes, RFC 8785 output for these values).
- Approver keys: :class:`StaticApproverRegistry` (reference data, JSON ``{"approvers":
  [{"approver", "unit", "roles": ["approve", "lock"], "public_key"}]}``) or
  :class:`DevApproverRegistry` (development: ``sup-<unit>-<n>``, key ``SHA-256(seed ‖ id)``,
  a province's supervisors may approve and lock, others approve).
- :func:`check_decision`: the signature verifies, the key is the approver's, the approver
  holds the role, and the unit may decide: an approval or send-back by the station's district
  (regional centre) or province at the month's end, a lock by the province itself.

Decisions travel on the ``signoff.decisions`` topic (key ``<province>:<period>``, so one
province-month stays in order) and the ``signoff`` sink verifies each before it writes it to
``<root>/signoff/…``; the broker's receive time of a decision is when it took effect.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, Protocol

import orjson
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas.envelope import format_time, new_event_id
from schemas.hierarchy import Hierarchy, HierarchyError, Tier
from schemas.reasons import ContractViolation, Reason

__all__ = [
    "APPROVE_ROLE",
    "LOCK_ROLE",
    "Action",
    "ApproverKey",
    "ApproverRegistry",
    "ChainedApproverRegistry",
    "DevApproverRegistry",
    "SignoffDecision",
    "StaticApproverRegistry",
    "check_decision",
    "decision_key",
    "dev_approver",
    "development_approvers",
    "load_approver_registry",
    "make_decision",
    "parse_decision",
]

APPROVE_ROLE: Final = "approve"
LOCK_ROLE: Final = "lock"
_APPROVER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
_DEV_RE = re.compile(r"^sup-([0-9A-Z]{2,6})-([1-9][0-9]{0,2})$")
_PERIOD = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
_UUID7 = r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"


class Action(StrEnum):
    APPROVE = "approve"
    SEND_BACK = "send_back"
    LOCK = "lock"


class SignoffDecision(BaseModel):
    """One decision. ``station`` for approve / send back; ``province`` always (the station's
    province at the month's end, or the locked province)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    id: str = Field(pattern=_UUID7)
    action: Action
    period: str = Field(pattern=_PERIOD)
    province: str = Field(pattern=r"^[0-9]{2}$")
    station: str | None = Field(default=None, pattern=r"^[0-9]{5}$")
    unit: str = Field(min_length=2, max_length=8, pattern=r"^[0-9A-Z]+$")
    approver: str = Field(pattern=_APPROVER_RE.pattern)
    time: str = Field(description="when it was signed, YYYY-MM-DDTHH:MM:SS.ffffffZ")
    reason: str | None = Field(default=None, max_length=500)
    signature: str = ""

    def canonical(self) -> bytes:
        """The signed bytes: every field but ``signature``, compact JSON, keys sorted."""
        return orjson.dumps(self.model_dump(mode="json", exclude={"signature"}), option=_SORT)

    def signed(self, key: SigningKey) -> SignoffDecision:
        sig = key.sign(self.canonical()).signature
        return self.model_copy(update={"signature": base64.b64encode(sig).decode()})

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))


_SORT: Final = orjson.OPT_SORT_KEYS


def make_decision(
    action: Action | str,
    *,
    period: str,
    province: str,
    unit: str,
    approver: str,
    station: str | None = None,
    reason: str | None = None,
    time: datetime | None = None,
) -> SignoffDecision:
    """An unsigned decision (``ContractViolation(schema_violation)`` when malformed)."""
    act = Action(action)
    if (station is None) != (act is Action.LOCK):
        raise ContractViolation(
            Reason.SCHEMA_VIOLATION, "approve / send back name a station; a lock does not"
        )
    when = time or datetime.now(UTC)
    try:
        return SignoffDecision(
            id=new_event_id(),
            action=act,
            period=period,
            province=province,
            station=station,
            unit=unit,
            approver=approver,
            time=format_time(when),
            reason=reason,
        )
    except ValidationError as exc:
        raise ContractViolation(Reason.SCHEMA_VIOLATION, str(exc.errors()[0]["msg"])) from None


def parse_decision(value: bytes | None) -> SignoffDecision:
    """A decision from its Kafka value (``ContractViolation`` with the reason when bad)."""
    if value is None:
        raise ContractViolation(Reason.EMPTY_VALUE, "a decision needs a value")
    try:
        raw = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise ContractViolation(Reason.NOT_JSON, str(exc)) from None
    if not isinstance(raw, dict):
        raise ContractViolation(Reason.NOT_OBJECT, "a decision is a JSON object")
    try:
        return SignoffDecision.model_validate_json(value)  # strict, JSON types
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise ContractViolation(Reason.SCHEMA_VIOLATION, f"{loc}: {err['msg']}") from None


def decision_key(decision: SignoffDecision) -> bytes:
    """The Kafka key: ``<province>:<period>`` (one province-month in one partition)."""
    return f"{decision.province}:{decision.period}".encode()


# ---- approver keys ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApproverKey:
    approver: str
    unit: str
    public_key: bytes
    roles: frozenset[str]


class ApproverRegistry(Protocol):
    def lookup(self, approver: str) -> ApproverKey | None: ...


class StaticApproverRegistry:
    """Approvers' public keys (reference data, see the module docstring)."""

    def __init__(self, keys: list[ApproverKey]) -> None:
        self._keys = {k.approver: k for k in keys}

    def lookup(self, approver: str) -> ApproverKey | None:
        return self._keys.get(approver)

    def entries(self) -> list[ApproverKey]:
        return list(self._keys.values())

    def __len__(self) -> int:
        return len(self._keys)

    @classmethod
    def load(cls, path: Path) -> StaticApproverRegistry:
        try:
            doc: Any = orjson.loads(path.read_bytes())
            keys = [
                ApproverKey(
                    str(e["approver"]),
                    str(e["unit"]),
                    _public_key(e["public_key"]),
                    frozenset(str(r) for r in e.get("roles") or ()),
                )
                for e in doc["approvers"]
            ]
            seen: set[str] = set()
            for k in keys:
                if not _APPROVER_RE.fullmatch(k.approver):
                    raise ValueError(f"bad approver id {k.approver!r}")
                if k.approver in seen:
                    raise ValueError(f"approver {k.approver} is listed twice")
                if not k.roles <= {APPROVE_ROLE, LOCK_ROLE}:
                    raise ValueError(f"unknown role of {k.approver}: {sorted(k.roles)}")
                seen.add(k.approver)
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ContractViolation(
                Reason.SCHEMA_VIOLATION, f"bad approver registry {path}: {exc}"
            ) from None
        return cls(keys)


def _public_key(text: str) -> bytes:
    raw = base64.b64decode(text, validate=True)
    if len(raw) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return raw


def dev_approver(unit: str, n: int = 1) -> str:
    """The development approver id of ``unit``: ``sup-<unit>-<n>``."""
    return f"sup-{unit}-{n}"


class DevApproverRegistry:
    """Deterministic development keys: ``sup-<unit>-<n>``; a province's (two-digit unit) may
    approve and lock, any other unit's approve. Never in production."""

    def __init__(self, seed: bytes) -> None:
        self.seed = seed

    def signing_key(self, approver: str) -> SigningKey:
        if not _DEV_RE.match(approver):
            raise ContractViolation(
                Reason.SIGNER_NOT_REGISTERED, f"{approver} is not a development approver"
            )
        return SigningKey(hashlib.sha256(self.seed + b"approver:" + approver.encode()).digest())

    def lookup(self, approver: str) -> ApproverKey | None:
        m = _DEV_RE.match(approver)
        if m is None:
            return None
        unit = m.group(1)
        roles = {APPROVE_ROLE, LOCK_ROLE} if len(unit) == 2 else {APPROVE_ROLE}
        public = bytes(self.signing_key(approver).verify_key)
        return ApproverKey(approver, unit, public, frozenset(roles))


class ChainedApproverRegistry:
    """Several registries, asked in order (the first that knows an approver answers)."""

    def __init__(self, *registries: ApproverRegistry) -> None:
        self.registries = registries

    def lookup(self, approver: str) -> ApproverKey | None:
        for registry in self.registries:
            found = registry.lookup(approver)
            if found is not None:
                return found
        return None


def load_approver_registry(path: str | Path | None, *, development: bool) -> ApproverRegistry:
    """The approvers' keys: the registry file at ``path``. In development mode the
    development approvers (``sup-<unit>-<n>``) are accepted too, and alone when there is no
    file; outside it a file is required (``ValueError``): fail closed."""
    from schemas.keys import DEV_KEY_SEED

    if path:
        static = StaticApproverRegistry.load(Path(path))
        return (
            ChainedApproverRegistry(static, DevApproverRegistry(DEV_KEY_SEED))
            if development
            else static
        )
    if not development:
        raise ValueError("no approver registry (TUYEN_APPROVER_KEYS) outside development mode")
    return DevApproverRegistry(DEV_KEY_SEED)


def development_approvers(registry: StaticApproverRegistry) -> list[str]:
    """Approvers of ``registry`` whose key is their development key (derived from the
    published seed: anyone can sign as them)."""
    from schemas.keys import DEV_KEY_SEED

    dev = DevApproverRegistry(DEV_KEY_SEED)
    found = []
    for key in registry.entries():
        derived = dev.lookup(key.approver)
        if derived is not None and derived.public_key == key.public_key:
            found.append(key.approver)
    return found


# ---- checks -------------------------------------------------------------------------------


def _verify(decision: SignoffDecision, key: ApproverKey) -> None:
    try:
        sig = base64.b64decode(decision.signature, validate=True)
    except (binascii.Error, ValueError):
        raise ContractViolation(Reason.BAD_SIGNATURE, "signature is not base64") from None
    if len(sig) != 64:
        raise ContractViolation(Reason.BAD_SIGNATURE, "signature is not 64 bytes")
    try:
        VerifyKey(key.public_key).verify(decision.canonical(), sig)
    except BadSignatureError:
        raise ContractViolation(Reason.TAMPERED, "decision signature does not verify") from None


def _refuse(message: str) -> ContractViolation:
    return ContractViolation(Reason.SIGNER_NOT_AUTHORISED, message, field="approver")


def check_decision(
    decision: SignoffDecision, registry: ApproverRegistry, hierarchy: Hierarchy
) -> None:
    """Raise ``ContractViolation`` unless ``decision`` is signed by its approver, who holds
    the role for it, for a unit that may decide it (see the module docstring)."""
    key = registry.lookup(decision.approver)
    if key is None:
        raise ContractViolation(
            Reason.SIGNER_NOT_REGISTERED, f"approver {decision.approver} is not registered"
        )
    _verify(decision, key)
    if key.unit != decision.unit:
        raise _refuse(f"{decision.approver} approves for {key.unit}, not {decision.unit}")
    end = _month_end(decision.period)
    if decision.action is Action.LOCK:
        if LOCK_ROLE not in key.roles:
            raise _refuse(f"{decision.approver} may not lock")
        if decision.unit != decision.province or not _is_province(hierarchy, decision.unit, end):
            raise _refuse(f"only province {decision.province} locks its months")
        return
    if APPROVE_ROLE not in key.roles:
        raise _refuse(f"{decision.approver} may not approve")
    assert decision.station is not None
    try:
        placement = hierarchy.lookup_site(decision.station, end)
    except HierarchyError as exc:
        raise ContractViolation(Reason.UNKNOWN_STATION, exc.message, field="station") from None
    if placement.province.code != decision.province:
        raise _refuse(f"station {decision.station} is not in province {decision.province}")
    if decision.unit not in (placement.district.code, placement.province.code):
        raise _refuse(
            f"{decision.unit} is not the unit above station {decision.station} in {decision.period}"
        )


def _month_end(period: str) -> date:
    y, m = int(period[:4]), int(period[5:7])
    return date(y + m // 12, m % 12 + 1, 1) - timedelta(days=1)


def _is_province(hierarchy: Hierarchy, code: str, at: date) -> bool:
    try:
        return hierarchy.tier_of(code) is Tier.PROVINCE and hierarchy.exists(code, at)
    except HierarchyError:
        return False
