"""End to end: a simulated month through the real pipeline, every report checked by an oracle.

For a simulated month (with the stations' history, entry delays from the same day to paper
registers months later, corrections weeks later, deletions, offline stations, bad and
duplicated events, deaths of registered patients, late and missing submissions), every
indicator of every report — national, the province, each of its districts; health, resources,
completeness; as recorded and restated; latest and as submitted — equals the value computed
independently (``tests/e2e/oracle.py``) from every accepted change. The sign-off is real:
approvals, a send-back and the province's lock go through the API, the ``signoff.decisions``
topic and the ``signoff`` sink; records held back until after the lock (late back-entries)
must change "latest" and leave "as submitted" alone. Then a replay of partition 0 of every
tier topic from offset 0 into the existing stores leaves everything unchanged.

The pipeline is the real one: stream worker and sinks as processes (``deploy.pipeline``)
against the session's Kafka broker, topics under a unique prefix.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, KafkaError, Message, TopicPartition

from deploy.pipeline import Pipeline
from deploy.topics import apply_topics
from producers.simulator import SimEvent, entered_late, simulate
from producers.writers import fast_producer_config, write_kafka
from schemas.hierarchy import VN_TZ, Hierarchy
from schemas.kafka import KafkaConnection, admin, producer
from schemas.keys import DEV_KEY_SEED
from schemas.registry import RecordType
from schemas.signoff import DevApproverRegistry, dev_approver
from schemas.topics import (
    RAW,
    SIGNOFF,
    TIER_DISTRICT,
    TIER_NATIONAL,
    TIER_PROVINCE,
    replay_specs,
    topic_name,
    topic_specs,
)
from sinks.catalog import open_catalog
from sinks.national import release_person_qi
from sinks.reports import Report, ReportConfig, ReportRequest, run_report, source_tier
from sinks.signoff.publisher import KafkaDecisionPublisher
from sinks.signoff.service import Signoff
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
from tests.e2e.oracle import (
    KIND_INDICATORS,
    PROVINCE,
    Expected,
    Ledger,
    Oracle,
    Version,
    month_end,
    oracle_simulation,
)
from tests.helpers import unique_name
from tests.unit.sinks.test_report_smallcells import assert_safe

pytestmark = [pytest.mark.broker, pytest.mark.slow]

logger = logging.getLogger(__name__)

PARTITIONS = 3
DUPLICATE_SHARE = 0.04
HELD_BACK_SHARE = 0.05  # records entered only after the lock: late paper registers
KINDS = ("health", "resources", "completeness")
TIER_SINKS = {"district": TIER_DISTRICT, "province": TIER_PROVINCE, "national": TIER_NATIONAL}
#: The oracle compares exact counts: small-cell suppression off (the published, suppressed
#: national report is checked on its own, test_the_published_national_report_hides_small_cells).
EXACT = ReportConfig(suppression_threshold=1)
# Delivery groups: when each station's events reach Kafka, relative to the test's start.
DELIVERY_AGO = (timedelta(days=11), timedelta(days=7), timedelta(days=3), timedelta(0))


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

    versions: list[Version] = field(default_factory=list)
    valid: list[SimEvent] = field(default_factory=list)
    held: list[SimEvent] = field(default_factory=list)
    bad: int = 0
    total: int = 0
    late: int = 0
    bad_events: list[SimEvent] = field(default_factory=list)


def _version(ev: SimEvent, received: datetime) -> Version:
    c = ev.change
    assert c is not None
    return Version(
        c.record_type.value, c.record_id, c.record_version, c.op.value, ev.station, c.time,
        received, c.data,
    )  # fmt: skip


def _produce(events: list[SimEvent], kafka: KafkaConnection, topic: str,
             stamp: dict[str, datetime] | None) -> dict[str, datetime]:  # fmt: skip
    """Produce ``events``; with ``stamp`` (event id → timestamp) as their Kafka timestamps,
    else the producer's clock. Returns each event's timestamp as the broker acknowledged."""
    out_producer = producer(kafka, fast_producer_config())
    failed: list[KafkaError] = []
    acked: dict[str, datetime] = {}

    def on_delivery(event_id: str, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            failed.append(err)
            return
        acked[event_id] = datetime.fromtimestamp(msg.timestamp()[1] / 1000, UTC)

    for ev in events:
        m = ev.message
        ts = int(stamp[ev.event_id].timestamp() * 1000) if stamp else 0  # 0: the producer's
        acknowledge = partial(on_delivery, ev.event_id)
        while True:
            try:
                out_producer.produce(topic, value=m.value, key=m.key, headers=m.headers,  # type: ignore[arg-type]
                                     on_delivery=acknowledge, timestamp=ts)  # fmt: skip
                break
            except BufferError:
                out_producer.poll(0.1)
    left = out_producer.flush(120)
    assert not failed and not left, f"{len(failed)} failed, {left} unconfirmed: {failed[:3]}"
    return acked


def _publish(events: list[SimEvent], groups: dict[str, int], kafka: KafkaConnection, topic: str,
             now: datetime, month: str) -> Published:  # fmt: skip
    """Phase 1: every event but the held-back records, with its delivery group's timestamp."""
    out = Published()
    first: list[SimEvent] = []
    stamp: dict[str, datetime] = {}
    for ev in events:
        out.total += 1
        if entered_late(ev, month, HELD_BACK_SHARE):
            out.held.append(ev)
            continue
        first.append(ev)
        stamp[ev.event_id] = _received(ev, groups.get(ev.station, len(DELIVERY_AGO) - 1), now)
        if ev.bad is not None:
            out.bad += 1
            out.bad_events.append(ev)
            continue
        out.valid.append(ev)
        out.late += int(ev.late)
    _produce(first, kafka, topic, stamp)
    out.versions = [_version(ev, stamp[ev.event_id]) for ev in out.valid]
    return out


