"""End to end: a simulated month through the real pipeline, every report checked by an oracle.

Issue 5, "How it will be checked": for a simulated month with corrections, deletions, late
(offline stations) and duplicated events, every indicator at every tier from the reports
equals the value computed independently (``tests/e2e/oracle.py``) from the simulator's
final record states. Then a replay of partition 0 of every tier topic from offset 0 into
the existing stores leaves every current-state count (and every report) unchanged.

The pipeline is the real one: stream worker and sinks as processes (``deploy.pipeline``)
against the session's Kafka broker, topics under a unique prefix.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, KafkaError, Message, TopicPartition

from deploy.pipeline import Pipeline
from deploy.topics import apply_topics
from producers.config import SimulationConfig
from producers.simulator import SimEvent, SimulationResult, Truth, simulate
from producers.writers import fast_producer_config, write_kafka
from schemas.hierarchy import VN_TZ, Hierarchy
from schemas.kafka import KafkaConnection, admin, producer
from schemas.registry import RecordType
from schemas.topics import RAW, TIER_DISTRICT, TIER_NATIONAL, TIER_PROVINCE, topic_name, topic_specs
from sinks.catalog import open_catalog
from sinks.national import release_person_qi
from sinks.reports import Report, ReportConfig, run_report, source_tier
from streams.pseudonym_key import DEV_PSEUDONYM_KEY, decode_pseudonym_key
from streams.pseudonymise import Pseudonymiser
from tests.e2e.national_checks import (
    leaks,
    linkable_columns,
    national_values,
    published_identifiers,
    smallest_qi_class,
    timestamp_columns,
)
from tests.e2e.oracle import KIND_INDICATORS, Arrival, Expected, Oracle, month_end
from tests.helpers import unique_name
from tests.unit.test_report_smallcells import assert_safe

pytestmark = [pytest.mark.broker, pytest.mark.slow]

logger = logging.getLogger(__name__)

PROVINCE = "12"  # Lai Châu: 38 stations in 8 regional health centres (2026)
PARTITIONS = 3
LEAD_DAYS = 7  # simulate a week before the month: corrections move records into it
DUPLICATE_SHARE = 0.04
KINDS = ("health", "resources", "completeness")
TIER_SINKS = {"district": TIER_DISTRICT, "province": TIER_PROVINCE, "national": TIER_NATIONAL}
#: The oracle compares exact counts: small-cell suppression off (the published, suppressed
#: national report is checked on its own, test_the_published_national_report_hides_small_cells).
EXACT = ReportConfig(suppression_threshold=1)
# Delivery groups: when each station's events reach Kafka, relative to the test's start.
DELIVERY_AGO = (timedelta(days=11), timedelta(days=7), timedelta(days=3), timedelta(0))


def _report_month(today: date) -> str:
    last = today.replace(day=1) - timedelta(days=1)
    return f"{last.year:04d}-{last.month:02d}"


def _delivery_groups(h: Hierarchy, stations: tuple[str, ...], on: date) -> dict[str, int]:
    """Each station's delivery group: one per district (in turn), so that district and
    station on-time rates both vary."""
    districts = sorted({h.lookup(s, on).district.code for s in stations})
    index = {d: i % len(DELIVERY_AGO) for i, d in enumerate(districts)}
    return {s: index[h.lookup(s, on).district.code] for s in stations}


def _received(ev: SimEvent, group: int, now: datetime) -> datetime:
    """When the station's delivery group sent it (never before the day it was emitted)."""
    sent = now - DELIVERY_AGO[group]
    emitted = datetime(
        ev.emitted_on.year, ev.emitted_on.month, ev.emitted_on.day, 18, tzinfo=VN_TZ
    ).astimezone(UTC)
    return min(max(sent, emitted), now)


@dataclass
class Published:
    """What went to the raw topic, as the oracle needs it."""

    arrivals: list[Arrival]
    valid: list[SimEvent]
    bad: int
    total: int
    bad_events: list[SimEvent] = field(default_factory=list)


