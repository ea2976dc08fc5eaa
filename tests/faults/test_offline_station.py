"""Fault: a station offline for 3 simulated days across a month end, then catching up.

Every event carries its station's send time as the Kafka timestamp (``received_time``; the
run replays history, so its raw topic keeps CreateTime and the worker runs with
``--allow-create-time`` — in production the broker stamps LogAppendTime):
online stations send a minute after the event; the offline station keeps its events from
the outage's start and sends them all when it comes back, 72 hours later. Its late events
must land in the months they happened in, and the completeness report must show the
station's month as reported but late. The station deadline is one working day in this run
(``ReportConfig``), because a 3-day outage cannot cross the default 5-working-day deadline;
the default is checked too, where the same month stays on time.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest

from schemas import DevKeyRegistry, dev_signer, encode, make_change, sign
from schemas.hierarchy import VN_TZ, Hierarchy
from schemas.kafka import KafkaConnection
from schemas.keys import DEV_KEY_SEED
from sinks.catalog import open_catalog
from sinks.reports.config import ReportConfig
from sinks.reports.engine import run_report
from sinks.reports.model import Report
from sinks.reports.periods import month_end, working_day_deadline
from sinks.reports.request import ReportRequest
from tests.faults.checks import RECORD_TYPES, FaultResult, StoreContract, finish
from tests.faults.pipeline import start_run
from tests.faults.traffic import Expectation, Outgoing, from_sim, simulated

pytestmark = [pytest.mark.slow, pytest.mark.broker]

OUTAGE = timedelta(days=3)
TIGHT = ReportConfig(deadline_working_days={"station": 1, "district": 15, "province": 25})


def _month(d: date) -> str:
    return f"{d:%Y-%m}"


def outage_month(today: date) -> tuple[str, datetime]:
    """The latest finished month whose 1-working-day deadline a 3-day outage ending just
    after that deadline can straddle; returns it and the station's return instant."""
    first = today.replace(day=1)
    for _ in range(6):
        first = (first - timedelta(days=1)).replace(day=1)
        month = _month(first)
        back = working_day_deadline(month_end(month), 1).date()
        if back - OUTAGE.days * timedelta(days=1) <= month_end(month) and back + timedelta(
            days=2
        ) < today - timedelta(days=1):
            return month, datetime.combine(back, time(8), tzinfo=VN_TZ)
    raise AssertionError("no month found")  # pragma: no cover


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def _submission(station: str, month: str, when: datetime, sent: datetime) -> Outgoing:
    """The station head's signed submission of ``month``, made at ``when``."""
    signer = dev_signer(station, 1)
    change = make_change(
        station=station, record_type="report_submission",
        record_id=f"{station}:submission:{month}", op="upsert", record_version=1,
        station_seq=900_000, signer=signer, data={"period": month}, time=when,
    )  # fmt: skip
    signed = sign(change, DevKeyRegistry(DEV_KEY_SEED).signing_key(signer))
    return Outgoing(signed.id, encode(signed), _ms(sent), None, signed)