def _custom_deadlines(month: str, now: datetime) -> dict[str, int]:
    """A station deadline between the delivery groups (on-time varies), and district and
    province deadlines after the sign-off of this test (so approvals and the lock count)."""

    def working_days_until(day: date) -> int:
        d, n = month_end(month), 0
        while d < day:
            d += timedelta(days=1)
            if d.weekday() < 5:
                n += 1
        return max(1, n)

    local = now.astimezone(VN_TZ).date()
    return {
        "station": working_days_until(local - timedelta(days=9)),
        "district": working_days_until(local + timedelta(days=14)),
        "province": working_days_until(local + timedelta(days=14)),
    }


# --- the sign-off through the API, the topic and the sink -------------------------------------
def _sign_off(root: Path, h: Hierarchy, kafka: KafkaConnection, prefix: str, month: str) -> Ledger:
    """Approve every submitted station of every other district, send one back, lock."""
    registry = DevApproverRegistry(DEV_KEY_SEED)
    publisher = KafkaDecisionPublisher(kafka, topic_name(SIGNOFF, prefix))
    ledger = Ledger()
    con = open_catalog(root, "province")
    try:
        svc = Signoff(con, h, publisher, registry=registry)
        status = svc.status(f"province:{PROVINCE}", PROVINCE, month)
        districts = sorted({s.district for s in status.stations})
        sent_back = False
        for s in status.stations:
            if s.submitted_at is None:
                continue
            sup = dev_approver(s.district)
            if districts.index(s.district) % 2 == 0:
                d = svc.approve(f"district:{s.district}", s.station, month, approver=sup,
                                key=registry.signing_key(sup))  # fmt: skip
                ledger.approvals[(s.station, month)] = d.received
            elif not sent_back:
                svc.send_back(f"district:{s.district}", s.station, month, reason="thiếu số liệu",
                              approver=sup, key=registry.signing_key(sup))  # fmt: skip
                sent_back = True
        boss = dev_approver(PROVINCE)
        lock = svc.lock(f"province:{PROVINCE}", PROVINCE, month, approver=boss,
                        key=registry.signing_key(boss), force=True)  # fmt: skip
        ledger.locks[(PROVINCE, month)] = lock.received
    finally:
        con.close()
    return ledger


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


Key = tuple[str, str, str, str, str, str]  # tier, unit, kind, config, mode, basis


