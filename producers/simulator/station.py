"""One simulated commune health station: its people and what happens to them, day by day.

Pure and deterministic: everything comes from the station's own ``random.Random``. The
station produces :class:`Spec` items (a change without id, seq, or signature); the engine
(:mod:`producers.simulator.engine`) numbers, signs and encodes them. This module is the
activity model (who is registered, vaccinated, followed up, pregnant, ill, dies, on which
day); the records themselves are built by :mod:`producers.simulator.clinical`,
:mod:`producers.simulator.resources` and :mod:`producers.simulator.corrections`.
"""

from __future__ import annotations

import math
import random
from array import array
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from producers.config import SimulationConfig
from producers.simulator import clinical, people
from producers.simulator.corrections import Revisions
from producers.simulator.people import health_id, person_data
from producers.simulator.resources import Resources
from producers.simulator.spec import VN_OFFSET, Spec, local_date
from schemas import codes

MAX_PEOPLE: Final = 90_000  # person index space per station (health id = station * 1e5 + idx)
BAD_PERSON_BASE: Final = 95_000


def poisson(rng: random.Random, lam: float) -> int:
    """A Poisson draw (normal approximation above 30)."""
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


class StationSim:
    """People, schedules and resources of one station."""

    def __init__(
        self,
        code: str,
        province: str,
        population: int,
        cfg: SimulationConfig,
        start: date,
        days: int,
    ) -> None:
        self.code = code
        self.province = province if province in codes.PROVINCE_CODES else "01"
        self.cfg = cfg
        self.start = start
        self.days = days
        self.rng = random.Random(f"{cfg.seed}:{code}")
        rng = self.rng
        n = min(MAX_PEOPLE // 2, max(1, round(population * cfg.scale)))
        self.population = population
        self.n_people = n
        start_ord = start.toordinal()
        self.birth = array("i", (start_ord - people.sample_age_days(rng) for _ in range(n)))
        self.female = bytearray(int(rng.random() < 0.5) for _ in range(n))
        self.alive = bytearray(b"\x01" * n)
        # a woman has at most one pregnancy per simulation: antenatal visit ids
        # (<health id>:anc<n>) must not be reused by a second pregnancy
        self.pregnant: set[int] = set()
        self.registered = bytearray(n)
        self.next_idx = n
        self.sched: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
        self.revisions = Revisions(cfg)
        self.local = 0
        act = cfg.activity_scale
        # registration days (front-loaded: paper books migrated early)
        for idx in range(n):
            if rng.random() < cfg.registration_share:
                self.at(int(days * rng.random() ** 2), ("register", idx))
        # infants: EPI doses due in the window
        for idx in range(n):
            age0 = start_ord - self.birth[idx]
            if age0 < 300:
                self.schedule_infant(idx, self.birth[idx])
        # chronic patients: monthly follow-up
        for idx in range(n):
            if start_ord - self.birth[idx] < 40 * 365:
                continue
            for cond, share, pctl in (
                ("hypertension", cfg.hypertension_share_40plus, 0.55),
                ("diabetes", cfg.diabetes_share_40plus, 0.45),
            ):
                if rng.random() < share * min(act, 1.0):
                    offset = rng.randrange(30)
                    controlled_p = min(0.95, max(0.05, rng.gauss(pctl, 0.2)))
                    for d in range(offset, days, 30):
                        self.at(d, ("chronic", idx, cond, controlled_p))
        # pregnancies in progress: antenatal visits, then the birth
        pregnant = poisson(rng, n * cfg.birth_rate * 0.75 * act)
        for _ in range(pregnant):
            woman = self._woman(rng)
            if woman is not None:
                self._pregnancy(woman, rng.randint(4, 40), 0)
        self.resources = Resources.draw(rng)
        # monthly resource snapshots (on the 25th, or the last day of a short window)
        for d in range(days):
            day = start + timedelta(days=d)
            if day.day == 25 or (d == days - 1 and day.day < 25 and d >= 20):
                self.at(d, ("snapshots",))

    # ---- scheduling helpers ---------------------------------------------------------
    def at(self, d: int, action: tuple[Any, ...]) -> None:
        """Schedule ``action`` on day ``d`` (ignored outside the simulated window)."""
        if 0 <= d < self.days:
            self.sched[d].append(action)

    def _woman(self, rng: random.Random) -> int | None:
        start_ord = self.start.toordinal()
        for _ in range(30):
            idx = rng.randrange(self.n_people)
            age = (start_ord - self.birth[idx]) / 365.25
            if self.female[idx] and 18 <= age <= 42 and self.alive[idx]:
                if idx in self.pregnant:
                    continue
                self.pregnant.add(idx)
                return idx
        return None

    def _pregnancy(self, idx: int, weeks_at_start: int, d0: int) -> None:
        rng = self.rng
        visits_so_far = max(0, (weeks_at_start - 6) // 9)
        d, weeks, number = d0 + rng.randrange(0, 21), weeks_at_start, visits_so_far
        due = d0 + int((39.5 - weeks_at_start) * 7) + rng.randint(-7, 7)
        while d < min(due, self.days):
            number += 1
            gw = weeks + (d - d0) // 7
            if gw > 42:
                break
            edd = self.start + timedelta(days=due)
            self.at(d, ("anc", idx, number, max(1, gw), edd))
            d += rng.randint(28, 42)
        self.at(max(due, d0), ("birth", idx))

    def schedule_infant(self, idx: int, birth_ord: int) -> None:
        """The EPI doses of infant ``idx`` (a few are missed), each a little late."""
        rng = self.rng
        start_ord = self.start.toordinal()
        for vaccine, dose, due_age in people.INFANT_SCHEDULE:
            if rng.random() > 0.96:
                continue  # missed dose
            d = birth_ord + due_age + int(rng.expovariate(1 / 6)) - start_ord
            self.at(d, ("dose", idx, vaccine, dose))

    # ---- people -----------------------------------------------------------------------
    def add_person(self, birth_ord: int, female: bool) -> int | None:
        """A newborn's person index (``None`` once the index space is full)."""
        if self.next_idx >= BAD_PERSON_BASE - 1:
            return None
        idx = self.next_idx
        self.next_idx += 1
        self.birth.append(birth_ord)
        self.female.append(int(female))
        self.alive.append(1)
        self.registered.append(0)
        return idx

    def ensure_registered(self, idx: int, t: datetime, d: int, out: list[Spec]) -> str:
        """Person ``idx``'s health id; registers them (5 minutes before ``t``) if needed."""
        hid = health_id(self.code, idx)
        if not self.registered[idx]:
            self.registered[idx] = 1
            day = (t + VN_OFFSET).date()
            data = person_data(
                self.code, self.province, idx, bool(self.female[idx]),
                date.fromordinal(self.birth[idx]), self.rng, day,
            )  # fmt: skip
            out.append(self.spec(t - timedelta(minutes=5), "person", hid, data, d))
        return hid

    def alive_person(self, rng: random.Random) -> int:
        """A random person, almost always a living one."""
        for _ in range(20):
            idx = rng.randrange(self.next_idx)
            if self.alive[idx]:
                return idx
        return rng.randrange(self.next_idx)

    # ---- changes ----------------------------------------------------------------------
    def time_on(self, d: int, rng: random.Random) -> datetime:
        """A UTC time during the opening hours (07:00-17:00 local) of day ``d``."""
        day = self.start + timedelta(days=d)
        secs = rng.randrange(7 * 3600, 17 * 3600)
        local = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(seconds=secs)
        return local - VN_OFFSET

    def local_id(self, prefix: str) -> str:
        """A new station-local record number."""
        self.local += 1
        return f"{prefix}{self.local}"

    def spec(
        self,
        t: datetime,
        rt: str,
        rid: str,
        data: dict[str, Any],
        d: int,
        *,
        followups: bool = True,
    ) -> Spec:
        """An upsert of ``data``; may schedule its later correction or deletion."""
        version, followup = self.revisions.upsert(rt, rid, data, d, self.rng, followups=followups)
        if followup is not None:
            self.at(*followup)
        return Spec(t, rt, rid, "upsert", version, data, self.signer())

    def signer(self) -> int:
        """Which of the station's signers signs the next change."""
        return self.rng.randint(1, self.cfg.signers_per_station)

    # ---- the day ----------------------------------------------------------------------
    def day(self, d: int) -> list[Spec]:
        """Every change of day ``d`` (0-based), in time order."""
        rng = self.rng
        cfg = self.cfg
        act = cfg.activity_scale
        out: list[Spec] = []
        n = self.n_people
        # outpatient visits
        for _ in range(poisson(rng, n * cfg.outpatient_rate * act / 365)):
            clinical.visit(self, self.alive_person(rng), d, out)
        # deaths
        for _ in range(poisson(rng, n * cfg.death_rate * act / 365)):
            self._death(d, out)
        # notifiable disease cases
        for _ in range(poisson(rng, n * cfg.disease_rate * act / 365)):
            clinical.disease_case(self, self.alive_person(rng), d, out)
        # new pregnancies: first antenatal visit at 6-12 weeks
        for _ in range(poisson(rng, n * cfg.birth_rate * act / 365)):
            idx = self._woman(rng)
            if idx is not None:
                self._pregnancy(idx, rng.randint(6, 12), d)
        for action in self.sched.pop(d, ()):
            self._do(action, d, out)
        out.sort(key=lambda s: s.time)
        return out

    def _death(self, d: int, out: list[Spec]) -> None:
        rng = self.rng
        for _ in range(40):  # older people are more likely to be the one
            idx = self.alive_person(rng)
            age = (self.start.toordinal() + d - self.birth[idx]) / 365.25
            if rng.random() < min(1.0, math.exp((age - 80) / 11)):
                break
        clinical.death(self, idx, self.time_on(d, rng), d, out)

    def _do(self, action: tuple[Any, ...], d: int, out: list[Spec]) -> None:
        kind = action[0]
        t = self.time_on(d, self.rng)
        if kind == "register":
            self.ensure_registered(action[1], t, d, out)
        elif kind == "dose":
            _, idx, vaccine, dose = action
            if self.alive[idx]:
                clinical.immunization(self, idx, vaccine, dose, t, d, out)
        elif kind == "chronic":
            _, idx, cond, controlled_p = action
            if self.alive[idx]:
                clinical.chronic(self, idx, cond, controlled_p, t, d, out)
        elif kind == "anc":
            _, idx, number, gw, edd = action
            if self.alive[idx]:
                clinical.antenatal(self, idx, number, gw, edd, t, d, out)
        elif kind == "birth":
            if self.alive[action[1]]:
                clinical.birth(self, action[1], t, d, out)
        elif kind == "infant_death":
            idx = action[1]
            if self.alive[idx]:
                clinical.death(self, idx, t, d, out)
        elif kind == "snapshots":
            self._snapshots(t, d, out)
        elif kind in ("correct", "delete"):
            self._followup(kind, action[1], action[2], t, out)

    def _snapshots(self, t: datetime, d: int, out: list[Spec]) -> None:
        for rt, rid, data in self.resources.snapshots(self.code, local_date(t), self.rng):
            out.append(self.spec(t + timedelta(seconds=len(out)), rt, rid, data, d))

    def _followup(self, kind: str, rt: str, rid: str, t: datetime, out: list[Spec]) -> None:
        change = self.revisions.followup(kind, rt, rid, self.rng)
        if change is not None:
            op, version, data = change
            out.append(Spec(t, rt, rid, op, version, data, self.signer()))
