"""Decision 130 tables → contract payloads, field by field (documented in docs/interop.md).

Table 1 (``XML1``, chỉ tiêu tổng hợp) → ``person`` (the patient) and ``encounter`` (the
visit); table 2 (``XML2``, chi tiết thuốc) → one ``medicine_dispensed`` per visit. A value
the contract requires that is missing or wrong makes the visit bad (one :class:`Problem`
naming the table, ``MA_LK`` and the reason); an optional value that cannot be read is
dropped with a warning.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

from producers.interop.importer import Draft, Problem, ReadContext, Visit, validated
from producers.interop.xml130.wrapper import Hoso, Row
from schemas import ContractViolation, Reason, codes
from schemas.fields import citizen_id_century_sex
from schemas.hierarchy import VN_TZ
from schemas.registry import RecordType

__all__ = [
    "ENCOUNTER_TYPE_OF_LOAI_KCB",
    "health_id_of_card",
    "local_id_of",
    "map_visit",
    "parse_time",
]

#: MA_LOAI_KCB (Decision 824/QĐ-BYT, appendix 1) → encounter_type. 03 inpatient record,
#: 04 day inpatient, 09 inpatient under 4 hours; all others are outpatient forms.
ENCOUNTER_TYPE_OF_LOAI_KCB: Final = {"03": "inpatient", "04": "inpatient", "09": "inpatient"}
#: MA_DOITUONG_KCB "2": emergency (cấp cứu), whatever the MA_LOAI_KCB.
EMERGENCY_DOITUONG: Final = "2"
#: MA_LOAI_RV: 2 transfer for medical reasons, 5 transfer at the patient's request.
TRANSFER_LOAI_RV: Final = {
    "2": "chuyển tuyến theo yêu cầu chuyên môn",
    "5": "chuyển tuyến theo yêu cầu người bệnh",
}
SEX_OF_GIOI_TINH: Final = {"1": "male", "2": "female"}
MAX_DIAGNOSES: Final = 10  # encounter/v2 holds at most 10 codes

_CARD_RE = re.compile(r"^[A-Z]{2}[0-9]{13}$")
_TIME_RE = re.compile(r"^([0-9]{4})([0-9]{2})([0-9]{2})(?:([0-9]{2})([0-9]{2}))?$")
_LOCAL_RE = re.compile(r"^[A-Za-z0-9._-]{1,60}$")
_ICD_NODOT_RE = re.compile(r"^([A-Z][0-9]{2})([0-9A-Z]{1,2})$")
_DIGITS_RE = re.compile(r"^[0-9]+$")


def parse_time(text: str | None, field: str) -> datetime:
    """``yyyymmddHHMM`` (or ``yyyymmdd``) in Vietnam time → an aware datetime."""
    m = _TIME_RE.match(text or "")
    if m is None:
        raise ContractViolation(
            Reason.BAD_DATE, f"{field} must be yyyymmddHHMM, got {text!r}", field=field
        )
    y, mo, d, hh, mm = (int(g) if g else 0 for g in m.groups())
    try:
        return datetime(y, mo, d, hh, mm, tzinfo=VN_TZ)
    except ValueError:
        raise ContractViolation(
            Reason.BAD_DATE, f"{field} {text!r} is not a calendar time", field=field
        ) from None


def _birth_date(text: str | None) -> str:
    """NGAY_SINH: ``yyyymmddHHMM`` with ``00`` for an unknown month or day → the 1st."""
    m = _TIME_RE.match(text or "")
    if m is None:
        raise ContractViolation(
            Reason.BAD_DATE, f"NGAY_SINH must be yyyymmddHHMM, got {text!r}", field="NGAY_SINH"
        )
    y, mo, d = m.group(1), m.group(2), m.group(3)
    return f"{y}-{mo if mo != '00' else '01'}-{d if d != '00' else '01'}"


def health_id_of_card(card: str | None) -> str:
    """The health id (mã số BHXH) in a health-insurance card number (MA_THE_BHYT): its last
    10 digits (card = 2 letters + benefit digit + 2-digit province + the 10-digit number).
    With several cards (``;``-separated, a new card during the stay) the first is used."""
    first = (card or "").split(";")[0].strip().upper()
    if not first:
        raise ContractViolation(
            Reason.BAD_HEALTH_ID,
            "no health-insurance card number (MA_THE_BHYT): the health id cannot be derived",
            field="MA_THE_BHYT",
        )
    if not _CARD_RE.match(first):
        raise ContractViolation(
            Reason.BAD_HEALTH_ID,
            f"MA_THE_BHYT {first!r} is not a 15-character card number",
            field="MA_THE_BHYT",
        )
    return first[5:]


def local_id_of(ma_lk: str) -> str:
    """The record local id of a visit: ``MA_LK`` itself when it is a safe id of at most 60
    characters, else ``lk-`` + 32 hex digits of its SHA-256 (stable either way)."""
    if _LOCAL_RE.match(ma_lk):
        return ma_lk
    return "lk-" + hashlib.sha256(ma_lk.encode()).hexdigest()[:32]


def _icd10(code: str) -> str:
    c = code.strip().upper()
    m = _ICD_NODOT_RE.match(c)
    return f"{m.group(1)}.{m.group(2)}" if m else c


def _split(text: str | None) -> list[str]:
    return [p.strip() for p in (text or "").split(";") if p.strip()]


class _Visit:
    """Reading one visit's rows, with its file, key and the context for warnings."""

    def __init__(self, file: str, key: str, ctx: ReadContext) -> None:
        self.file, self.key, self.ctx = file, key, ctx

    def warn(self, table: str, reason: Reason, message: str) -> None:
        self.ctx.warn(self.file, table, self.key, reason, message)

    def optional(
        self, table: str, row: Row, name: str, parse: Callable[[str], Any], what: str
    ) -> Any:
        text = row.get(name)
        if not text:
            return None
        try:
            return parse(text)
        except (ValueError, ContractViolation):
            self.warn(table, Reason.BAD_FORMAT, f"{name} {text!r} is not {what}: dropped")
            return None

    def text(self, table: str, row: Row, name: str, limit: int) -> str | None:
        text = row.get(name) or None
        if text is not None and len(text) > limit:
            self.warn(table, Reason.OUT_OF_RANGE, f"{name} cut to {limit} characters")
            text = text[:limit]
        return text


