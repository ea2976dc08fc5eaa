"""Synthetic people: names, ages, identifiers, consistent with the payload rules."""

from __future__ import annotations

import random
from datetime import date, timedelta
from itertools import accumulate
from typing import Any, Final

from schemas import codes

SURNAMES: Final = (
    ("Nguyễn", 38),
    ("Trần", 11),
    ("Lê", 9.5),
    ("Phạm", 7),
    ("Hoàng", 5),
    ("Huỳnh", 1),
    ("Phan", 4.5),
    ("Vũ", 3.9),
    ("Võ", 1),
    ("Đặng", 2.1),
    ("Bùi", 2),
    ("Đỗ", 1.4),
    ("Hồ", 1.3),
    ("Ngô", 1.3),
    ("Dương", 1),
    ("Lý", 0.5),
)
MIDDLE_M: Final = ("Văn", "Đức", "Minh", "Quốc", "Hữu", "Thành", "Công", "Xuân")
MIDDLE_F: Final = ("Thị", "Ngọc", "Thu", "Thanh", "Kim", "Mai", "Bích", "Hồng")
GIVEN_M: Final = (
    "An",
    "Bình",
    "Cường",
    "Dũng",
    "Hải",
    "Hùng",
    "Khang",
    "Long",
    "Nam",
    "Phong",
    "Quân",
    "Sơn",
    "Tài",
    "Thắng",
    "Trung",
    "Tuấn",
    "Việt",
    "Vinh",
)
GIVEN_F: Final = (
    "Anh",
    "Chi",
    "Dung",
    "Giang",
    "Hà",
    "Hạnh",
    "Hoa",
    "Hương",
    "Lan",
    "Linh",
    "Mai",
    "Nga",
    "Ngân",
    "Phương",
    "Thảo",
    "Trang",
    "Vân",
    "Yến",
)
_SUR_NAMES = [s for s, _ in SURNAMES]
_SUR_CUM = list(accumulate(w for _, w in SURNAMES))

# Vietnam 2019 census age structure, 5-year bands to 80+ (share of population)
AGE_BANDS: Final = (
    0.081,
    0.083,
    0.076,
    0.066,
    0.071,
    0.081,
    0.080,
    0.078,
    0.073,
    0.067,
    0.062,
    0.056,
    0.045,
    0.033,
    0.021,
    0.014,
    0.013,
)
_AGE_CUM = list(accumulate(AGE_BANDS))

ETHNIC_MIX: Final = (
    ("01", 85.3),
    ("02", 1.9),
    ("03", 1.8),
    ("06", 1.5),
    ("05", 1.4),
    ("04", 0.8),
    ("07", 1.1),
    ("08", 1.3),
    ("09", 0.9),
)
_ETH = [e for e, _ in ETHNIC_MIX]
_ETH_CUM = list(accumulate(w for _, w in ETHNIC_MIX))


def sample_age_days(rng: random.Random) -> int:
    """An age in days drawn from the census pyramid."""
    band = _bisect(_AGE_CUM, rng.random() * _AGE_CUM[-1])
    years = band * 5 + rng.random() * (5 if band < len(AGE_BANDS) - 1 else 15)
    return int(years * 365.25)


