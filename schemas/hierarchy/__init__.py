"""The effective-dated facility/administrative hierarchy: station → district → province →
national, with Vietnam's real units (63 provinces before 2025-07-01, 34 after) as default
reference data, population denominators and the 2025 province merger. Pure Python.

    >>> from datetime import date
    >>> h = Hierarchy.default()
    >>> h.lookup("00001", date(2025, 1, 1)).province.code
    '01'
"""

from schemas.hierarchy.core import Hierarchy, reference_dir
from schemas.hierarchy.exceptions import (
    HierarchyError,
    InvalidReferenceData,
    NoPopulation,
    StationClosed,
    StationNotYetOpen,
    UnknownStation,
    UnknownUnit,
)
from schemas.hierarchy.merger import REORGANISATION_DATE, province_merger, restate_province
from schemas.hierarchy.model import VN_TZ, Link, Placement, Tier, Unit, UnitRef, as_local_date
from schemas.hierarchy.population import PopulationRow, apportion, hash_weight

__all__ = [
    "REORGANISATION_DATE",
    "VN_TZ",
    "Hierarchy",
    "HierarchyError",
    "InvalidReferenceData",
    "Link",
    "NoPopulation",
    "Placement",
    "PopulationRow",
    "StationClosed",
    "StationNotYetOpen",
    "Tier",
    "Unit",
    "UnitRef",
    "UnknownStation",
    "UnknownUnit",
    "apportion",
    "as_local_date",
    "hash_weight",
    "province_merger",
    "reference_dir",
    "restate_province",
]
