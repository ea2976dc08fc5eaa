"""The station's hypertension and diabetes register (WHO HEARTS): who is enrolled, since
when, on treatment or not, how often they come back, who is lost to follow-up.

At the start each person of 40 or more is a patient with the configured share: most were
enrolled months or years before (their ``chronic_enrolment`` is back-entered in the first
weeks, with their last visit before the window when ``history`` is on), a few are diagnosed
during the window. Patients come back about monthly, skipping visits as the station's
profile says; some stopped coming more than a year ago (lost to follow-up). Deaths of
patients come from the station's death draws (older people die more), which stop their
visits.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from producers.simulator import clinical

if TYPE_CHECKING:
    from producers.simulator.spec import Spec
    from producers.simulator.station import StationSim

__all__ = ["act", "enrol"]


def enrol(sim: StationSim) -> None:
    """The register at the start, and the patients diagnosed during the window."""
    rng, cfg = sim.rng, sim.cfg
    start_ord = sim.start.toordinal()
    act_ = min(cfg.activity_scale, 1.0)
    for idx in range(sim.n_people):
        if start_ord - sim.birth[idx] < 40 * 365:
            continue
        for cond, share in (
            ("hypertension", cfg.hypertension_share_40plus),
            ("diabetes", cfg.diabetes_share_40plus),
        ):
            if rng.random() >= share * act_:
                continue
            controlled_p = min(0.95, max(0.05, rng.gauss(sim.profile.chronic_control, 0.15)))
            treated = rng.random() < 0.85
            if sim.days > 1 and rng.random() < 0.04:  # diagnosed during the window
                sim.at(rng.randrange(sim.days), ("enrol", idx, cond, controlled_p, treated))
                continue
            enrolled = start_ord - rng.randint(120, 1800)
            d = enrolled - start_ord
            entry = sim.migration_day()
            t = sim.time_on(d, rng)
            clinical.chronic_enrolment(
                sim, idx, cond, date.fromordinal(enrolled), treated, t, d, [], entry - d
            )
            lost = rng.random() < sim.profile.lost_to_follow_up
            last = -rng.randint(380, 700) if lost else -rng.randint(3, 75)
            if cfg.history and enrolled - start_ord <= last:
                tv = sim.time_on(last, rng)
                clinical.chronic_visit(
                    sim, idx, cond, controlled_p, treated, tv, last, [], sim.migration_day() - last
                )
            if not lost:
                _visits(sim, idx, cond, controlled_p, treated, last + rng.randint(25, 35))


def _visits(
    sim: StationSim, idx: int, cond: str, controlled_p: float, treated: bool, first: int
) -> None:
    """About monthly visits from day ``first``, skipping some (the station's profile)."""
    rng = sim.rng
    d = first
    while d < sim.days:
        if rng.random() >= sim.profile.missed_visit:
            sim.at(d, ("chronic", idx, cond, controlled_p, treated))
        d += rng.randint(25, 38)


def act(sim: StationSim, action: tuple[Any, ...], t: datetime, d: int, out: list[Spec]) -> None:
    """A scheduled visit, or a new diagnosis (enrolment and first visit the same day)."""
    kind, idx, cond, controlled_p, treated = action
    if not sim.alive[idx]:
        return
    if kind == "enrol":
        delay = sim.profile.entry_delay(sim.rng)
        enrolled = date.fromordinal(sim.start.toordinal() + d)
        clinical.chronic_enrolment(sim, idx, cond, enrolled, treated, t, d, out, delay)
        clinical.chronic_visit(sim, idx, cond, controlled_p, treated, t, d, out, delay)
        _visits(sim, idx, cond, controlled_p, treated, d + sim.rng.randint(25, 35))
        return
    clinical.chronic_visit(sim, idx, cond, controlled_p, treated, t, d, out)