def _bisect(cum: list[float], x: float) -> int:
    lo, hi = 0, len(cum) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if cum[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


def health_id(station: str, idx: int) -> str:
    """The synthetic 10-digit health id of person ``idx`` of ``station`` (unique)."""
    return f"{int(station) * 100_000 + idx + 1:010d}"


def citizen_id(province: str, female: bool, birth: date, rng: random.Random) -> str:
    """A CCCD consistent with sex and birth year (0 + province + century/sex + yy + 6)."""
    century = (birth.year - 1900) // 100
    return f"0{province}{century * 2 + int(female)}{birth.year % 100:02d}{rng.randrange(10**6):06d}"


def person_data(
    station: str,
    province: str,
    idx: int,
    female: bool,
    birth: date,
    rng: random.Random,
    on: date,
) -> dict[str, Any]:
    """A person/v1 after-image, as registered on ``on``."""
    surname = _SUR_NAMES[_bisect(_SUR_CUM, rng.random() * _SUR_CUM[-1])]
    middle = rng.choice(MIDDLE_F if female else MIDDLE_M)
    given = rng.choice(GIVEN_F if female else GIVEN_M)
    data: dict[str, Any] = {
        "health_id": health_id(station, idx),
        "full_name": f"{surname} {middle} {given}",
        "sex": "female" if female else "male",
        "birth_date": birth.isoformat(),
        "ethnicity": _ETH[_bisect(_ETH_CUM, rng.random() * _ETH_CUM[-1])],
        "residence_commune": station,
    }
    if birth.year >= 1920 and (on - birth) > timedelta(days=14 * 365):
        data["citizen_id"] = citizen_id(province, female, birth, rng)
    if rng.random() < 0.7 and (on - birth) > timedelta(days=12 * 365):
        data["phone"] = f"0{rng.choice((3, 5, 7, 8, 9))}{rng.randrange(10**8):08d}"
    if rng.random() < 0.8:
        data["street_address"] = f"Thôn {rng.randrange(1, 20)}, số {rng.randrange(1, 300)}"
    return data


# --- clinical mixes ------------------------------------------------------------------------

CHILD_DX: Final = (
    ("J06", 30),
    ("J00", 15),
    ("A09", 12),
    ("R50", 10),
    ("J20", 8),
    ("H66", 5),
    ("L30", 5),
    ("B86", 3),
    ("J18", 3),
    ("E44", 2),
    ("B01", 2),
    ("R05", 5),
)
ADULT_DX: Final = (
    ("J06", 18),
    ("I10", 16),
    ("K29", 9),
    ("M54", 8),
    ("E11", 6),
    ("J20", 5),
    ("A09", 4),
    ("Z00", 5),
    ("R51", 4),
    ("N39", 3),
    ("J02", 4),
    ("L02", 2),
    ("H10", 2),
    ("M79", 3),
    ("J44", 2),
    ("E78", 2),
    ("D50", 2),
    ("T14", 2),
    ("F32", 1),
    ("I20", 1),
)
DEATH_CAUSES_OLD: Final = (
    ("I64", 25),
    ("I21", 12),
    ("I50", 8),
    ("J44", 10),
    ("E11", 6),
    ("J18", 8),
    ("R99", 15),
    ("I63", 8),
    ("A15", 2),
    ("A41", 3),
)
DEATH_CAUSES_YOUNG: Final = (
    ("V89", 30),
    ("W74", 10),
    ("S06", 10),
    ("X59", 10),
    ("R99", 15),
    ("A41", 5),
    ("B20", 5),
    ("T63", 3),
    ("I21", 6),
    ("G40", 6),
)
DEATH_CAUSES_INFANT: Final = (
    ("P07", 35),
    ("P21", 20),
    ("P36", 15),
    ("J18", 15),
    ("A09", 5),
    ("R99", 10),
)
DISEASES: Final = (
    ("DENGUE", 38),
    ("HFMD", 22),
    ("VARICELLA", 9),
    ("COVID19", 8),
    ("MUMPS", 5),
    ("MEASLES", 3),
    ("RUBELLA", 2),
    ("SHIGELLOSIS", 2),
    ("MALARIA", 1),
    ("PERTUSSIS", 1.5),
    ("TYPHOID", 1),
    ("HEPATITIS_VIRAL", 2),
    ("JAPANESE_ENCEPHALITIS", 0.5),
    ("RABIES", 0.2),
    ("DIPHTHERIA", 0.3),
    ("MENINGOCOCCAL", 0.2),
    ("INFLUENZA_A_H5N1", 0.05),
)

# Infant EPI schedule: (vaccine, dose, due age in days)
INFANT_SCHEDULE: Final = (
    ("HEPB_BIRTH", 1, 0),
    ("BCG", 1, 3),
    ("DTP_HEPB_HIB", 1, 60),
    ("OPV", 1, 60),
    ("DTP_HEPB_HIB", 2, 90),
    ("OPV", 2, 90),
    ("DTP_HEPB_HIB", 3, 120),
    ("OPV", 3, 120),
    ("IPV", 1, 150),
    ("IPV", 2, 270),
    ("MEASLES", 1, 270),
)
assert all(v in codes.VACCINES for v, _, _ in INFANT_SCHEDULE)


class Mix:
    """A weighted choice table."""

    def __init__(self, table: tuple[tuple[str, float], ...]) -> None:
        self.items = [k for k, _ in table]
        self.cum: list[float] = []
        acc = 0.0
        for _, w in table:
            acc += w
            self.cum.append(acc)

    def pick(self, rng: random.Random) -> str:
        return self.items[_bisect(self.cum, rng.random() * self.cum[-1])]