def _phone(text: str) -> str:
    digits = re.sub(r"[\s.()-]", "", text)
    if digits.startswith("+84"):
        digits = "0" + digits[3:]
    elif digits.startswith("84") and len(digits) == 11:
        digits = "0" + digits[2:]
    if not re.fullmatch(r"0[0-9]{9}", digits):
        raise ValueError(text)
    return digits


def _citizen_id(text: str) -> str:
    if not re.fullmatch(r"[0-9]{12}", text):
        raise ValueError(text)  # CMND (9 digits) or a passport: not a citizen id
    return text


def _positive(text: str) -> float:
    v = float(text)
    if not v > 0:
        raise ValueError(text)
    return v


def _person(v: _Visit, r: Row, health_id: str) -> dict[str, Any]:
    sex = SEX_OF_GIOI_TINH.get(r.get("GIOI_TINH", ""))
    if sex is None:
        raise ContractViolation(
            Reason.UNKNOWN_CODE,
            f"GIOI_TINH {r.get('GIOI_TINH')!r} has no sex in person/v1 (1 male, 2 female)",
            field="GIOI_TINH",
        )
    ethnicity = r.get("MA_DANTOC", "")
    commune = r.get("MAXA_CU_TRU", "")
    data: dict[str, Any] = {
        "health_id": health_id,
        "full_name": v.text("XML1", r, "HO_TEN", 100) or "",
        "sex": sex,
        "birth_date": _birth_date(r.get("NGAY_SINH")),
        "ethnicity": ethnicity.zfill(2) if _DIGITS_RE.match(ethnicity) else ethnicity,
        "residence_commune": commune.zfill(5) if _DIGITS_RE.match(commune) else commune,
    }
    for name, value in (
        ("street_address", v.text("XML1", r, "DIA_CHI", 200)),
        ("phone", v.optional("XML1", r, "DIEN_THOAI", _phone, "a 10-digit phone number")),
        ("citizen_id", v.optional("XML1", r, "SO_CCCD", _citizen_id, "a 12-digit CCCD")),
    ):
        if value is not None:
            data[name] = value
    cid = data.get("citizen_id")
    if cid is not None and not _cccd_agrees(cid, sex, data["birth_date"]):
        v.warn(
            "XML1", Reason.BAD_CITIZEN_ID, f"SO_CCCD {cid} contradicts sex or birth year: dropped"
        )
        del data["citizen_id"]  # keep the visit; the CCCD is a secondary identifier
    return data


