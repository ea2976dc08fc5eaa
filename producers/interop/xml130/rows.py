"""Contract payloads → Decision 130 table rows: the inverse of :mod:`.mapping`, for the
simulator's legacy stations (whose software only exports check-out files) and for tests.

Only what the contract holds is written; the billing fields a real export carries (prices,
insurance shares, card validity, payment dates…) are left out, as the import ignores them.
Home visits have no form in Decision 130 (``MA_LOAI_KCB`` knows none): they are not written.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from producers.interop.xml130.mapping import EMERGENCY_DOITUONG
from producers.interop.xml130.wrapper import Row
from schemas.hierarchy import VN_TZ

__all__ = ["EXPRESSIBLE_TYPES", "card_number", "visit_tables"]

#: encounter_type → MA_LOAI_KCB (emergency also sets MA_DOITUONG_KCB 2).
LOAI_KCB: Final = {"outpatient": "01", "emergency": "01", "inpatient": "03"}
EXPRESSIBLE_TYPES: Final = frozenset(LOAI_KCB)
GIOI_TINH: Final = {"male": "1", "female": "2"}


def card_number(health_id: str, province: str) -> str:
    """A health-insurance card number holding ``health_id`` (object code GD: household)."""
    return f"GD4{province[:2]}{health_id}"


def _time(t: datetime) -> str:
    return t.astimezone(VN_TZ).strftime("%Y%m%d%H%M")


def visit_tables(
    ma_cskcb: str,
    ma_lk: str,
    person: Mapping[str, Any],
    encounter: Mapping[str, Any],
    visit_time: datetime,
    *,
    province: str,
) -> dict[str, list[Row]]:
    """``{"XML1": [row]}`` of one visit (``visit_time`` on the encounter date)."""
    kind = encounter.get("encounter_type", "outpatient")
    if kind not in LOAI_KCB:
        raise ValueError(f"{kind} visits have no Decision 130 form")
    diagnoses = list(encounter["diagnoses"])
    row: Row = {
        "MA_LK": ma_lk,
        "STT": "1",
        "MA_BN": person["health_id"],
        "HO_TEN": person["full_name"],
        "SO_CCCD": person.get("citizen_id", ""),
        "NGAY_SINH": person["birth_date"].replace("-", "") + "0000",
        "GIOI_TINH": GIOI_TINH[person["sex"]],
        "MA_QUOCTICH": "000",
        "MA_DANTOC": person["ethnicity"],
        "DIA_CHI": person.get("street_address", ""),
        "MAXA_CU_TRU": person["residence_commune"],
        "DIEN_THOAI": person.get("phone", ""),
        "MA_THE_BHYT": card_number(person["health_id"], province),
        "MA_BENH_CHINH": diagnoses[0],
        "MA_BENH_KT": ";".join(diagnoses[1:]),
        "MA_DOITUONG_KCB": EMERGENCY_DOITUONG if kind == "emergency" else "1.1",
        "NGAY_VAO": _time(visit_time),
        "NGAY_RA": _time(visit_time),
        "KET_QUA_DTRI": "7",
        "MA_LOAI_RV": "1",
        "MA_LOAI_KCB": LOAI_KCB[kind],
        "MA_CSKCB": ma_cskcb,
    }
    referral = encounter.get("referral")
    if referral:
        row["MA_LOAI_RV"] = "2"
        row["MA_NOI_DEN"] = referral.get("facility_code", "")
    weight = (encounter.get("vitals") or {}).get("weight_kg")
    if weight is not None:
        row["CAN_NANG"] = f"{weight:.2f}"
    return {"XML1": [{k: v for k, v in row.items() if v != ""}]}
