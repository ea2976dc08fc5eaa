"""The clinical records a station writes: encounters, immunizations, chronic follow-ups,
disease cases, antenatal visits, births and deaths.

Each builder appends its :class:`Spec` (and the person's registration if it is the first
record of that person) to ``out``; every draw comes from the station's ``random.Random``,
in a fixed order, so the simulation stays deterministic.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from producers.simulator import people
from producers.simulator.people import Mix, health_id
from producers.simulator.spec import Spec, local_date

if TYPE_CHECKING:
    from producers.simulator.station import StationSim

_CHILD_DX = Mix(people.CHILD_DX)
_ADULT_DX = Mix(people.ADULT_DX)
_DEATH_OLD = Mix(people.DEATH_CAUSES_OLD)
_DEATH_YOUNG = Mix(people.DEATH_CAUSES_YOUNG)
_DEATH_INFANT = Mix(people.DEATH_CAUSES_INFANT)
_DISEASE = Mix(people.DISEASES)


def visit(sim: StationSim, idx: int, d: int, out: list[Spec]) -> None:
    """An outpatient (or home) visit of person ``idx`` on day ``d``."""
    rng = sim.rng
    t = sim.time_on(d, rng)
    hid = sim.ensure_registered(idx, t, d, out)
    age = (local_date(t).toordinal() - sim.birth[idx]) / 365.25
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
        "encounter_date": local_date(t).isoformat(),
        "encounter_type": "home_visit" if rng.random() < 0.04 else "outpatient",
        "diagnoses": dx,
        "vitals": vitals,
    }
    if rng.random() < 0.03:
        data["referral"] = {"to_level": "district", "reason": "cần khám chuyên khoa"}
    out.append(sim.spec(t, "encounter", f"{hid}:{sim.local_id('v')}", data, d))


def immunization(
    sim: StationSim, idx: int, vaccine: str, dose: int, t: datetime, d: int, out: list[Spec]
) -> None:
    """A dose of ``vaccine`` given to person ``idx``."""
    rng = sim.rng
    hid = sim.ensure_registered(idx, t, d, out)
    data: dict[str, Any] = {
        "health_id": hid,
        "vaccine": vaccine,
        "dose_number": dose,
        "date": local_date(t).isoformat(),
    }
    if rng.random() < 0.6:
        data["lot_number"] = f"L{rng.randrange(10**6):06d}"
    out.append(sim.spec(t, "immunization", f"{hid}:{vaccine}-{dose}", data, d))


def antenatal(
    sim: StationSim,
    idx: int,
    number: int,
    gw: int,
    edd: date,
    t: datetime,
    d: int,
    out: list[Spec],
) -> None:
    """Antenatal visit ``number`` of woman ``idx`` at ``gw`` gestational weeks."""
    hid = sim.ensure_registered(idx, t, d, out)
    data = {
        "health_id": hid,
        "visit_number": min(number, 20),
        "gestational_weeks": min(gw, 45),
        "visit_date": local_date(t).isoformat(),
        "expected_delivery_date": edd.isoformat(),
    }
    out.append(sim.spec(t, "antenatal_visit", f"{hid}:anc{number}", data, d))


def chronic(
    sim: StationSim,
    idx: int,
    cond: str,
    controlled_p: float,
    t: datetime,
    d: int,
    out: list[Spec],
) -> None:
    """A monthly follow-up of a hypertension or diabetes patient."""
    rng = sim.rng
    hid = sim.ensure_registered(idx, t, d, out)
    controlled = rng.random() < controlled_p
    m: dict[str, Any]
    if cond == "hypertension":
        sys_ = rng.randint(115, 138) if controlled else rng.randint(142, 185)
        dia = rng.randint(70, 88) if controlled else rng.randint(88, 110)
        m = {"blood_pressure": {"systolic_mmhg": sys_, "diastolic_mmhg": min(dia, sys_ - 25)}}
    else:
        glucose = rng.uniform(5.0, 6.9) if controlled else rng.uniform(7.2, 14.0)
        m = {"fasting_glucose_mmol_l": round(glucose, 1)}
    data = {
        "health_id": hid,
        "condition": cond,
        "visit_date": local_date(t).isoformat(),
        "measurements": m,
        "on_treatment": rng.random() < 0.9,
    }
    out.append(sim.spec(t, "chronic_followup", f"{hid}:{sim.local_id('c')}", data, d))


def disease_case(sim: StationSim, idx: int, d: int, out: list[Spec]) -> None:
    """A notifiable disease case of person ``idx`` reported on day ``d``."""
    rng = sim.rng
    t = sim.time_on(d, rng)
    hid = sim.ensure_registered(idx, t, d, out)
    onset = local_date(t) - timedelta(days=rng.randint(0, 4))
    data = {
        "health_id": hid,
        "disease": _DISEASE.pick(rng),
        "onset_date": onset.isoformat(),
        "classification": rng.choice(("suspected", "suspected", "probable", "confirmed")),
        "hospitalised": rng.random() < 0.15,
        "outcome": "recovering",
    }
    out.append(sim.spec(t, "disease_case", f"{hid}:{sim.local_id('k')}", data, d))


def birth(sim: StationSim, mother: int, t: datetime, d: int, out: list[Spec]) -> None:
    """A delivery; a live-born child becomes a new person, with its EPI schedule."""
    rng = sim.rng
    mid = sim.ensure_registered(mother, t, d, out)
    place = "facility" if rng.random() < 0.93 else ("home" if rng.random() < 0.9 else "other")
    attendant = (
        rng.choice(("midwife", "midwife", "doctor", "ob_paediatric_assistant_doctor"))
        if place == "facility"
        else rng.choice(("village_midwife", "family", "traditional_birth_attendant"))
    )
    live = rng.random() >= 0.006
    data: dict[str, Any] = {
        "mother_health_id": mid,
        "birth_date": local_date(t).isoformat(),
        "place": place,
        "attendant": attendant,
        "weight_grams": min(5500, max(900, int(rng.gauss(3100, 450)))),
        "child_sex": "female" if rng.random() < 0.47 else "male",
        "live_birth": live,
    }
    child = None
    if live:
        child = sim.add_person(local_date(t).toordinal(), data["child_sex"] == "female")
        if child is not None:
            data["child_health_id"] = health_id(sim.code, child)
    out.append(sim.spec(t, "birth", f"{mid}:b{sim.local_id('')}", data, d))
    if child is not None:
        sim.ensure_registered(child, t + timedelta(minutes=30), d, out)
        sim.schedule_infant(child, local_date(t).toordinal())
        if rng.random() < sim.cfg.infant_mortality * 0.6:
            sim.at(d + int(rng.expovariate(1 / 10)) + 1, ("infant_death", child))


def death(sim: StationSim, idx: int, t: datetime, d: int, out: list[Spec]) -> None:
    """The death of person ``idx`` (who is then no longer alive)."""
    rng = sim.rng
    hid = sim.ensure_registered(idx, t, d, out)
    sim.alive[idx] = 0
    day = local_date(t)
    age_days = day.toordinal() - sim.birth[idx]
    data: dict[str, Any] = {
        "health_id": hid,
        "death_date": day.isoformat(),
        "place": rng.choice(("home", "home", "facility", "other")),
    }
    if age_days < 365:
        data["age_days"] = max(0, age_days)
        data["cause_icd10"] = _DEATH_INFANT.pick(rng)
    else:
        years = _years(date.fromordinal(sim.birth[idx]), day)
        data["age_years"] = min(130, years)
        data["cause_icd10"] = (_DEATH_OLD if years >= 60 else _DEATH_YOUNG).pick(rng)
    out.append(sim.spec(t, "death", f"{hid}:death", data, d, followups=False))


def _years(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
