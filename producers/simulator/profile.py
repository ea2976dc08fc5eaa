"""How one station differs from another: a remote mountain commune vs a lowland ward.

``remote`` in [0, 1] is drawn per station from the commune's kind (wards and towns near 0,
rural communes spread towards 1) and the station's own random draw; every behaviour that
varies between communes in Vietnam's reports is a function of it: how many deliveries happen
at a facility and with a skilled attendant, how many doses are missed or late, how often
pregnant women come for antenatal care, how well chronic patients are controlled and how
often they skip a visit, how records are entered (same day, days later, paper registers
back-entered months later) and how late the monthly report is submitted. Pure.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["StationProfile"]


@dataclass(frozen=True, slots=True)
class StationProfile:
    """A station's behaviour, from its remoteness (0 lowland ward … 1 remote commune)."""

    remote: float

    @classmethod
    def draw(cls, kind: str, rng: random.Random) -> StationProfile:
        if kind in ("phường", "thị trấn"):
            remote = rng.uniform(0.0, 0.25)
        else:
            remote = min(1.0, max(0.0, rng.betavariate(2.2, 1.6)))
        return cls(round(remote, 3))

    # -- care --------------------------------------------------------------------------------
    @property
    def facility_birth(self) -> float:
        return 0.98 - 0.40 * self.remote

    @property
    def skilled_at_home(self) -> float:
        """A home delivery attended by a health worker (rare, remote areas)."""
        return 0.15 * (1 - self.remote)

    @property
    def missed_dose(self) -> float:
        return 0.02 + 0.14 * self.remote

    @property
    def dose_delay_days(self) -> float:
        """Mean delay of a dose after it is due."""
        return 5 + 25 * self.remote

    @property
    def anc_gap_days(self) -> tuple[int, int]:
        return (28, 42 + int(45 * self.remote))

    @property
    def chronic_control(self) -> float:
        return 0.62 - 0.25 * self.remote

    @property
    def missed_visit(self) -> float:
        return 0.08 + 0.30 * self.remote

    @property
    def lost_to_follow_up(self) -> float:
        return 0.04 + 0.12 * self.remote

    @property
    def outpatient_factor(self) -> float:
        return 1.25 - 0.5 * self.remote

    @property
    def birth_weight_mean(self) -> float:
        return 3150 - 280 * self.remote

    # -- data entry --------------------------------------------------------------------------
    def entry_delay(self, rng: random.Random) -> int:
        """Days between the service and its entry: mostly the same day, some days later,
        a few from paper registers weeks to months later."""
        x = rng.random()
        same_day = 0.86 - 0.30 * self.remote
        back_entry = 0.015 + 0.05 * self.remote
        if x < same_day:
            return 0
        if x < 1 - back_entry:
            return 1 + int(rng.expovariate(1 / (2 + 6 * self.remote)))
        return rng.randint(30, 120)

    def submission_delay(self, rng: random.Random) -> int | None:
        """Calendar days after the month's end until the head submits (None: not at all)."""
        x = rng.random()
        never = 0.01 + 0.05 * self.remote
        late = 0.08 + 0.35 * self.remote
        if x < never:
            return None
        if x < never + late:
            return rng.randint(9, 30)
        return rng.randint(1, 6)