def _plan(districts: tuple[str, ...]) -> list[Key]:
    """The reports compared: every scope × kind as recorded, latest and as submitted,
    completeness also with custom deadlines; national and province also restated."""
    scopes = [("national", "VN"), ("province", PROVINCE), *(("district", d) for d in districts)]
    out: list[Key] = []
    for tier, unit in scopes:
        for kind in KINDS:
            bases = ("latest",) if kind == "completeness" else ("latest", "submitted")
            for basis in bases:
                out.append((tier, unit, kind, "default", "as-recorded", basis))
            if kind == "completeness":
                out.append((tier, unit, kind, "custom", "as-recorded", "latest"))
        if tier != "district":
            out.append((tier, unit, "health", "default", "current", "latest"))
            out.append((tier, unit, "completeness", "default", "current", "latest"))
    return out


def _reports(root: Path, h: Hierarchy, month: str, plan: list[Key],
             configs: dict[str, ReportConfig]) -> dict[Key, Report]:  # fmt: skip
    out: dict[Key, Report] = {}
    for tier in ("national", "province", "district"):
        con = open_catalog(root, source_tier(tier))
        try:
            for key in plan:
                if key[0] != tier:
                    continue
                _tier, unit, kind, cfg, mode, basis = key
                request = ReportRequest(
                    kind=kind, tier=tier, unit=None if unit == "VN" else unit, period=month,
                    principal="national", hierarchy_mode=mode, basis=basis,
                )  # fmt: skip
                out[key] = run_report(con, h, request, config=configs[cfg])
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
    published: Published
    ledger: Ledger
    duplicates: int
    reports: dict[Key, Report]
    oracles: dict[tuple[str, str, str], Oracle]
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
        replay_specs(topic_specs(prefix, partitions=PARTITIONS, record_topics="single"), prefix),
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
    month, cfg = oracle_simulation(now)
    result = simulate(cfg, hierarchy=h)
    events = list(result.events)
    try:
        pipeline.start()
        raw = topic_name(RAW, prefix)
        groups = _delivery_groups(h, result.stations, month_end(month))
        published = _publish(events, groups, kafka, raw, now, month)
        dupes = published.valid[:: max(1, round(1 / DUPLICATE_SHARE))]
        write_kafka(dupes, kafka, raw)
        pipeline.wait_caught_up(180, settle_s=2)
        ledger = _sign_off(pipeline.store_root, h, kafka, prefix, month)
        # records entered after the lock (back-entered registers): the broker's own time
        acked = _produce(published.held, kafka, raw, None)
        published.versions += [
            _version(ev, acked[ev.event_id]) for ev in published.held if ev.bad is None
        ]
        pipeline.wait_caught_up(180, settle_s=2)
        caught_up = time.monotonic() - began
        districts = tuple(c.code for c in h.children(PROVINCE, month_end(month)))
        custom = _custom_deadlines(month, now)
        configs = {
            "default": EXACT,
            "custom": EXACT.model_copy(update={"deadline_working_days": custom}),
        }
        plan = _plan(districts)
        reports = _reports(pipeline.store_root, h, month, plan, configs)
        oracles: dict[tuple[str, str, str], Oracle] = {}
        for _t, _u, _k, cfg_name, mode, basis in plan:
            if (cfg_name, mode, basis) not in oracles:
                deadlines = custom if cfg_name == "custom" else None
                oracles[(cfg_name, mode, basis)] = Oracle(
                    published.versions, h, month, deadlines=deadlines, ledger=ledger,
                    mode=mode, basis=basis,
                )  # fmt: skip
        logger.info(
            "oracle run events=%d valid=%d bad=%d late=%d held=%d duplicates=%d "
            "approved=%d caught_up_s=%.1f",
            published.total, len(published.valid), published.bad, published.late,
            len(published.held), len(dupes), len(ledger.approvals), caught_up,
        )  # fmt: skip
        yield OracleRun(pipeline, h, month, published, ledger, len(dupes), reports, oracles,
                        districts, caught_up)  # fmt: skip
    finally:
        pipeline.stop()


