"""One simulated commune health station: its people and what happens to them, day by day.

Pure and deterministic: everything comes from the station's own ``random.Random``. The
station produces :class:`Spec` items (a change without id, seq, or signature); the engine
(:mod:`producers.simulator.engine`) numbers, signs and encodes them. This module is the
activity model (who is registered, vaccinated, followed up, pregnant, ill, dies, on which
day, and when each record is *entered*); the records themselves are built by
:mod:`producers.simulator.clinical`, the chronic register by
:mod:`producers.simulator.chronic`, resources by :mod:`producers.simulator.resources` and
corrections by :mod:`producers.simulator.corrections`.

Service date vs entry: a record describes something that happened on day ``d`` (its service
date); it is entered ``delay`` days later (:class:`~producers.simulator.profile.
StationProfile.entry_delay`): the same day mostly, days later sometimes, from a paper register
months later rarely. Records entered after the simulated window are never sent. With
``history`` the station starts with its past: people registered years ago, infants half way
through their schedule, pregnancies with earlier antenatal visits, a chronic register with
patients enrolled long ago — the past records are back-entered during the first weeks.
"""

from __future__ import annotations

import math
import random
from array import array
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from producers.config import SimulationConfig
from producers.simulator import chronic, clinical, people
from producers.simulator.corrections import Revisions
from producers.simulator.people import health_id, person_data
from producers.simulator.profile import StationProfile
from producers.simulator.resources import Resources
from producers.simulator.spec import VN_OFFSET, Spec, local_date
from schemas import codes