def _publish(
    result: SimulationResult,
    groups: dict[str, int],
    kafka: KafkaConnection,
    topic: str,
    now: datetime,
) -> Published:
    """Every event with the Kafka timestamp of its delivery group (``received_time``)."""
    out_producer = producer(kafka, fast_producer_config())
    failed: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            failed.append(err)

    out = Published([], [], 0, 0)
    for ev in result.events:
        received = _received(ev, groups.get(ev.station, len(DELIVERY_AGO) - 1), now)
        m = ev.message
        while True:
            try:
                out_producer.produce(
                    topic,
                    value=m.value,
                    key=m.key,
                    headers=m.headers,  # type: ignore[arg-type]
                    timestamp=int(received.timestamp() * 1000),
                    on_delivery=on_delivery,
                )
                break
            except BufferError:
                out_producer.poll(0.1)
        out.total += 1
        if ev.bad is not None:
            out.bad += 1
            out.bad_events.append(ev)
            continue
        change = ev.change
        assert change is not None
        period = (
            change.data.get("period") if change.data and "snapshot" in change.record_type else None
        )
        out.arrivals.append(
            Arrival(
                ev.station,
                change.time,
                received,
                change.record_type.value,
                change.record_id,
                period,
            )
        )
        out.valid.append(ev)
    left = out_producer.flush(120)
    assert not failed and not left, f"{len(failed)} failed, {left} unconfirmed: {failed[:3]}"
    return out


def _duplicates(valid: list[SimEvent]) -> list[SimEvent]:
    """A deterministic sample of already-sent events, re-sent byte for byte."""
    step = max(1, round(1 / DUPLICATE_SHARE))
    return valid[::step]


def _custom_deadlines(month: str, now: datetime, holidays: frozenset[date]) -> dict[str, int]:
    """Working-day deadlines that fall between the delivery groups (so on-time varies)."""

    def working_days_until(day: date) -> int:
        d, n = month_end(month), 0
        while d < day:
            d += timedelta(days=1)
            if d.weekday() < 5 and d not in holidays:
                n += 1
        return max(1, n)

    local = now.astimezone(VN_TZ).date()
    return {
        "station": working_days_until(local - timedelta(days=9)),
        "district": working_days_until(local - timedelta(days=5)),
        "province": working_days_until(local - timedelta(days=1)),
    }


# --- comparing reports with the oracle ------------------------------------------------------
def _compare(report: Report, expected: Expected, where: str) -> list[str]:
    problems: list[str] = []
    codes = {ind.code for ind in report.indicators}
    unknown = codes - set(KIND_INDICATORS[report.kind])
    if unknown:
        problems.append(f"{where}: indicators without an oracle: {sorted(unknown)}")
    for cell in report.cells:
        key = (cell.indicator.code, cell.unit_code)
        if key not in expected.parts:
            problems.append(f"{where}: unexpected cell {key}")
            continue
        want_num, want_den = expected.parts[key]
        want_value = expected.value(*key)
        got = (cell.numerator, cell.denominator)
        value_ok = (
            want_value is None
            if cell.value is None
            else want_value is not None and math.isclose(cell.value, want_value, rel_tol=1e-9)
        )
        if got != (want_num, want_den) or not value_ok:
            problems.append(
                f"{where}: {key[0]} unit {key[1]} ({cell.level}): report "
                f"{cell.numerator}/{cell.denominator}={cell.value} != oracle "
                f"{want_num}/{want_den}={want_value}"
            )
    return problems


def _reports(
    root: Path,
    h: Hierarchy,
    month: str,
    districts: tuple[str, ...],
    configs: dict[str, ReportConfig],
) -> dict[tuple[str, str, str, str], Report]:
    out: dict[tuple[str, str, str, str], Report] = {}
    scopes: list[tuple[str, str | None]] = [("national", None), ("province", PROVINCE)]
    scopes += [("district", d) for d in districts]
    for tier in ("national", "province", "district"):
        con = open_catalog(root, source_tier(tier))
        try:
            for scope_tier, unit in scopes:
                if scope_tier != tier:
                    continue
                for kind in KINDS:
                    for cfg_name, cfg in configs.items():
                        if kind != "completeness" and cfg_name != "default":
                            continue
                        r = run_report(
                            con, h, kind, tier, unit, month, "as-recorded", "national", config=cfg
                        )
                        out[(tier, unit or "VN", kind, cfg_name)] = r
        finally:
            con.close()
    return out


