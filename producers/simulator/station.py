"""One simulated commune health station: its people and what happens to them, day by day.

Pure and deterministic: everything comes from the station's own ``random.Random``. The
station produces :class:`Spec` items (a change without id, seq, or signature); the engine
(:mod:`producers.simulator.engine`) numbers, signs and encodes them.
"""

from __future__ import annotations

import math
import random
from array import array
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from producers.config import SimulationConfig
from producers.simulator import people
from producers.simulator.people import Mix, health_id, person_data
from schemas import codes

MAX_PEOPLE: Final = 90_000  # person index space per station (health id = station * 1e5 + idx)
BAD_PERSON_BASE: Final = 95_000
_CHILD_DX = Mix(people.CHILD_DX)
_ADULT_DX = Mix(people.ADULT_DX)
_DEATH_OLD = Mix(people.DEATH_CAUSES_OLD)
_DEATH_YOUNG = Mix(people.DEATH_CAUSES_YOUNG)
_DEATH_INFANT = Mix(people.DEATH_CAUSES_INFANT)
_DISEASE = Mix(people.DISEASES)
_VN_OFFSET: Final = timedelta(hours=7)
_DELETABLE: Final = frozenset({"encounter", "immunization", "disease_case", "antenatal_visit"})


@dataclass(slots=True)
class Spec:
    """A change before numbering and signing."""

    time: datetime
    record_type: str
    record_id: str
    op: str
    version: int
    data: dict[str, Any] | None
    signer_n: int


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
        self.versions: dict[tuple[str, str], tuple[int, dict[str, Any] | None]] = {}
        self.deleted: set[tuple[str, str]] = set()
        self.local = 0
        act = cfg.activity_scale
        # registration days (front-loaded: paper books migrated early)
        for idx in range(n):
            if rng.random() < cfg.registration_share:
                self._at(int(days * rng.random() ** 2), ("register", idx))
        # infants: EPI doses due in the window
        for idx in range(n):
            age0 = start_ord - self.birth[idx]
            if age0 < 300:
                self._schedule_infant(idx, self.birth[idx])
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
                        self._at(d, ("chronic", idx, cond, controlled_p))
        # pregnancies in progress: antenatal visits, then the birth
        pregnant = poisson(rng, n * cfg.birth_rate * 0.75 * act)
        for _ in range(pregnant):
            woman = self._woman(rng)
            if woman is not None:
                self._pregnancy(woman, rng.randint(4, 40), 0)
        # resources
        self.staff = {
            "doctor": 0 if rng.random() < 0.2 else rng.randint(1, 2),
            "assistant_doctor": rng.randint(1, 3),
            "ob_paediatric_assistant_doctor": int(rng.random() < 0.4),
            "nurse": rng.randint(1, 3),
            "midwife": int(rng.random() < 0.85) * rng.randint(1, 2),
            "pharmacist": int(rng.random() < 0.6),
            "village_health_worker": rng.randint(4, 20),
        }
        self.beds = rng.randint(3, 10)
        self.equipment = {
            item: rng.randint(0, 2) if item in ("ECG", "ULTRASOUND", "MICROSCOPE") else 1
            for item in codes.EQUIPMENT
        }
        self.stock = {m: rng.randint(50, 3000) for m in codes.ESSENTIAL_MEDICINES}
        for d in range(days):
            day = start + timedelta(days=d)
            if day.day == 25 or (d == days - 1 and day.day < 25 and d >= 20):
                self._at(d, ("snapshots",))

    # ---- scheduling helpers ---------------------------------------------------------
    def _at(self, d: int, action: tuple[Any, ...]) -> None:
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
            self._at(d, ("anc", idx, number, max(1, gw), edd))
            d += rng.randint(28, 42)
        self._at(max(due, d0), ("birth", idx))

    def _schedule_infant(self, idx: int, birth_ord: int) -> None:
        rng = self.rng
        start_ord = self.start.toordinal()
        for vaccine, dose, due_age in people.INFANT_SCHEDULE:
            if rng.random() > 0.96:
                continue  # missed dose
            d = birth_ord + due_age + int(rng.expovariate(1 / 6)) - start_ord
            self._at(d, ("dose", idx, vaccine, dose))

    # ---- the day ----------------------------------------------------------------------
    def _time(self, d: int, rng: random.Random) -> datetime:
        day = self.start + timedelta(days=d)
        secs = rng.randrange(7 * 3600, 17 * 3600)
        local = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(seconds=secs)
        return local - _VN_OFFSET

    def _local_id(self, prefix: str) -> str:
        self.local += 1
        return f"{prefix}{self.local}"

    def _spec(
        self,
        t: datetime,
        rt: str,
        rid: str,
        data: dict[str, Any],
        d: int,
        *,
        followups: bool = True,
    ) -> Spec:
        rng = self.rng
        key = (rt, rid)
        prev = self.versions.get(key)
        version = prev[0] + 1 if prev else 1
        if prev is not None or (
            followups and rng.random() < self.cfg.correction_rate + self.cfg.deletion_rate
        ):
            self.versions[key] = (version, data)
        if followups and prev is None and key in self.versions:
            later = d + rng.randint(1, 10)
            if rt in _DELETABLE and rng.random() < self.cfg.deletion_rate / (
                self.cfg.correction_rate + self.cfg.deletion_rate
            ):
                self._at(later, ("delete", rt, rid))
            else:
                self._at(later, ("correct", rt, rid))
        return Spec(t, rt, rid, "upsert", version, data, self._signer())

    def _signer(self) -> int:
        return self.rng.randint(1, self.cfg.signers_per_station)

    def _ensure_registered(self, idx: int, t: datetime, d: int, out: list[Spec]) -> str:
        hid = health_id(self.code, idx)
        if not self.registered[idx]:
            self.registered[idx] = 1
            day = (t + _VN_OFFSET).date()
            data = person_data(
                self.code, self.province, idx, bool(self.female[idx]),
                date.fromordinal(self.birth[idx]), self.rng, day,
            )  # fmt: skip
            out.append(self._spec(t - timedelta(minutes=5), "person", hid, data, d))
        return hid

    def _alive_person(self, rng: random.Random) -> int:
        for _ in range(20):
            idx = rng.randrange(self.next_idx)
            if self.alive[idx]:
                return idx
        return rng.randrange(self.next_idx)

    def day(self, d: int) -> list[Spec]:
        """Every change of day ``d`` (0-based), in time order."""
        rng = self.rng
        cfg = self.cfg
        act = cfg.activity_scale
        out: list[Spec] = []
        n = self.n_people
        # outpatient visits
        for _ in range(poisson(rng, n * cfg.outpatient_rate * act / 365)):
            self._visit(self._alive_person(rng), d, out)
        # deaths
        for _ in range(poisson(rng, n * cfg.death_rate * act / 365)):
            self._death(d, out)
        # notifiable disease cases
        for _ in range(poisson(rng, n * cfg.disease_rate * act / 365)):
            self._case(self._alive_person(rng), d, out)
        # new pregnancies: first antenatal visit at 6-12 weeks
        for _ in range(poisson(rng, n * cfg.birth_rate * act / 365)):
            idx = self._woman(rng)
            if idx is not None:
                self._pregnancy(idx, rng.randint(6, 12), d)
        for action in self.sched.pop(d, ()):
            self._do(action, d, out)
        out.sort(key=lambda s: s.time)
        return out

    def _do(self, action: tuple[Any, ...], d: int, out: list[Spec]) -> None:
        kind = action[0]
        rng = self.rng
        t = self._time(d, rng)
        if kind == "register":
            self._ensure_registered(action[1], t, d, out)
        elif kind == "dose":
            _, idx, vaccine, dose = action
            if self.alive[idx]:
                hid = self._ensure_registered(idx, t, d, out)
                data: dict[str, Any] = {
                    "health_id": hid,
                    "vaccine": vaccine,
                    "dose_number": dose,
                    "date": _local(t).isoformat(),
                }
                if rng.random() < 0.6:
                    data["lot_number"] = f"L{rng.randrange(10**6):06d}"
                out.append(self._spec(t, "immunization", f"{hid}:{vaccine}-{dose}", data, d))
        elif kind == "chronic":
            _, idx, cond, controlled_p = action
            if self.alive[idx]:
                self._chronic(idx, cond, controlled_p, t, d, out)
        elif kind == "anc":
            _, idx, number, gw, edd = action
            if self.alive[idx]:
                hid = self._ensure_registered(idx, t, d, out)
                data = {
                    "health_id": hid,
                    "visit_number": min(number, 20),
                    "gestational_weeks": min(gw, 45),
                    "visit_date": _local(t).isoformat(),
                    "expected_delivery_date": edd.isoformat(),
                }
                out.append(self._spec(t, "antenatal_visit", f"{hid}:anc{number}", data, d))
        elif kind == "birth":
            if self.alive[action[1]]:
                self._birth(action[1], t, d, out)
        elif kind == "infant_death":
            idx = action[1]
            if self.alive[idx]:
                self._die(idx, t, d, out, infant=True)
        elif kind == "snapshots":
            self._snapshots(t, d, out)
        elif kind in ("correct", "delete"):
            self._followup(kind, action[1], action[2], t, d, out)

    # ---- record makers ----------------------------------------------------------------
    def _visit(self, idx: int, d: int, out: list[Spec]) -> None:
        rng = self.rng
        t = self._time(d, rng)
        hid = self._ensure_registered(idx, t, d, out)
        age = (_local(t).toordinal() - self.birth[idx]) / 365.25
        mix = _CHILD_DX if age < 15 else _ADULT_DX
        dx = [mix.pick(rng)]
        if rng.random() < 0.2:
            extra = mix.pick(rng)
            if extra != dx[0]:
                dx.append(extra)
        vitals: dict[str, Any] = {"temperature_c": round(rng.gauss(37.0, 0.6), 1)}
        if age >= 15:
            sys_ = int(rng.gauss(150 if "I10" in dx else 122, 14))
            sys_ = min(230, max(85, sys_))
            dia = min(sys_ - 20, max(50, int(sys_ * rng.uniform(0.58, 0.68))))
            vitals["blood_pressure"] = {"systolic_mmhg": sys_, "diastolic_mmhg": dia}
            vitals["pulse_bpm"] = rng.randint(58, 105)
        data: dict[str, Any] = {
            "health_id": hid,
            "encounter_date": _local(t).isoformat(),
            "encounter_type": "home_visit" if rng.random() < 0.04 else "outpatient",
            "diagnoses": dx,
            "vitals": vitals,
        }
        if rng.random() < 0.03:
            data["referral"] = {"to_level": "district", "reason": "cần khám chuyên khoa"}
        out.append(self._spec(t, "encounter", f"{hid}:{self._local_id('v')}", data, d))

    def _chronic(
        self, idx: int, cond: str, controlled_p: float, t: datetime, d: int, out: list[Spec]
    ) -> None:
        rng = self.rng
        hid = self._ensure_registered(idx, t, d, out)
        controlled = rng.random() < controlled_p
        m: dict[str, Any]
        if cond == "hypertension":
            sys_ = rng.randint(115, 138) if controlled else rng.randint(142, 185)
            dia = rng.randint(70, 88) if controlled else rng.randint(88, 110)
            m = {"systolic_bp_mmhg": sys_, "diastolic_bp_mmhg": min(dia, sys_ - 25)}
        else:
            glucose = rng.uniform(5.0, 6.9) if controlled else rng.uniform(7.2, 14.0)
            m = {"fasting_glucose_mmol_l": round(glucose, 1)}
        data = {
            "health_id": hid,
            "condition": cond,
            "visit_date": _local(t).isoformat(),
            "controlled": controlled,
            "newly_diagnosed": rng.random() < 0.02,
            "measurements": m,
        }
        out.append(self._spec(t, "chronic_followup", f"{hid}:{self._local_id('c')}", data, d))

    def _case(self, idx: int, d: int, out: list[Spec]) -> None:
        rng = self.rng
        t = self._time(d, rng)
        hid = self._ensure_registered(idx, t, d, out)
        onset = _local(t) - timedelta(days=rng.randint(0, 4))
        data = {
            "health_id": hid,
            "disease": _DISEASE.pick(rng),
            "onset_date": onset.isoformat(),
            "classification": rng.choice(("suspected", "suspected", "probable", "confirmed")),
            "hospitalised": rng.random() < 0.15,
            "outcome": "recovering",
        }
        out.append(self._spec(t, "disease_case", f"{hid}:{self._local_id('k')}", data, d))

    def _birth(self, mother: int, t: datetime, d: int, out: list[Spec]) -> None:
        rng = self.rng
        mid = self._ensure_registered(mother, t, d, out)
        place = "facility" if rng.random() < 0.93 else ("home" if rng.random() < 0.9 else "other")
        attendant = (
            rng.choice(("midwife", "midwife", "doctor", "ob_paediatric_assistant_doctor"))
            if place == "facility"
            else rng.choice(("village_midwife", "family", "traditional_birth_attendant"))
        )
        live = rng.random() >= 0.006
        data: dict[str, Any] = {
            "mother_health_id": mid,
            "birth_date": _local(t).isoformat(),
            "place": place,
            "attendant": attendant,
            "weight_grams": min(5500, max(900, int(rng.gauss(3100, 450)))),
            "child_sex": "female" if rng.random() < 0.47 else "male",
            "live_birth": live,
        }
        child = None
        if live and self.next_idx < BAD_PERSON_BASE - 1:
            child = self.next_idx
            self.next_idx += 1
            self.birth.append(_local(t).toordinal())
            self.female.append(int(data["child_sex"] == "female"))
            self.alive.append(1)
            self.registered.append(0)
            data["child_health_id"] = health_id(self.code, child)
        out.append(self._spec(t, "birth", f"{mid}:b{self._local_id('')}", data, d))
        if child is not None:
            self._ensure_registered(child, t + timedelta(minutes=30), d, out)
            self._schedule_infant(child, _local(t).toordinal())
            if rng.random() < self.cfg.infant_mortality * 0.6:
                self._at(d + int(rng.expovariate(1 / 10)) + 1, ("infant_death", child))

    def _death(self, d: int, out: list[Spec]) -> None:
        rng = self.rng
        for _ in range(40):  # older people are more likely to be the one
            idx = self._alive_person(rng)
            age = (self.start.toordinal() + d - self.birth[idx]) / 365.25
            if rng.random() < min(1.0, math.exp((age - 80) / 11)):
                break
        self._die(idx, self._time(d, rng), d, out, infant=False)

    def _die(self, idx: int, t: datetime, d: int, out: list[Spec], *, infant: bool) -> None:
        rng = self.rng
        hid = self._ensure_registered(idx, t, d, out)
        self.alive[idx] = 0
        day = _local(t)
        age_days = day.toordinal() - self.birth[idx]
        data: dict[str, Any] = {
            "health_id": hid,
            "death_date": day.isoformat(),
            "place": rng.choice(("home", "home", "facility", "other")),
        }
        if age_days < 365:
            data["age_days"] = max(0, age_days)
            data["cause_icd10"] = _DEATH_INFANT.pick(rng)
        else:
            years = _years(date.fromordinal(self.birth[idx]), day)
            data["age_years"] = min(130, years)
            data["cause_icd10"] = (_DEATH_OLD if years >= 60 else _DEATH_YOUNG).pick(rng)
        out.append(self._spec(t, "death", f"{hid}:death", data, d, followups=False))

    def _snapshots(self, t: datetime, d: int, out: list[Spec]) -> None:
        rng = self.rng
        day = _local(t)
        period = day.isoformat()[:7]
        base = {"period": period, "as_of": day.isoformat()}
        if rng.random() < 0.1:
            cadre = rng.choice(("nurse", "assistant_doctor", "village_health_worker"))
            self.staff[cadre] = max(0, self.staff[cadre] + rng.choice((-1, 1)))
        staff = {**base, "counts": dict(self.staff)}
        occupied = rng.randint(0, self.beds)
        beds = {**base, "beds_total": self.beds, "beds_occupied": occupied}
        items = []
        for item, qty in self.equipment.items():
            working = qty - int(qty > 0 and rng.random() < 0.07)
            items.append({"item": item, "quantity": qty, "working": working})
        stock_items = []
        for med, on_hand in self.stock.items():
            out_ = rng.random() < 0.04
            level = 0 if out_ else max(0, int(on_hand * rng.uniform(0.5, 1.3)))
            stock_items.append({"medicine": med, "on_hand": level, "stock_out": out_})
        for rt, resource, data in (
            ("staff_snapshot", "staff", staff),
            ("bed_snapshot", "beds", beds),
            ("equipment_snapshot", "equipment", {**base, "items": items}),
            ("stock_snapshot", "stock", {**base, "items": stock_items}),
        ):
            rid = f"{self.code}:{resource}:{period}"
            out.append(self._spec(t + timedelta(seconds=len(out)), rt, rid, data, d))

    def _followup(self, kind: str, rt: str, rid: str, t: datetime, d: int, out: list[Spec]) -> None:
        key = (rt, rid)
        if key in self.deleted or key not in self.versions:
            return
        version, data = self.versions[key]
        if kind == "delete":
            self.deleted.add(key)
            self.versions[key] = (version + 1, None)
            out.append(Spec(t, rt, rid, "delete", version + 1, None, self._signer()))
            return
        assert data is not None
        new = correct(rt, data, self.rng)
        self.versions[key] = (version + 1, new)
        out.append(Spec(t, rt, rid, "upsert", version + 1, new, self._signer()))


def _local(t: datetime) -> date:
    return (t + _VN_OFFSET).date()


def _years(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


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
        new["newly_diagnosed"] = not data.get("newly_diagnosed", False)
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