@pytest.fixture(scope="module")
def result(
    kafka: KafkaConnection, tmp_path_factory: pytest.TempPathFactory, artifacts_dir: Path
) -> Iterator[FaultResult]:
    month, back = outage_month(date.today())
    start = month_end(month) - timedelta(days=3)
    days = (back.date() - start).days + 2
    events, sim = simulated(
        14, start=start, days=days, n_stations=5, bad_fraction=0.0, submissions=False
    )
    station = sim.stations[0]
    gone = back - OUTAGE
    sends: list[tuple[int, int, Outgoing]] = []
    late: dict[str, datetime] = {}
    for i, ev in enumerate(events):
        t = ev.time + timedelta(minutes=1)
        if ev.station == station and gone <= t < back:
            t = back
            late[ev.event_id] = ev.time
        sends.append((_ms(t), i, from_sim(ev, _ms(t))))
    # every station head submits the month the morning after it ends; the offline station's
    # submission waits in its outbox until it is back
    for n, code in enumerate(sim.stations):
        when = datetime.combine(month_end(month) + timedelta(days=1), time(9), tzinfo=VN_TZ)
        sent = back if code == station and gone <= when < back else when
        sends.append((_ms(sent), len(events) + n, _submission(code, month, when, sent)))
    out = [o for _ts, _i, o in sorted(sends, key=lambda x: (x[0], x[1]))]
    exp = Expectation()
    exp.add(out)
    fp = start_run(kafka, tmp_path_factory, "offline", create_time=True)
    try:
        fp.start()
        fp.publisher.send(out)
        fp.publisher.flush()
        recovery = fp.wait_caught_up()
        measured = {
            "station": station,
            "month": month,
            "offline_from": gone.isoformat(),
            "back_at": back.isoformat(),
            "late_events": len(late),
            "catch_up_s": round(recovery, 1),
        }
        res = finish(fp, exp, artifacts_dir, "offline_station", measured)
        res.measured["late"] = late
        res.measured["root"] = fp.store_root
        yield res
    finally:
        fp.stop()


def _report(result: FaultResult, config: ReportConfig | None) -> tuple[Report, str]:
    h = Hierarchy.default()
    station = result.measured["station"]
    month = result.measured["month"]
    district = h.lookup(station, month_end(month)).district.code
    con = open_catalog(result.measured["root"], "district")
    try:
        request = ReportRequest(
            kind="completeness", tier="district", unit=district, period=month,
            principal="national",
        )  # fmt: skip
        report = run_report(con, h, request, config=config)
    finally:
        con.close()
    return report, station


class TestOfflineStation(StoreContract):
    """A station offline for 3 simulated days across a month end, then catching up."""

    def test_late_events_land_in_the_month_they_happened(self, result: FaultResult) -> None:
        late: dict[str, datetime] = result.measured["late"]
        assert len(late) > 10
        con = open_catalog(result.measured["root"], "district")
        try:
            rows = con.execute(
                " UNION ALL ".join(
                    f'SELECT event_id, event_month, event_time, received_time FROM "{rt}_changes"'
                    for rt in RECORD_TYPES
                )
            ).fetchall()
        finally:
            con.close()
        back = datetime.fromisoformat(result.measured["back_at"])
        seen = {eid: (m, et, rt) for eid, m, et, rt in rows if eid in late}
        assert set(seen) == set(late)
        months = set()
        for eid, (m, et, rt) in seen.items():
            assert m == f"{late[eid].astimezone(VN_TZ):%Y-%m}", eid
            assert et.astimezone(UTC) == late[eid].astimezone(UTC)
            assert rt.astimezone(UTC) == back.astimezone(UTC), (eid, rt)
            months.add(m)
        assert result.measured["month"] in months  # late events of the closed month
        assert len(months) == 2  # ... and of the month the station came back in

    def test_the_stations_month_is_reported_but_late(self, result: FaultResult) -> None:
        report, station = _report(result, TIGHT)
        assert report.numerator("reporting_completeness", station) == 1
        assert report.denominator("ontime_station", station) == 1
        assert report.numerator("ontime_station", station) == 0

    def test_on_time_rate_drops_by_that_station_alone(self, result: FaultResult) -> None:
        tight, station = _report(result, TIGHT)
        relaxed, _ = _report(result, None)
        # 3 days offline stay within the default 5 working days: on time there
        assert relaxed.numerator("ontime_station", station) == 1
        others = [
            c.unit_code
            for c in tight.child_cells("reporting_completeness")
            if c.numerator and c.unit_code != station
        ]
        assert all(tight.numerator("ontime_station", s) == 1 for s in others)
        assert tight.numerator("ontime_station") == (relaxed.numerator("ontime_station") or 0) - 1
        low, high = tight.value("ontime_station"), relaxed.value("ontime_station")
        assert low is not None and high is not None and low < high
