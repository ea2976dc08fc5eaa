"""Field types shared by the payload models: identifiers, codes, dates, with their edge rules.

Every rule raises a ``PydanticCustomError`` whose *type* is a :class:`schemas.reasons.Reason`
value, so a failed validation maps to a machine-readable reason without guessing.
Validation is deterministic: "not in the future" is relative to ``context={"now": datetime}``
(wall clock when absent), and "today" is the calendar date in Vietnam (UTC+7).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Annotated, Any, Final

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationInfo,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from schemas import codes

VN_TZ: Final = timezone(timedelta(hours=7), "ICT")

HEALTH_ID_PATTERN: Final = r"^[0-9]{10}$"
CITIZEN_ID_PATTERN: Final = r"^0[0-9]{11}$"
PHONE_PATTERN: Final = r"^0[0-9]{9}$"
DATE_PATTERN: Final = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
PERIOD_PATTERN: Final = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
COMMUNE_PATTERN: Final = r"^[0-9]{5}$"

# Python's ``$`` also matches before a trailing newline: every check is a ``fullmatch`` (the
# patterns above are the JSON Schema ones, ASCII classes only, anchored for JSON Schema).
_HEALTH_ID_RE = re.compile(HEALTH_ID_PATTERN, re.ASCII)
_CITIZEN_ID_RE = re.compile(CITIZEN_ID_PATTERN, re.ASCII)
_PHONE_RE = re.compile(PHONE_PATTERN, re.ASCII)
_DATE_RE = re.compile(DATE_PATTERN, re.ASCII)
_PERIOD_RE = re.compile(PERIOD_PATTERN, re.ASCII)
_COMMUNE_RE = re.compile(COMMUNE_PATTERN, re.ASCII)


class Payload(BaseModel):
    """Base of every payload model: closed, immutable, strict JSON types."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def now_from(info: ValidationInfo | None) -> datetime:
    """The ``now`` of this validation: ``context["now"]`` or the wall clock."""
    ctx = info.context if info is not None else None
    if isinstance(ctx, dict):
        now = ctx.get("now")
        if isinstance(now, datetime):
            return now
    return datetime.now(UTC)


def today_vn(now: datetime) -> date:
    """The calendar date in Vietnam at instant ``now`` (naive ``now`` is taken as UTC).

    Remembered for the last ``now`` (the same object: a stream worker's batch validates every
    payload date against one ``now``; issue 17)."""
    global _LAST_TODAY
    last = _LAST_TODAY
    if last[0] is now:
        return last[1]
    aware = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
    today = aware.astimezone(VN_TZ).date()
    _LAST_TODAY = (now, today)
    return today


#: (the last ``now`` given to :func:`today_vn`, its date in Vietnam): one tuple, replaced
#: whole, so a thread reads a consistent pair
_LAST_TODAY: tuple[datetime | None, date] = (None, date.min)


def _err(reason: str, message: str, **ctx: Any) -> PydanticCustomError:
    return PydanticCustomError(reason, message, ctx or None)


