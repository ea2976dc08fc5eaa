"""``simulate(config) -> SimulationResult``: the day-by-day loop over stations.

Per day and station: the station's changes (in time order) get the station's next
``station_seq`` and a deterministic UUIDv7 (its timestamp is the event time); a station
that is offline keeps them and sends them, with their original times, on the day it comes
back. A chosen fraction of deliberately bad events is mixed in. Changes are signed in
batches (one day of every station at a time) by :class:`DevSigner`.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from producers.config import SimulationConfig
from producers.exceptions import SimulationError
from producers.simulator import bad
from producers.simulator.fastwire import Prepared
from producers.simulator.model import (
    EXPECTED_REASON,
    BadKind,
    SimEvent,
    SimulationResult,
    Truth,
    TruthRecord,
)
from producers.simulator.people import health_id
from producers.simulator.signing import DevSigner
from producers.simulator.spec import Spec
from producers.simulator.station import BAD_PERSON_BASE, StationSim
from schemas import KafkaMessage, Op, RecordChange
from schemas.hierarchy import Hierarchy
from schemas.registry import CURRENT_MAJOR, RecordType

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (days done, days total)
_BAD_KINDS = tuple(BadKind)


def event_id(t: datetime, rng: random.Random) -> str:
    """A UUIDv7 whose timestamp is ``t`` and whose random bits come from ``rng``."""
    ms = int(t.timestamp() * 1000)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | 0b10 << 62 | rng.getrandbits(12) << 64
    value |= rng.getrandbits(62)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def choose_stations(cfg: SimulationConfig, hierarchy: Hierarchy, start: date) -> tuple[str, ...]:
    """The stations to simulate: explicit codes, else those of ``provinces``, optionally a
    seeded sample of ``n_stations``."""
    if cfg.stations:
        for s in cfg.stations:
            hierarchy.lookup(s, start)  # raises on unknown/closed stations
        return tuple(sorted(cfg.stations))
    provinces = cfg.provinces or None
    picked = hierarchy.select_stations(start, provinces, limit=cfg.n_stations, seed=cfg.seed)
    if not picked:
        raise SimulationError(f"no open station in provinces {cfg.provinces} on {start}")
    return picked


@dataclass
class _Station:
    sim: StationSim
    seq: int
    offline: tuple[int, int] | None  # [first day, back day)
    backlog: list[Prepared]
    last_day: int


def simulate(
    cfg: SimulationConfig,
    *,
    hierarchy: Hierarchy | None = None,
    progress: Progress | None = None,
) -> SimulationResult:
    """Deterministic synthetic activity (same config → same events, byte for byte)."""
    h = hierarchy or Hierarchy.default()
    start = date.fromisoformat(cfg.start)
    end = start + timedelta(days=cfg.days - 1)
    if end >= date.today():
        raise SimulationError(f"the simulation must end before today (ends {end})")
    codes = choose_stations(cfg, h, start)
    truth = Truth(stations=codes)
    return SimulationResult(
        _run(cfg, h, start, codes, truth, progress), truth, codes, start, cfg.days
    )


def _run(
    cfg: SimulationConfig,
    h: Hierarchy,
    start: date,
    codes: tuple[str, ...],
    truth: Truth,
    progress: Progress | None,
) -> Iterator[SimEvent]:
    rng = random.Random(f"{cfg.seed}:engine")
    signer = DevSigner(cfg.key_seed, cfg.sign_threads)
    stations: list[_Station] = []
    for code in codes:
        pop = h.population(code, start) if h.has_population else 5000
        placement = h.lookup(code, start)
        sim = StationSim(
            code, placement.province.code, pop, cfg, start, cfg.days, placement.station.kind
        )
        closed = h.closed_at(code)
        last = cfg.days - 1 if closed is None else min(cfg.days - 1, (closed - start).days - 1)
        offline = None
        if rng.random() < cfg.offline_station_share and cfg.days > 2:
            first = rng.randrange(cfg.days - 1)
            length = rng.randint(*cfg.offline_days)
            offline = (first, first + length)
            truth.offline[code] = (
                start + timedelta(days=first),
                start + timedelta(days=min(first + length, cfg.days - 1)),
            )
        stations.append(_Station(sim, 0, offline, [], last))
        truth.population[code] = pop
        truth.simulated_people[code] = sim.n_people
    bad_seq = 0
    prev: tuple[date, list[Prepared], Callable[[], list[str]]] | None = None
    try:
        for d in range(cfg.days + 1):
            cur = None
            if d < cfg.days:
                prepared = _prepare_day(stations, d)
                jobs = [(p.canonical, p.signer) for p in prepared]
                cur = (start + timedelta(days=d), prepared, signer.submit(jobs))
            if prev is not None:  # day d-1 was signed in the pool while day d was generated
                emitted_on, prepared_prev, result = prev
                for p, sig in zip(prepared_prev, result(), strict=True):
                    ev = _event(p, sig, emitted_on)
                    _record(truth, p, ev, cfg.keep_truth)
                    yield ev
                    if cfg.bad_fraction and rng.random() < cfg.bad_fraction:
                        bad_seq += 1
                        change = ev.change
                        assert change is not None
                        yield _bad(cfg, truth, signer, rng, change, emitted_on, bad_seq, codes)
                if progress is not None:
                    progress(d, cfg.days)
            prev = cur
    finally:
        signer.close()


def _prepare_day(stations: list[_Station], d: int) -> list[Prepared]:
    """Every change the stations send on day ``d`` (backlogs of returning stations first)."""
    out: list[Prepared] = []
    for st in stations:
        if d > st.last_day:
            continue
        code = st.sim.code
        numbered = []
        for spec in st.sim.day(d):
            st.seq += 1
            numbered.append(Prepared(code, spec, event_id(spec.time, st.sim.rng), st.seq))
        away = st.offline is not None and st.offline[0] <= d < st.offline[1]
        if away and d < st.last_day:
            st.backlog.extend(numbered)
            continue
        out.extend(st.backlog)
        out.extend(numbered)
        st.backlog = []
    return out


def _event(p: Prepared, signature: str, emitted_on: date) -> SimEvent:
    key, value, headers = p.message(signature)

    def build() -> RecordChange:
        return _construct(p.station, p.spec, p.attrs[0], p.seq, signature)

    return SimEvent(
        p.attrs[0],
        p.station,
        p.spec.time,
        emitted_on,
        KafkaMessage(key, value, headers),
        build=build,
    )


def _construct(station: str, spec: Spec, eid: str, seq: int, signature: str = "") -> RecordChange:
    rt = RecordType(spec.record_type)
    return RecordChange.model_construct(
        id=eid,
        station=station,
        time=spec.time,
        record_type=rt,
        record_id=spec.record_id,
        op=Op(spec.op),
        record_version=spec.version,
        station_seq=seq,
        schema_major=CURRENT_MAJOR[rt],
        signer=f"hw-{station}-{spec.signer_n}",
        signature=signature,
        data=spec.data,
    )


def _record(truth: Truth, p: Prepared, ev: SimEvent, keep: bool) -> None:
    eid = p.attrs[0]
    truth.valid_event_ids.add(eid)
    truth.counts[p.attrs[2]] = truth.counts.get(p.attrs[2], 0) + 1
    if ev.late:
        truth.late_event_ids.add(eid)
    if keep:
        spec = p.spec
        truth.records[(spec.record_type, spec.record_id)] = TruthRecord(
            p.station, spec.time, spec.version, spec.op == "delete", spec.data, eid
        )


def _bad(
    cfg: SimulationConfig,
    truth: Truth,
    signer: DevSigner,
    rng: random.Random,
    after: RecordChange,
    emitted_on: date,
    n: int,
    codes: tuple[str, ...],
) -> SimEvent:
    """A bad event of a rotating kind from the station of ``after`` (just after it)."""
    kind = _BAD_KINDS[(n - 1) % len(_BAD_KINDS)]
    station = bad.UNKNOWN_STATION if kind is BadKind.UNKNOWN_STATION else after.station
    hid = health_id(after.station, BAD_PERSON_BASE + (n % 4000))
    rt_name, data = bad.base_data(kind, hid, (after.time + timedelta(hours=7)).date().isoformat())
    if rt_name == "person":
        data["residence_commune"] = after.station
    data = bad.corrupt_data(kind, data)
    rt = RecordType(rt_name)
    record_id = hid if rt is RecordType.PERSON else f"{hid}:bad{n}"
    t = after.time + timedelta(seconds=1)
    change = RecordChange.model_construct(
        id=event_id(t, rng),
        station=station,
        time=t,
        record_type=rt,
        record_id=record_id,
        op=Op.UPSERT,
        record_version=1,
        station_seq=after.station_seq,  # a resend-like number: the seq stays unique per id
        schema_major=CURRENT_MAJOR[rt],
        signer=f"hw-{station}-1",
        signature="",
        data=data,
    )
    other = next((c for c in codes if c != after.station), "00001")
    signed, msg = bad.finish(kind, change, signer, rng, other)
    truth.bad_event_ids[change.id] = EXPECTED_REASON[kind]
    truth.bad_kinds[change.id] = kind
    return SimEvent(change.id, station, t, emitted_on, msg, signed, kind)
