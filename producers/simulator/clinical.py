"""The clinical records a station writes: encounters, immunizations, chronic follow-ups and
register entries, disease cases, antenatal visits, births and deaths.

Each builder takes the **service** time ``t`` of day ``d`` (the visit, the dose, the
delivery …: the date in the payload) and hands the record to :meth:`StationSim.emit` with an
entry delay drawn for the activity, so the record is *entered* the same day, days later, or
from a paper register weeks later; a person's registration is entered with the first record
that needs it. Every draw comes from the station's ``random.Random``, in a fixed order.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from producers.simulator import people
from producers.simulator.people import Mix, health_id
from producers.simulator.spec import local_date

if TYPE_CHECKING:
    from producers.simulator.spec import Spec
    from producers.simulator.station import StationSim

_CHILD_DX = Mix(people.CHILD_DX)
_ADULT_DX = Mix(people.ADULT_DX)
_DEATH_OLD = Mix(people.DEATH_CAUSES_OLD)
_DEATH_YOUNG = Mix(people.DEATH_CAUSES_YOUNG)
_DEATH_INFANT = Mix(people.DEATH_CAUSES_INFANT)
_DISEASE = Mix(people.DISEASES)
_SKILLED = ("midwife", "midwife", "doctor", "ob_paediatric_assistant_doctor", "nurse")
_UNSKILLED = ("village_midwife", "family", "traditional_birth_attendant", "village_health_worker")


def visit(sim: StationSim, idx: int, d: int, out: list[Spec]) -> None:
    """An outpatient (or home) visit of person ``idx`` on day ``d``."""
    rng = sim.rng
    t = sim.time_on(d, rng)
    delay = sim.profile.entry_delay(rng)
    hid = sim.ensure_registered(idx, t, d, out, delay)
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
    sim.emit(t, d, delay, "encounter", f"{hid}:{sim.local_id('v')}", data, out)


def immunization(
    sim: StationSim,
    idx: int,
    vaccine: str,
    dose: int,
    t: datetime,
    d: int,
    out: list[Spec],
    delay: int | None = None,
) -> None:
    """A dose of ``vaccine`` given to person ``idx`` (``delay``: days until it is entered)."""
    rng = sim.rng
    delay = sim.profile.entry_delay(rng) if delay is None else delay
    hid = sim.ensure_registered(idx, t, d, out, delay)
    data: dict[str, Any] = {
        "health_id": hid,
        "vaccine": vaccine,
        "dose_number": dose,
        "date": local_date(t).isoformat(),
    }
    if rng.random() < 0.6:
        data["lot_number"] = f"L{rng.randrange(10**6):06d}"
    sim.emit(t, d, delay, "immunization", f"{hid}:{vaccine}-{dose}", data, out)


def antenatal(
    sim: StationSim,
    idx: int,
    number: int,
    gw: int,
    edd: date,
    t: datetime,
    d: int,
    out: list[Spec],
    delay: int | None = None,
) -> None:
    """Antenatal visit ``number`` of woman ``idx`` at ``gw`` gestational weeks."""
    delay = sim.profile.entry_delay(sim.rng) if delay is None else delay
    hid = sim.ensure_registered(idx, t, d, out, delay)
    data = {
        "health_id": hid,
        "visit_number": min(number, 20),
        "gestational_weeks": min(max(gw, 1), 45),
        "visit_date": local_date(t).isoformat(),
        "expected_delivery_date": edd.isoformat(),
    }
    sim.emit(t, d, delay, "antenatal_visit", f"{hid}:anc{number}", data, out)


def chronic_visit(
    sim: StationSim,
    idx: int,
    cond: str,
    controlled_p: float,
    treated: bool,
    t: datetime,
    d: int,
    out: list[Spec],
    delay: int | None = None,
) -> None:
    """A follow-up visit of a registered hypertension or diabetes patient: what was
    measured (control is computed from it) and whether the patient is on treatment."""
    rng = sim.rng
    delay = sim.profile.entry_delay(rng) if delay is None else delay
    hid = sim.ensure_registered(idx, t, d, out, delay)
    controlled = rng.random() < controlled_p
    m: dict[str, Any]
    if cond == "hypertension":
        sys_ = rng.randint(112, 138) if controlled else rng.randint(141, 185)
        dia = rng.randint(68, 88) if controlled else rng.randint(86, 110)
        m = {"blood_pressure": {"systolic_mmhg": sys_, "diastolic_mmhg": min(dia, sys_ - 25)}}
    elif rng.random() < 0.7:
        glucose = rng.uniform(5.0, 6.9) if controlled else rng.uniform(7.1, 14.0)
        m = {"fasting_glucose_mmol_l": round(glucose, 1)}
    else:
        a1c = rng.uniform(5.5, 6.9) if controlled else rng.uniform(7.1, 11.0)
        m = {"hba1c_percent": round(a1c, 1)}
    if rng.random() < 0.05:
        m = {}  # nothing measured: not controlled
    data: dict[str, Any] = {
        "health_id": hid,
        "condition": cond,
        "visit_date": local_date(t).isoformat(),
        "measurements": m,
        "on_treatment": treated,
    }
    sim.emit(t, d, delay, "chronic_followup", f"{hid}:{sim.local_id('c')}", data, out)


def chronic_enrolment(
    sim: StationSim,
    idx: int,
    cond: str,
    enrolled: date,
    treated: bool,
    t: datetime,
    d: int,
    out: list[Spec],
    delay: int,
) -> None:
    """The patient's entry in the station's register (enrolled on ``enrolled``)."""
    hid = sim.ensure_registered(idx, t, d, out, delay)
    data: dict[str, Any] = {
        "health_id": hid,
        "condition": cond,
        "enrolment_date": enrolled.isoformat(),
        "diagnosis_date": enrolled.isoformat(),
    }
    if treated:
        data["treatment_start_date"] = enrolled.isoformat()
    sim.emit(t, d, delay, "chronic_enrolment", f"{hid}:{cond}", data, out)


def disease_case(sim: StationSim, idx: int, d: int, out: list[Spec]) -> None:
    """A notifiable disease case of person ``idx`` seen on day ``d`` (onset days before)."""
    rng = sim.rng
    t = sim.time_on(d, rng)
    delay = sim.profile.entry_delay(rng)
    hid = sim.ensure_registered(idx, t, d, out, delay)
    onset = local_date(t) - timedelta(days=rng.randint(0, 4))
    data = {
        "health_id": hid,
        "disease": _DISEASE.pick(rng),
        "onset_date": onset.isoformat(),
        "classification": rng.choice(("suspected", "suspected", "probable", "confirmed")),
        "hospitalised": rng.random() < 0.15,
        "outcome": "recovering",
    }
    sim.emit(t, d, delay, "disease_case", f"{hid}:{sim.local_id('k')}", data, out)


def birth(sim: StationSim, mother: int, t: datetime, d: int, out: list[Spec]) -> None:
    """A delivery; a live-born child becomes a new person, with its EPI schedule."""
    rng = sim.rng
    profile = sim.profile
    delay = profile.entry_delay(rng)
    mid = sim.ensure_registered(mother, t, d, out, delay)
    at_facility = rng.random() < profile.facility_birth
    place = "facility" if at_facility else ("home" if rng.random() < 0.9 else "other")
    skilled = at_facility or rng.random() < profile.skilled_at_home
    attendant = rng.choice(_SKILLED if skilled else _UNSKILLED)
    live = rng.random() >= 0.006
    data: dict[str, Any] = {
        "mother_health_id": mid,
        "birth_date": local_date(t).isoformat(),
        "place": place,
        "attendant": attendant,
        "child_sex": "female" if rng.random() < 0.47 else "male",
        "live_birth": live,
    }
    if at_facility or rng.random() < 0.5:  # home births are not always weighed
        grams = int(rng.gauss(profile.birth_weight_mean, 430))
        data["weight_grams"] = min(5500, max(900, grams))
    child = None
    if live:
        child = sim.add_person(local_date(t).toordinal(), data["child_sex"] == "female")
        if child is not None:
            data["child_health_id"] = health_id(sim.code, child)
    sim.emit(t, d, delay, "birth", f"{mid}:b{sim.local_id('')}", data, out)
    if child is not None:
        sim.ensure_registered(child, t + timedelta(minutes=30), d, out, delay)
        sim.schedule_infant(child, local_date(t).toordinal())
        if rng.random() < sim.cfg.infant_mortality * 0.6:
            sim.at(d + int(rng.expovariate(1 / 10)) + 1, ("infant_death", child))


def death(sim: StationSim, idx: int, t: datetime, d: int, out: list[Spec]) -> None:
    """The death of person ``idx`` (who is then no longer alive)."""
    rng = sim.rng
    delay = sim.profile.entry_delay(rng)
    hid = sim.ensure_registered(idx, t, d, out, delay)
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
    sim.emit(t, d, delay, "death", f"{hid}:death", data, out, followups=False)


def _years(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