def _current_counts(root: Path) -> dict[tuple[str, str], tuple[int, int, int]]:
    """(tier, record type) → (current-state rows, distinct changes, physical rows)."""
    out: dict[tuple[str, str], tuple[int, int, int]] = {}
    for tier in TIER_SINKS:
        con = open_catalog(root, tier)
        try:
            for rt in RecordType:
                cur = con.execute(f'SELECT count(*) FROM "{rt.value}"').fetchall()[0][0]
                chg = con.execute(f'SELECT count(*) FROM "{rt.value}_changes"').fetchall()[0][0]
                phys = con.execute(f'SELECT count(*) FROM raw."{rt.value}"').fetchall()[0][0]
                out[(tier, rt.value)] = (int(cur), int(chg), int(phys))
        finally:
            con.close()
    return out


def _reset_partition_zero(kafka: KafkaConnection, pipeline: Pipeline) -> None:
    """Point every tier sink's group back to offset 0 of partition 0 (sinks stopped)."""
    client = admin(kafka)
    for name, base in TIER_SINKS.items():
        group = f"{pipeline.prefix}tuyen-sink-{name}"
        tp = TopicPartition(topic_name(base, pipeline.prefix), 0, 0)
        fut = client.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, [tp])])
        fut[group].result(timeout=30)


# --- the test ------------------------------------------------------------------------------
@dataclass
class OracleRun:
    """One simulated month through the pipeline, its reports and the oracle's inputs."""

    pipeline: Pipeline
    hierarchy: Hierarchy
    month: str
    truth: Truth
    published: Published
    duplicates: int
    reports: dict[tuple[str, str, str, str], Report]
    oracles: dict[str, Oracle]
    districts: tuple[str, ...]
    seconds_to_catch_up: float


@pytest.fixture(scope="module")
def run(kafka: KafkaConnection, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OracleRun]:
    began = time.monotonic()
    tmp = tmp_path_factory.mktemp("oracle")
    prefix = unique_name("oracle") + "."
    # the raw topic keeps the producers' CreateTime: the test replays history, each event
    # stamped with when its station delivered it (the worker is told so, --allow-create-time)
    apply_topics(
        kafka,
        [
            replace(s, config={"message.timestamp.type": "CreateTime"})
            if s.name == topic_name(RAW, prefix)
            else s
            for s in topic_specs(prefix, partitions=PARTITIONS)
        ],
    )
    pipeline = Pipeline(
        kafka=kafka,
        prefix=prefix,
        store_root=tmp / "store",
        log_dir=tmp / "logs",
        home=tmp / "home",
        worker_args=(
            "--partitions",
            str(PARTITIONS),
            "--session-timeout",
            "6",
            "--allow-create-time",
        ),
        sink_args=("--flush-interval", "1"),
        extra_env={"TUYEN_ACCESS_LOG": str(tmp / "access.log")},
    )
    h = Hierarchy.default()
    now = datetime.now(UTC).replace(microsecond=0)
    month = _report_month(now.astimezone(VN_TZ).date())
    first = date(int(month[:4]), int(month[5:7]), 1)
    start = first - timedelta(days=LEAD_DAYS)
    cfg = SimulationConfig(
        seed=5,
        provinces=(PROVINCE,),
        start=start.isoformat(),
        days=(month_end(month) - start).days + 1,
        scale=0.01,
        activity_scale=2.0,
        correction_rate=0.06,
        deletion_rate=0.03,
        offline_station_share=0.3,
        offline_days=(3, 8),
        bad_fraction=0.003,
    )
    result = simulate(cfg, hierarchy=h)
    try:
        pipeline.start()
        raw = topic_name(RAW, prefix)
        groups = _delivery_groups(h, result.stations, month_end(month))
        published = _publish(result, groups, kafka, raw, now)
        dupes = _duplicates(published.valid)
        write_kafka(dupes, kafka, raw)
        pipeline.wait_caught_up(180, settle_s=2)
        caught_up = time.monotonic() - began
        districts = tuple(c.code for c in h.children(PROVINCE, month_end(month)))
        custom = _custom_deadlines(month, now, frozenset())
        configs = {
            "default": EXACT,
            "custom": EXACT.model_copy(update={"deadline_working_days": custom}),
        }
        reports = _reports(pipeline.store_root, h, month, districts, configs)
        truth = result.truth
        oracles = {
            "default": Oracle(truth.records, published.arrivals, h, month),
            "custom": Oracle(truth.records, published.arrivals, h, month, deadlines=custom),
        }
        logger.info(
            "oracle run events=%d valid=%d bad=%d late=%d duplicates=%d caught_up_s=%.1f",
            published.total,
            len(published.valid),
            published.bad,
            len(truth.late_event_ids),
            len(dupes),
            caught_up,
        )
        yield OracleRun(
            pipeline, h, month, truth, published, len(dupes), reports, oracles, districts, caught_up
        )
    finally:
        pipeline.stop()