def test_the_month_has_the_delays_corrections_and_sign_off_it_must(run: OracleRun) -> None:
    pub = run.published
    versions = pub.versions
    assert pub.late > 0, "no late events (offline stations)"
    assert any(v.op == "delete" for v in versions), "no deletions"
    assert any(v.version > 1 and v.op == "upsert" for v in versions), "no corrections"
    assert pub.bad > 0 and run.duplicates > 0 and pub.held
    # service dates before the entry: days later, and paper registers months later
    served = [(v, _service_day(v)) for v in versions if v.data and v.record_type != "person"]
    lag = Counter(
        min((v.event_time.astimezone(VN_TZ).date() - day).days // 30, 3)
        for v, day in served
        if day is not None
    )
    assert lag[0] and lag[1] and lag[2], lag
    assert any(v.record_type == "report_submission" for v in versions)
    assert run.ledger.approvals and run.ledger.locks
    # not vacuous: most health indicators have data at province level
    prov = run.oracles[("default", "as-recorded", "latest")].expected("health", (PROVINCE,))
    nonzero = [k for k, (n, _) in prov.parts.items() if n and not k[0].startswith("incidence_")]
    assert len(nonzero) >= 14, nonzero
    comp = run.oracles[("custom", "as-recorded", "latest")].expected("completeness", (PROVINCE,))
    for ind in ("reporting_completeness", "ontime_station", "reports_approved"):
        num, den = comp.get(ind, PROVINCE)
        assert den and 0 < num < den, (ind, num, den)


def _service_day(v: Version) -> date | None:
    assert v.data is not None
    for name in ("encounter_date", "date", "visit_date", "birth_date", "death_date",
                 "onset_date", "enrolment_date"):  # fmt: skip
        if name in v.data:
            return date.fromisoformat(v.data[name])
    return None


def test_every_indicator_at_every_tier_equals_the_oracle(run: OracleRun) -> None:
    """National, the province, each of its districts (whose breakdown is every station);
    health, resources, completeness; latest and as submitted; as recorded and restated."""
    problems: list[str] = []
    compared = 0
    for key, report in sorted(run.reports.items()):
        _tier, unit, kind, cfg_name, mode, basis = key
        oracle = run.oracles[(cfg_name, mode, basis)]
        units = (unit, *oracle.children(unit))
        assert {c for c, _ in report.children} >= set(oracle.children(unit)), key
        problems += _compare(report, oracle.expected(kind, units), "/".join(key))
        compared += len(report.cells)
    logger.info("oracle compared reports=%d cells=%d", len(run.reports), compared)
    assert compared > 5000
    assert not problems, f"{len(problems)} mismatches:\n" + "\n".join(problems[:60])


def test_the_locked_month_shows_late_records_as_revisions_only(run: OracleRun) -> None:
    latest = run.reports[("province", PROVINCE, "health", "default", "as-recorded", "latest")]
    frozen = run.reports[("province", PROVINCE, "health", "default", "as-recorded", "submitted")]
    revised = [c for c in latest.cells if c.revised]
    assert revised, "the records entered after the lock changed nothing"
    for c in revised:
        assert c.submitted == (frozen.numerator(c.indicator.code, c.unit_code),
                               frozen.denominator(c.indicator.code, c.unit_code))  # fmt: skip


def _stored_vs_accepted(run: OracleRun, types: set[str]) -> list[str]:
    counts = _current_counts(run.pipeline.store_root)
    accepted = Counter(v.record_type for v in run.published.versions)
    final: dict[tuple[str, str], Version] = {}
    for v in run.published.versions:
        key = (v.record_type, v.record_id)
        if key not in final or v.version > final[key].version:
            final[key] = v
    live = Counter(rt for (rt, _), v in final.items() if v.op != "delete")
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
    plan = [k for k in run.reports if k[3] == "default"]
    replayed = _reports(root, run.hierarchy, run.month, plan, {"default": EXACT})
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
        request = ReportRequest(
            kind="health", tier="national", unit=None, period=run.month, principal="national",
            trend=True,
        )  # fmt: skip
        shown = run_report(con, run.hierarchy, request)
        exact = run_report(con, run.hierarchy, request, config=EXACT)
    finally:
        con.close()
    assert shown.suppression is not None
    for cell in shown.cells:
        if cell.numerator is not None:
            assert cell.numerator == exact.numerator(cell.indicator.code, cell.unit_code)
    assert_safe(exact, shown, 5)
