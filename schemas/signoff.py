"""Sign-off decisions: the unit above approves (or sends back) a station's monthly report,
the province locks a month. Signed, authorised, and kept as an append-only ledger.

A station submits its month with a ``report_submission`` record, signed by the station head,
through the normal pipeline. The decisions that follow are made by supervisors, not
stations, so they have their own small contract:

- :class:`SignoffDecision`: ``approve`` / ``send_back`` of one station-month, ``lock`` of one
  province-month, by an ``approver`` of a ``unit``, signed with the approver's Ed25519 key
  (named by ``key_id`` when the approver has several) over the RFC 8785 bytes of every field
  but ``signature`` (``schemas.canonical``, the form record changes are signed in; a
  ``key_id`` that is not set is left out).
- Approver keys: the approvers' registry (:mod:`schemas.approvers`: key ids, validity,
  revocations, the development approvers).
- :func:`check_decision`: a key of the approver usable when the broker received the decision
  verifies it, the approver holds the role, and the unit may decide: an approval or
  send-back by the station's district (regional centre) or province at the month's end, a
  lock by the province itself.

Decisions travel on the ``signoff.decisions`` topic (key ``<province>:<period>``, so one
province-month stays in order) and the ``signoff`` sink verifies each before it writes it to
``<root>/signoff/…``; the broker's receive time of a decision is when it took effect.
"""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

import orjson
from nacl.signing import SigningKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas.approvers import (
    APPROVE_ROLE,
    LOCK_ROLE,
    ApproverKey,
    ApproverRegistry,
    ChainedApproverRegistry,
    DevApproverRegistry,
    StaticApproverRegistry,
    dev_approver,
    development_approvers,
    load_approver_registry,
)
from schemas.canonical import canonical_json
from schemas.envelope import format_time, new_event_id
from schemas.hierarchy import Hierarchy, HierarchyError, Tier
from schemas.keys import KEY_ID_PATTERN, SIGNER_PATTERN
from schemas.reasons import ContractViolation, Reason
from schemas.signing import verify_with

__all__ = [  # the approvers' registry is re-exported from schemas.approvers
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
    approver: str = Field(pattern=SIGNER_PATTERN)
    key_id: str | None = Field(
        default=None, pattern=KEY_ID_PATTERN, description="the approver's key that signed it"
    )
    time: str = Field(description="when it was signed, YYYY-MM-DDTHH:MM:SS.ffffffZ")
    reason: str | None = Field(default=None, max_length=500)
    signature: str = ""

    def canonical(self) -> bytes:
        """The signed bytes: RFC 8785 of every field but ``signature`` (``key_id`` only when
        set, so decisions signed before key ids keep their bytes)."""
        signed = self.model_dump(mode="json", exclude={"signature"})
        if signed["key_id"] is None:
            del signed["key_id"]
        return canonical_json(signed)

    def signed(self, key: SigningKey, key_id: str | None = None) -> SignoffDecision:
        """This decision signed with ``key`` (named ``key_id`` in the approvers' registry)."""
        named = self.model_copy(update={"key_id": key_id})
        sig = key.sign(named.canonical()).signature
        return named.model_copy(update={"signature": base64.b64encode(sig).decode()})

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", exclude_none=True))


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


# ---- checks -------------------------------------------------------------------------------


def _refuse(message: str) -> ContractViolation:
    return ContractViolation(Reason.SIGNER_NOT_AUTHORISED, message, field="approver")


def check_decision(
    decision: SignoffDecision,
    registry: ApproverRegistry,
    hierarchy: Hierarchy,
    *,
    received: datetime | None = None,
) -> None:
    """Raise ``ContractViolation`` unless ``decision`` is signed by a key of its approver
    usable when the broker received it (``received``, its LogAppendTime; now when ``None``),
    and the approver holds the role for it, for a unit that may decide it (see the module
    docstring)."""
    keys = registry.keys_of(decision.approver)
    if not keys:
        raise ContractViolation(
            Reason.SIGNER_NOT_REGISTERED, f"approver {decision.approver} is not registered"
        )
    key = verify_with(
        keys,
        field="approver",
        key_id=decision.key_id,
        signature=decision.signature,
        message=decision.canonical,
        signed=datetime.fromisoformat(decision.time),
        received=received or datetime.now(UTC),
        what="decision",
    )
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