def test_the_month_has_corrections_deletions_late_bad_and_duplicated_events(
    run: OracleRun,
) -> None:
    truth = run.truth
    assert truth.late_event_ids, "no late events (offline stations)"
    assert any(r.deleted for r in truth.records.values()), "no deletions"
    assert any(r.version > 1 and not r.deleted for r in truth.records.values()), "no corrections"
    assert run.published.bad > 0 and run.duplicates > 0
    # not vacuous: most health indicators have data at province level
    prov = run.oracles["default"].expected("health", (PROVINCE,))
    nonzero = [k for k, (n, _) in prov.parts.items() if n and not k[0].startswith("incidence_")]
    assert len(nonzero) >= 8, nonzero
    comp = run.oracles["custom"].expected("completeness", (PROVINCE,))
    for ind in ("ontime_station", "ontime_district"):
        num, den = comp.get(ind, PROVINCE)
        assert den and 0 < num < den, (ind, num, den)


def test_every_indicator_at_every_tier_equals_the_oracle(run: OracleRun) -> None:
    """National, the province, each of its districts (whose breakdown is every station);
    health, resources, completeness (default deadlines and deadlines between deliveries)."""
    problems: list[str] = []
    compared = 0
    for (tier, unit, kind, cfg_name), report in sorted(run.reports.items()):
        oracle = run.oracles[cfg_name]
        units = (unit, *oracle.children(unit))
        assert {c for c, _ in report.children} >= set(oracle.children(unit)), (tier, unit)
        expected = oracle.expected(kind, units)
        problems += _compare(report, expected, f"{tier}/{unit}/{kind}/{cfg_name}")
        compared += len(report.cells)
    logger.info("oracle compared reports=%d cells=%d", len(run.reports), compared)
    assert compared > 3000
    assert not problems, f"{len(problems)} mismatches:\n" + "\n".join(problems[:60])


def _stored_vs_accepted(run: OracleRun, types: set[str]) -> list[str]:
    counts = _current_counts(run.pipeline.store_root)
    accepted = Counter(a.record_type for a in run.published.arrivals)
    live = Counter(rt for (rt, _), r in run.truth.records.items() if not r.deleted)
    problems = []
    for (tier, rt), (cur, changes, physical) in counts.items():
        if rt not in types:
            continue
        if (changes, physical, cur) != (accepted[rt], accepted[rt], live[rt]):
            problems.append(
                f"{tier}/{rt}: stored changes {changes}, rows {physical}, current {cur}; "
                f"accepted {accepted[rt]}, live {live[rt]}"
            )
    return problems


