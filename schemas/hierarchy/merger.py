"""The 2025 province merger (Resolution 202/2025/QH15): 63 old provinces → 34 new ones.

Read from the committed ``schemas/reference/province_merger_2025.csv`` (source note in the
README there). Codes are two-digit GSO province codes as strings.
"""

from __future__ import annotations

import csv
from datetime import date
from functools import cache

from schemas.hierarchy.core import reference_dir
from schemas.hierarchy.exceptions import UnknownUnit

__all__ = ["REORGANISATION_DATE", "province_merger", "restate_province"]

#: The new provincial (and commune) governments started work on this day.
REORGANISATION_DATE = date(2025, 7, 1)


@cache
def province_merger() -> dict[str, str]:
    """``{old_province_code: new_province_code}`` for all 63 pre-July-2025 provinces."""
    path = reference_dir() / "province_merger_2025.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        return {r["old_province_code"]: r["new_province_code"] for r in csv.DictReader(fh)}


def restate_province(code: str) -> str:
    """The 2025 province that province ``code`` belongs to now.

    Works for old codes (``"10"`` Lào Cai → ``"15"``) and new ones (each new code is also
    the code of one of its members, so it maps to itself).
    """
    mapping = province_merger()
    try:
        return mapping[code]
    except KeyError:
        raise UnknownUnit(f"no province {code!r} in the 2025 merger table", code=code) from None
