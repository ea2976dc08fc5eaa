"""A small real store for the portal's tests: simulated stations through the stream
worker's batch processor (validate, verify, enrich, route, pseudonymise) and the sinks'
segment writer — the production code paths minus the broker — into the store layout
``tuyen report`` and the portal read: each owner's root under the store's base
(``sinks.roots``)."""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from producers.config import DEV_KEY_SEED, DEV_SIGNERS_PER_STATION, SimulationConfig
from producers.simulator import SimEvent, SimulationResult, simulate
from schemas import DevKeyRegistry, RecordChange, dev_signer, encode, make_change, sign
from schemas.hierarchy import VN_TZ, Hierarchy
from schemas.topics import RAW, TIER_DISTRICT, TIER_NATIONAL, TIER_PROVINCE, topic_name
from sinks.consumer import province_router
from sinks.encode import encoder_for
from sinks.roots import StoreRoots
from sinks.segments import SegmentWriter
from sinks.store import Store
from sinks.testing import FakeMessage
from streams.pipeline import BatchProcessor, OutMessage
from streams.pseudonymise import Pseudonymiser
from streams.validate import RawMessage, Validator

__all__ = ["build_store", "enter_late"]

PARTITIONS = 3
PREFIX = "t."
TIERS = {"district": TIER_DISTRICT, "province": TIER_PROVINCE, "national": TIER_NATIONAL}


def _partition(key: bytes | None) -> int:
    return zlib.crc32(key or b"") % PARTITIONS


def _received(ev: SimEvent, now: datetime) -> datetime:
    sent = datetime(
        ev.emitted_on.year, ev.emitted_on.month, ev.emitted_on.day, 18, tzinfo=VN_TZ
    ).astimezone(UTC)
    return min(sent, now)


def _processor() -> BatchProcessor:
    validator = Validator(
        Hierarchy.default(),
        DevKeyRegistry(DEV_KEY_SEED, signers_per_station=DEV_SIGNERS_PER_STATION),
    )
    return BatchProcessor(
        validator, Pseudonymiser("portal-tests"), topic_prefix=PREFIX, record_topics="single"
    )


def _raw(events: Iterable[SimEvent], now: datetime) -> list[RawMessage]:
    offsets: dict[int, int] = defaultdict(int)
    out = []
    for ev in events:
        m = ev.message
        p = _partition(m.key)
        out.append(
            RawMessage(
                m.key, m.value, m.headers, topic_name(RAW, PREFIX), p, offsets[p],
                _received(ev, now),
            )
        )  # fmt: skip
        offsets[p] += 1
    return out


def _write(root: Path, outputs: list[OutMessage], first_offset: int = 0) -> None:
    """Each owner's data into its own root under ``root`` (``sinks.roots``), as the sinks
    write it: the national tier to the national root, each province's records to its own
    (offsets from ``first_offset``: the segment files are named by their first offset, so a
    later write must not reuse them)."""
    roots = StoreRoots.under(str(root))
    for tier, base in TIERS.items():
        topic = topic_name(base, PREFIX)
        by_part: dict[int, list[FakeMessage]] = defaultdict(list)
        for o in outputs:
            if o.topic == topic and o.value is not None:
                p = _partition(o.key)
                offset = first_offset + len(by_part[p])
                by_part[p].append(FakeMessage(topic, p, offset, o.value, o.key, o.headers))
        own = Store.open(roots.national if tier == "national" else roots.quarantine)
        writer = SegmentWriter(
            store=own,
            topic=topic,
            encoder=encoder_for("tier", tier),
            rotate_rows=10**9,
            route=None if tier == "national" else province_router(roots.province, own),
        )
        for p, msgs in sorted(by_part.items()):
            writer.resume(p, first_offset)
            writer.add(p, msgs)
        writer.flush_due(force=True)


def build_store(
    root: Path,
    *,
    provinces: tuple[str, ...] = ("12",),
    days: int = 45,
    scale: float = 0.01,
    seed: int = 5,
    end: date | None = None,
) -> SimulationResult:
    """Simulate ``days`` ending ``end`` (default yesterday) and write every tier under
    ``root``; returns the simulation (its truth is complete)."""
    last = end or date.today() - timedelta(days=1)
    cfg = SimulationConfig(
        seed=seed,
        provinces=provinces,
        start=(last - timedelta(days=days - 1)).isoformat(),
        days=days,
        scale=scale,
        keep_truth=True,
        bad_fraction=0.0,
        sign_threads=0,
    )
    result = simulate(cfg)
    raw = _raw(result.events, datetime.now(UTC))
    processor = _processor()
    outputs: list[OutMessage] = []
    for i in range(0, len(raw), 5000):
        outputs += processor.process(raw[i : i + 5000]).outputs
    _write(root, outputs)
    return result


def enter_late(
    root: Path, station: str, record_type: str, data: dict[str, Any], *, batch: int
) -> RecordChange:
    """A new person-centred record (keyed by ``data``'s health id) of ``station`` with the
    payload ``data`` (so its service date), entered
    and received now: a register back-entered after the month was approved. Signed by one of
    the station's development signers and written through the worker's processor and the
    sinks' writer; ``batch`` numbers the call (its segment files must not replace earlier
    ones)."""
    now = datetime.now(UTC)
    signer = dev_signer(station, 2)
    change = make_change(
        station=station, record_type=record_type, record_id=f"{data['health_id']}:late-{batch}",
        op="upsert", record_version=1, station_seq=10**9 + batch, signer=signer, data=data,
        time=now,
    )  # fmt: skip
    signed = sign(change, DevKeyRegistry(DEV_KEY_SEED).signing_key(signer))
    m = encode(signed)
    raw = RawMessage(m.key, m.value, m.headers, topic_name(RAW, PREFIX), 0, 10**9 + batch, now)
    _write(root, _processor().process([raw]).outputs, first_offset=10**9 + batch * 1000)
    return signed