def test_every_accepted_change_is_stored_exactly_once_at_every_tier(run: OracleRun) -> None:
    """Duplicates dropped, nothing lost; the current state holds exactly the live records."""
    assert not _stored_vs_accepted(run, {rt.value for rt in RecordType})


def test_replaying_partition_zero_from_offset_zero_leaves_current_state_unchanged(
    run: OracleRun, kafka: KafkaConnection
) -> None:
    """Issue 5: replay into the existing stores (pipeline level): every current-state
    count, every change count, the Parquet files and every report stay as they were."""
    pipeline = run.pipeline
    root = pipeline.store_root
    before = _current_counts(root)
    files = sorted(p.relative_to(root) for p in root.rglob("*.parquet"))
    sinks = pipeline.services["sinks"]
    sinks.stop()
    _reset_partition_zero(kafka, pipeline)
    assert any(v > 0 for v in pipeline.remaining().values()), "offset reset did not take"
    sinks.start()
    pipeline.wait_caught_up(120, settle_s=2)
    assert _current_counts(root) == before
    after_files = sorted(p.relative_to(root) for p in root.rglob("*.parquet"))
    assert after_files == files, "a replay must rewrite the same files, never add any"
    default = {"default": EXACT}
    replayed = _reports(root, run.hierarchy, run.month, run.districts, default)
    for key, report in replayed.items():
        assert report.cells == run.reports[key].cells, key


# --- what an analyst with national credentials can read (issue 12, "Done when") ------------
def _pseudonymiser(pipeline: Pipeline) -> Pseudonymiser:
    """The run's pseudonym key: the workers run in development mode (the tests' own)."""
    key = pipeline.env().get("TUYEN_PSEUDONYM_KEY", DEV_PSEUDONYM_KEY)
    return Pseudonymiser(decode_pseudonym_key(key, allow_development=True))


def test_the_national_person_release_is_k_anonymous(run: OracleRun) -> None:
    """The stream operator's release (``tuyen national release``) over the run's province
    tier: every (province, age band, birth month) of the national person view holds ≥ 5."""
    root = run.pipeline.store_root
    source = open_catalog(root, "province")
    try:
        report = release_person_qi(
            source, str(root), _pseudonymiser(run.pipeline).pseudonym, k=5, on=date.today()
        )
    finally:
        source.close()
    con = open_catalog(root, "national")
    try:
        smallest, released, suppressed = smallest_qi_class(con)
    finally:
        con.close()
    logger.info("national release persons=%d suppressed=%d k=%s", released, suppressed, smallest)
    assert released > 0 and smallest is not None and smallest >= 5, (smallest, report)
    assert suppressed == report.suppressed


def test_no_identifier_reaches_the_national_store_and_nothing_joins_it_to_a_province(
    run: OracleRun,
) -> None:
    root = run.pipeline.store_root
    idents, births = published_identifiers(
        ev.message.value for ev in run.published.valid + run.published.bad_events
    )
    assert len(idents) > 100 and births and run.published.bad_events
    found = [
        (f, col, text[:80])
        for f, col, text in national_values(root / "national")
        if leaks(text, idents, births)
    ]
    assert not found, found[:10]
    national, province = open_catalog(root, "national"), open_catalog(root, "province")
    try:
        assert not timestamp_columns(national)
        assert not linkable_columns(national, province)
    finally:
        national.close()
        province.close()


def test_the_published_national_report_hides_small_cells(run: OracleRun) -> None:
    """The national report as published (default settings): small cells suppressed, every
    published count equal to the exact one, none recoverable by subtraction."""
    con = open_catalog(run.pipeline.store_root, source_tier("national"))
    try:
        shown = run_report(con, run.hierarchy, "health", "national", None, run.month, trend=True)
        exact = run_report(
            con, run.hierarchy, "health", "national", None, run.month, config=EXACT, trend=True
        )
    finally:
        con.close()
    assert shown.suppression is not None
    for cell in shown.cells:
        if cell.numerator is not None:
            assert cell.numerator == exact.numerator(cell.indicator.code, cell.unit_code)
    assert_safe(exact, shown, 5)