def _cccd_agrees(cid: str, sex: str, birth_date: str) -> bool:
    """The CCCD's province code, century/sex digit and birth year agree with the record."""
    if cid[1:3] not in codes.PROVINCE_CODES or cid[0] != "0":
        return False
    century, cid_sex = citizen_id_century_sex(cid)
    return cid_sex == sex and str(century + int(cid[4:6])) == birth_date[:4]


def _encounter(v: _Visit, r: Row, health_id: str, visit_time: datetime) -> dict[str, Any]:
    codes = []
    for c in [*_split(r.get("MA_BENH_CHINH")), *_split(r.get("MA_BENH_KT"))]:
        if _icd10(c) not in codes:
            codes.append(_icd10(c))
    if not codes:
        raise ContractViolation(
            Reason.MISSING_FIELD, "no principal diagnosis (MA_BENH_CHINH)", field="MA_BENH_CHINH"
        )
    if len(codes) > MAX_DIAGNOSES:
        v.warn("XML1", Reason.OUT_OF_RANGE, f"{len(codes)} ICD-10 codes: the first 10 kept")
        codes = codes[:MAX_DIAGNOSES]
    if r.get("MA_DOITUONG_KCB") == EMERGENCY_DOITUONG:
        kind = "emergency"
    else:
        kind = ENCOUNTER_TYPE_OF_LOAI_KCB.get(r.get("MA_LOAI_KCB", ""), "outpatient")
    data: dict[str, Any] = {
        "health_id": health_id,
        "encounter_date": visit_time.date().isoformat(),
        "encounter_type": kind,
        "diagnoses": codes,
    }
    weight = v.optional("XML1", r, "CAN_NANG", _positive, "a weight in kg")
    if weight is not None:
        data["vitals"] = {"weight_kg": weight}
    transfer = TRANSFER_LOAI_RV.get(r.get("MA_LOAI_RV", ""))
    if transfer is not None:
        referral: dict[str, Any] = {"to_level": "other", "reason": transfer}
        if r.get("MA_NOI_DEN"):
            referral["facility_code"] = r["MA_NOI_DEN"][:32]
        data["referral"] = referral
    return data


