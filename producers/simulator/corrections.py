"""Corrections and deletions: which records get a later new version, and what it is.

A record picked for a follow-up (at the rate ``correction_rate + deletion_rate`` of the
config) gets, one to six weeks after it was entered, either a corrected after-image
(:func:`correct`) or, for the record types a station may delete, a deletion. A correction
changes what was wrong (a phone number, a diagnosis, a lot number …), not the service date,
so the record stays in its month. :class:`Revisions` keeps the versions of
those records (and only those: the others never get a second version).
"""

from __future__ import annotations

import random
from typing import Any, Final

from producers.config import SimulationConfig

DELETABLE: Final = frozenset({"encounter", "immunization", "disease_case", "antenatal_visit"})

FollowupAction = tuple[str, str, str]  # ("correct" | "delete", record type, record id)


class Revisions:
    """The current version (and after-image) of every record that may change again."""

    def __init__(self, cfg: SimulationConfig) -> None:
        self.cfg = cfg
        self.versions: dict[tuple[str, str], tuple[int, dict[str, Any] | None]] = {}
        self.deleted: set[tuple[str, str]] = set()

    def upsert(
        self,
        rt: str,
        rid: str,
        data: dict[str, Any],
        d: int,
        rng: random.Random,
        *,
        followups: bool,
    ) -> tuple[int, tuple[int, FollowupAction] | None]:
        """The version of an upsert of ``data`` entered on day ``d``, and the follow-up to schedule
        (its day and action) if this first version was picked for one."""
        key = (rt, rid)
        prev = self.versions.get(key)
        version = prev[0] + 1 if prev else 1
        if prev is not None or (
            followups and rng.random() < self.cfg.correction_rate + self.cfg.deletion_rate
        ):
            self.versions[key] = (version, data)
        if followups and prev is None and key in self.versions:
            later = d + rng.randint(7, 42)
            if rt in DELETABLE and rng.random() < self.cfg.deletion_rate / (
                self.cfg.correction_rate + self.cfg.deletion_rate
            ):
                return version, (later, ("delete", rt, rid))
            return version, (later, ("correct", rt, rid))
        return version, None

    def followup(
        self, kind: str, rt: str, rid: str, rng: random.Random
    ) -> tuple[str, int, dict[str, Any] | None] | None:
        """(op, version, data) of a scheduled follow-up, or ``None`` if the record is gone."""
        key = (rt, rid)
        if key in self.deleted or key not in self.versions:
            return None
        version, data = self.versions[key]
        if kind == "delete":
            self.deleted.add(key)
            self.versions[key] = (version + 1, None)
            return "delete", version + 1, None
        assert data is not None
        new = correct(rt, data, rng)
        self.versions[key] = (version + 1, new)
        return "upsert", version + 1, new


def correct(rt: str, data: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """A plausible corrected after-image (a new version of the same record)."""
    new = dict(data)
    if rt == "person":
        new["phone"] = f"09{rng.randrange(10**8):08d}"
    elif rt == "encounter":
        new["diagnoses"] = (
            [*data["diagnoses"][:1], "Z00"] if data["diagnoses"][0] != "Z00" else ["J06"]
        )
    elif rt == "immunization":
        new["lot_number"] = f"C{rng.randrange(10**6):06d}"
    elif rt == "chronic_followup":
        new["on_treatment"] = not data.get("on_treatment", False)
    elif rt == "chronic_enrolment":
        new["treatment_start_date"] = data["enrolment_date"]  # treatment recorded late
    elif rt == "antenatal_visit":
        new["gestational_weeks"] = max(1, min(45, data["gestational_weeks"] + 1))
    elif rt == "birth":
        new["weight_grams"] = data.get("weight_grams", 3000) + 50
    elif rt == "disease_case":
        new["classification"] = "confirmed"
    elif rt == "staff_snapshot":
        counts = dict(data["counts"])
        counts["nurse"] += 1
        new["counts"] = counts
    elif rt == "bed_snapshot":
        new["beds_occupied"] = 0
    elif rt in ("equipment_snapshot", "stock_snapshot"):
        new["items"] = list(data["items"])[:-1] or list(data["items"])
    return new