MAX_PEOPLE: Final = 90_000  # person index space per station (health id = station * 1e5 + idx)
BAD_PERSON_BASE: Final = 95_000
MIGRATION_DAYS: Final = 21  # paper books and registers are back-entered in the first weeks


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
        kind: str = "xã",
    ) -> None:
        self.code = code
        self.province = province if province in codes.PROVINCE_CODES else "01"
        self.cfg = cfg
        self.start = start
        self.days = days
        self.rng = random.Random(f"{cfg.seed}:{code}")
        rng = self.rng
        self.profile = StationProfile.draw(kind, rng)
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
        self.registered_on: dict[int, int] = {}  # idx -> registration day (ordinal), history
        self.next_idx = n
        self.sched: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
        self.pending: dict[int, list[Spec]] = defaultdict(list)  # entry day -> specs
        self.today: int | None = None  # the day being simulated (its pending list is taken)
        self.revisions = Revisions(cfg)
        self.local = 0
        self._register_people()
        for idx in range(n):  # infants: the EPI doses of their first year
            if start_ord - self.birth[idx] < 365:
                self.schedule_infant(idx, self.birth[idx])
        chronic.enrol(self)
        self._pregnancies_in_progress()
        self.resources = Resources.draw(rng)
        for d in range(days):  # monthly resource snapshots (the 25th, or a short window's end)
            day = start + timedelta(days=d)
            if day.day == 25 or (d == days - 1 and day.day < 25 and d >= 20):
                self.at(d, ("snapshots",))
        self._schedule_submissions()

    # ---- set-up -----------------------------------------------------------------------------
    def _register_people(self) -> None:
        """Registration days (front-loaded: paper books are migrated early); with history
        most people were registered (their record opened) years before."""
        rng, cfg, days = self.rng, self.cfg, self.days
        share = cfg.registration_share * (1 - 0.15 * self.profile.remote)
        start_ord = self.start.toordinal()
        for idx in range(self.n_people):
            if rng.random() >= share:
                continue
            entry = int(days * rng.random() ** 2)
            if cfg.history:
                earliest = max(self.birth[idx], start_ord - 5 * 365)
                opened = rng.randint(earliest, max(earliest, start_ord + entry))
                self.registered_on[idx] = min(opened, start_ord + entry)
            self.at(entry, ("register", idx))

    def _pregnancies_in_progress(self) -> None:
        rng = self.rng
        lam = self.n_people * self.cfg.birth_rate * 0.75 * self.cfg.activity_scale
        pregnant = poisson(rng, lam)
        for _ in range(pregnant):
            woman = self._woman(rng)
            if woman is not None:
                self._pregnancy(woman, rng.randint(4, 40), 0)

    def _schedule_submissions(self) -> None:
        """The station head submits each month that ends in the window, some days after its
        end: mostly in time, some late, a few never (the profile)."""
        if not self.cfg.submissions:
            return
        end = self.start + timedelta(days=self.days - 1)
        last_day = date(self.start.year, self.start.month, 1) - timedelta(days=1)
        while last_day <= end:  # the last day of each month, from the one before the window
            delay = self.profile.submission_delay(self.rng)
            if delay is not None:
                self.at((last_day - self.start).days + delay, ("submit", f"{last_day:%Y-%m}"))
            first = last_day + timedelta(days=1)
            last_day = (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(
                days=1
            )

    # ---- scheduling helpers -----------------------------------------------------------------
    def at(self, d: int, action: tuple[Any, ...]) -> None:
        """Schedule ``action`` on day ``d`` (ignored outside the simulated window)."""
        if 0 <= d < self.days:
            self.sched[d].append(action)

    def migration_day(self) -> int:
        """When a past record is back-entered: one of the first weeks of the window."""
        return self.rng.randrange(min(self.days, MIGRATION_DAYS))

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
        lo, hi = self.profile.anc_gap_days
        number = 0
        first_gw = rng.randint(6, 13)
        if weeks_at_start > first_gw:  # the visits before the window: history
            gw = first_gw
            while gw < weeks_at_start:
                number += 1
                d = d0 - (weeks_at_start - gw) * 7
                if self.cfg.history:
                    t = self.time_on(d, rng)
                    edd = self.start + timedelta(days=int((39.5 - weeks_at_start) * 7))
                    clinical.antenatal(
                        self, idx, number, gw, edd, t, d, [], self.migration_day() - d
                    )
                gw += rng.randint(lo, hi) // 7
        d, weeks = d0 + rng.randrange(0, 21), weeks_at_start
        due = d0 + int((39.5 - weeks_at_start) * 7) + rng.randint(-7, 7)
        while d < min(due, self.days):
            number += 1
            gw = weeks + (d - d0) // 7
            if gw > 42:
                break
            edd = self.start + timedelta(days=due)
            self.at(d, ("anc", idx, number, max(1, gw), edd))
            d += rng.randint(lo, hi)
        self.at(max(due, d0), ("birth", idx))

    def schedule_infant(self, idx: int, birth_ord: int) -> None:
        """The EPI doses of infant ``idx`` (a few missed, each a little late); doses due
        before the window are back-entered (history)."""
        rng = self.rng
        start_ord = self.start.toordinal()
        for vaccine, dose, due_age in people.INFANT_SCHEDULE:
            if rng.random() < self.profile.missed_dose:
                continue
            lag = int(rng.expovariate(1 / self.profile.dose_delay_days))
            d = birth_ord + due_age + lag - start_ord
            if d >= 0:
                self.at(d, ("dose", idx, vaccine, dose))
            elif self.cfg.history:
                t = self.time_on(d, rng)
                entry = self.migration_day()
                clinical.immunization(self, idx, vaccine, dose, t, d, [], entry - d)

    # ---- people -----------------------------------------------------------------------------
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

    def ensure_registered(
        self, idx: int, t: datetime, d: int, out: list[Spec], delay: int = 0
    ) -> str:
        """Person ``idx``'s health id; registers them (5 minutes before ``t``, entered with the
        same delay as the record that needs them) if needed."""
        hid = health_id(self.code, idx)
        if not self.registered[idx]:
            self.registered[idx] = 1
            day = (t + VN_OFFSET).date()
            opened = date.fromordinal(self.registered_on.get(idx, day.toordinal()))
            data = person_data(
                self.code, self.province, idx, bool(self.female[idx]),
                date.fromordinal(self.birth[idx]), self.rng, day,
            )  # fmt: skip
            data["registration_date"] = max(opened, date.fromordinal(self.birth[idx])).isoformat()
            self.emit(t - timedelta(minutes=5), d, delay, "person", hid, data, out)
        return hid

    def alive_person(self, rng: random.Random) -> int:
        """A random person, almost always a living one."""
        for _ in range(20):
            idx = rng.randrange(self.next_idx)
            if self.alive[idx]:
                return idx
        return rng.randrange(self.next_idx)

    # ---- changes ----------------------------------------------------------------------------
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

    def emit(
        self,
        t: datetime,
        d: int,
        delay: int,
        rt: str,
        rid: str,
        data: dict[str, Any],
        out: list[Spec],
        *,
        followups: bool = True,
        signer_n: int | None = None,
    ) -> None:
        """An upsert of ``data`` (service time ``t`` on day ``d``), entered ``delay`` days
        later: into ``out`` when that is today, else kept for its entry day (dropped when
        that is after the window). May schedule its correction or deletion weeks later."""
        e = d + delay
        if self.today is not None and d < self.today and e <= self.today:
            # made before today and due by today, whose list is taken already (a visit
            # before a pregnancy first seen today, back-entered on a migration day past):
            # entered tomorrow, never registered and then lost (its deletion came alone)
            e = self.today + 1
        if e >= self.days or e < 0:
            return
        entry = t if delay == 0 else self.time_on(e, self.rng)
        version, followup = self.revisions.upsert(rt, rid, data, e, self.rng, followups=followups)
        if followup is not None:
            self.at(*followup)
        spec = Spec(entry, rt, rid, "upsert", version, data, signer_n or self.signer())
        (out if e == d else self.pending[e]).append(spec)

    def signer(self) -> int:
        """Which of the station's signers signs the next change."""
        return self.rng.randint(1, self.cfg.signers_per_station)

    # ---- the day ----------------------------------------------------------------------------
    def day(self, d: int) -> list[Spec]:
        """Every change entered on day ``d`` (0-based), in time order."""
        rng = self.rng
        cfg = self.cfg
        act = cfg.activity_scale
        self.today = d
        out: list[Spec] = self.pending.pop(d, [])
        n = self.n_people
        rate = cfg.outpatient_rate * self.profile.outpatient_factor
        for _ in range(poisson(rng, n * rate * act / 365)):
            clinical.visit(self, self.alive_person(rng), d, out)
        for _ in range(poisson(rng, n * cfg.death_rate * act / 365)):
            self._death(d, out)
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
        elif kind in ("chronic", "enrol"):
            chronic.act(self, action, t, d, out)
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
        elif kind == "submit":
            data = {"period": action[1]}
            rid = f"{self.code}:submission:{action[1]}"
            self.emit(t, d, 0, "report_submission", rid, data, out, followups=False, signer_n=1)
        elif kind in ("correct", "delete"):
            self._followup(kind, action[1], action[2], t, out)

    def _snapshots(self, t: datetime, d: int, out: list[Spec]) -> None:
        for rt, rid, data in self.resources.snapshots(self.code, local_date(t), self.rng):
            self.emit(t + timedelta(seconds=len(out)), d, 0, rt, rid, data, out)

    def _followup(self, kind: str, rt: str, rid: str, t: datetime, out: list[Spec]) -> None:
        change = self.revisions.followup(kind, rt, rid, self.rng)
        if change is not None:
            op, version, data = change
            out.append(Spec(t, rt, rid, op, version, data, self.signer()))