def _item_key(item: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(item.get(k) for k in ("medicine_code", "name", "strength", "route", "unit"))


def _medicines(
    v: _Visit, rows: list[Row], health_id: str, visit_time: datetime, local_id: str
) -> dict[str, Any]:
    items: dict[tuple[Any, ...], dict[str, Any]] = {}
    dates = []
    for n, r in enumerate(rows, start=1):
        if r.get("MA_LK") != v.key:
            raise ContractViolation(
                Reason.INCONSISTENT,
                f"line {n}: MA_LK {r.get('MA_LK')!r} is not the visit's {v.key!r}",
                field="MA_LK",
            )
        try:
            quantity = float(r.get("SO_LUONG") or "")
        except ValueError:
            raise ContractViolation(
                Reason.BAD_FORMAT,
                f"line {n}: SO_LUONG {r.get('SO_LUONG')!r} is not a number",
                field="SO_LUONG",
            ) from None
        item: dict[str, Any] = {
            "medicine_code": r.get("MA_THUOC", ""),
            "name": v.text("XML2", r, "TEN_THUOC", 255) or "",
            "unit": r.get("DON_VI_TINH", ""),
            "quantity": quantity,
        }
        for name, value in (
            ("strength", v.text("XML2", r, "HAM_LUONG", 255)),
            ("route", r.get("DUONG_DUNG") or None),
            ("dosage", v.text("XML2", r, "LIEU_DUNG", 500)),
            ("prescriber", next(iter(_split(r.get("MA_BAC_SI"))), None)),
        ):
            if value is not None:
                item[name] = value[:64] if name == "prescriber" else value
        ordered = v.optional("XML2", r, "NGAY_YL", lambda t: parse_time(t, "NGAY_YL"), "a time")
        if ordered is not None:
            dates.append(ordered.date())
        same = items.get(_item_key(item))
        if same is None:
            items[_item_key(item)] = item
        else:  # the same medicine on several order lines (an inpatient stay): one line
            same["quantity"] = round(same["quantity"] + quantity, 3)
    return {
        "health_id": health_id,
        "dispensed_date": (min(dates) if dates else visit_time.date()).isoformat(),
        "encounter_local_id": local_id,
        "items": list(items.values()),
    }


def map_visit(file: str, hoso: Hoso, file_cskcb: str | None, ctx: ReadContext) -> Visit | Problem:
    """One ``HOSO`` → the visit's records, or the problem that makes it bad."""
    where = f"HOSO {hoso.index}"
    rows = hoso.tables.get("XML1", [])
    if "XML1" in hoso.errors:
        exc = hoso.errors["XML1"]
        return Problem(file, "XML1", where, exc.reason, exc.message)
    if len(rows) != 1:
        return Problem(
            file,
            "XML1",
            where,
            Reason.MISSING_FIELD if not rows else Reason.SCHEMA_VIOLATION,
            f"a visit needs exactly one table 1 (TONG_HOP), found {len(rows)}",
        )
    r = rows[0]
    key = r.get("MA_LK") or where
    v = _Visit(file, key, ctx)
    table = "XML1"
    try:
        if not r.get("MA_LK"):
            raise ContractViolation(Reason.MISSING_FIELD, "no MA_LK", field="MA_LK")
        visit_time = parse_time(r.get("NGAY_VAO"), "NGAY_VAO")
        ctx.check_time(visit_time, "NGAY_VAO")
        cskcb = r.get("MA_CSKCB") or file_cskcb
        if file_cskcb and r.get("MA_CSKCB") and r["MA_CSKCB"] != file_cskcb:
            raise ContractViolation(
                Reason.INCONSISTENT,
                f"MA_CSKCB {r['MA_CSKCB']} differs from the file's MACSKCB {file_cskcb}",
                field="MA_CSKCB",
            )
        source = ctx.source_of(cskcb, visit_time)
        health_id = health_id_of_card(r.get("MA_THE_BHYT"))
        local_id = local_id_of(key)
        person = validated(RecordType.PERSON, _person(v, r, health_id), ctx.now)
        encounter = validated(
            RecordType.ENCOUNTER, _encounter(v, r, health_id, visit_time), ctx.now
        )
        drafts = [
            Draft("XML1", RecordType.PERSON, None, person, visit_time),
            Draft("XML1", RecordType.ENCOUNTER, local_id, encounter, visit_time),
        ]
        table = "XML2"
        if "XML2" in hoso.errors:
            raise hoso.errors["XML2"]
        medicines = hoso.tables.get("XML2", [])
        if medicines:
            data = _medicines(v, medicines, health_id, visit_time, local_id)
            payload = validated(RecordType.MEDICINE_DISPENSED, data, ctx.now)
            drafts.append(
                Draft("XML2", RecordType.MEDICINE_DISPENSED, local_id + "-rx", payload, visit_time)
            )
    except ContractViolation as exc:
        return Problem(file, table, key, exc.reason, exc.message)
    return Visit(file, key, source, drafts)