def _string(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise _err("wrong_type", f"{what} must be a string")
    return value


def check_health_id(value: Any) -> str:
    """Mã số BHXH: exactly 10 ASCII digits, not all zero."""
    s = _string(value, "health id")
    if not _HEALTH_ID_RE.fullmatch(s) or s == "0000000000":
        raise _err(
            "bad_health_id",
            "health id must be the 10-digit social-insurance number (mã số BHXH), got '{v}'",
            v=s,
        )
    return s


def check_citizen_id(value: Any) -> str:
    """CCCD: 12 digits; digits 1-3 = 0 + GSO province code; digit 4 = century/sex code."""
    s = _string(value, "citizen id")
    if not _CITIZEN_ID_RE.fullmatch(s) or s[1:3] not in codes.PROVINCE_CODES:
        raise _err(
            "bad_citizen_id",
            "citizen id must be 12 digits starting with a province code (0 + GSO code), got '{v}'",
            v=s,
        )
    return s


def citizen_id_century_sex(citizen_id: str) -> tuple[int, str]:
    """(first year of the birth century, sex) encoded by the CCCD's 4th digit.

    0/1: 1900s male/female, 2/3: 2000s, 4/5: 2100s, 6/7: 2200s, 8/9: 2300s.
    """
    d = int(citizen_id[3])
    return 1900 + 100 * (d // 2), ("male", "female")[d % 2]


def check_phone(value: Any) -> str:
    s = _string(value, "phone")
    if not _PHONE_RE.fullmatch(s):
        raise _err("bad_phone", "phone must be 10 digits starting with 0, got '{v}'", v=s)
    return s


def check_icd10(value: Any) -> str:
    s = _string(value, "ICD-10 code")
    if not codes.icd10_known(s):
        raise _err(
            "bad_icd10",
            "'{v}' is not a well-formed ICD-10 code (e.g. A09, I10, E11.9) in the shipped subset",
            v=s,
        )
    return s


def check_vaccine(value: Any) -> str:
    s = _string(value, "vaccine")
    if s not in codes.VACCINES:
        raise _err("unknown_vaccine", "'{v}' is not in the EPI vaccine code list", v=s)
    return s


def _code_checker(table: dict[str, Any], what: str) -> Any:
    def check(value: Any) -> str:
        s = _string(value, what)
        if s not in table:
            raise _err("unknown_code", f"{'{v}'} is not a known {what} code", v=s)
        return s

    return check


def check_commune(value: Any) -> str:
    s = _string(value, "commune code")
    if not _COMMUNE_RE.fullmatch(s):
        raise _err("bad_format", "commune code must be 5 digits (GSO), got '{v}'", v=s)
    return s


def _parse_date(value: Any) -> date:
    if type(value) is date:
        return value
    s = _string(value, "date")
    if not _DATE_RE.fullmatch(s):
        raise _err("bad_date", "date must be YYYY-MM-DD, got '{v}'", v=s)
    try:
        return date.fromisoformat(s)
    except ValueError:
        raise _err("bad_date", "'{v}' is not a calendar date", v=s) from None


def check_date(value: Any) -> date:
    """Any calendar date (future allowed, e.g. an expected delivery date)."""
    return _parse_date(value)


def check_past_date(value: Any, info: ValidationInfo) -> date:
    """A calendar date not after today in Vietnam (relative to the validation's ``now``)."""
    d = _parse_date(value)
    today = today_vn(now_from(info))
    if d > today:
        raise _err("future_date", "{v} is in the future (today is {t})", v=str(d), t=str(today))
    return d


def check_period(value: Any, info: ValidationInfo) -> str:
    """A month ``YYYY-MM`` not after the current month in Vietnam."""
    s = _string(value, "period")
    if not _PERIOD_RE.fullmatch(s):
        raise _err("bad_format", "period must be YYYY-MM, got '{v}'", v=s)
    today = today_vn(now_from(info))
    if s > f"{today.year:04d}-{today.month:02d}":
        raise _err("future_date", "period {v} is in the future", v=s)
    return s


def _str_schema(pattern: str, **extra: Any) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "pattern": pattern, **extra})


HealthId = Annotated[
    str,
    PlainValidator(check_health_id),
    _str_schema(HEALTH_ID_PATTERN, description="mã số BHXH: 10 digits"),
]
CitizenId = Annotated[
    str,
    PlainValidator(check_citizen_id),
    _str_schema(CITIZEN_ID_PATTERN, description="CCCD: 12 digits, 0 + province code first"),
]
Phone = Annotated[str, PlainValidator(check_phone), _str_schema(PHONE_PATTERN)]
Icd10Code = Annotated[
    str, PlainValidator(check_icd10), _str_schema(codes.ICD10_PATTERN, **{"x-code-list": "icd10"})
]
VaccineCode = Annotated[
    str,
    PlainValidator(check_vaccine),
    _str_schema(codes.VACCINE_PATTERN, **{"x-code-list": "vaccines"}),
]
DiseaseCode = Annotated[
    str,
    PlainValidator(_code_checker(codes.NOTIFIABLE_DISEASES, "notifiable disease")),
    _str_schema(codes.DISEASE_PATTERN, **{"x-code-list": "notifiable_diseases"}),
]
MedicineCode = Annotated[
    str,
    PlainValidator(_code_checker(codes.ESSENTIAL_MEDICINES, "essential medicine")),
    _str_schema(codes.MEDICINE_PATTERN, **{"x-code-list": "essential_medicines"}),
]
EquipmentCode = Annotated[
    str,
    PlainValidator(_code_checker(codes.EQUIPMENT, "equipment")),
    _str_schema(codes.EQUIPMENT_PATTERN, **{"x-code-list": "equipment"}),
]
EthnicityCode = Annotated[
    str,
    PlainValidator(_code_checker(codes.ETHNIC_GROUPS, "ethnic group")),
    _str_schema(r"^[0-9]{2}$", **{"x-code-list": "ethnic_groups"}),
]
CommuneCode = Annotated[str, PlainValidator(check_commune), _str_schema(COMMUNE_PATTERN)]
_DATE_SER = PlainSerializer(date.isoformat, return_type=str, when_used="json")
PastDate = Annotated[
    date,
    PlainValidator(check_past_date),
    _DATE_SER,
    WithJsonSchema({"type": "string", "format": "date", "pattern": DATE_PATTERN}),
]
AnyDate = Annotated[
    date,
    PlainValidator(check_date),
    _DATE_SER,
    WithJsonSchema({"type": "string", "format": "date", "pattern": DATE_PATTERN}),
]
Period = Annotated[
    str,
    PlainValidator(check_period),
    WithJsonSchema({"type": "string", "pattern": PERIOD_PATTERN, "description": "month YYYY-MM"}),
]
Text = Annotated[str, Field(min_length=1, max_length=200)]
Count = Annotated[int, Field(ge=0, le=1_000_000)]
