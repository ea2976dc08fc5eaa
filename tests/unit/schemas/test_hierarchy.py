"""The default (real Vietnamese) hierarchy: counts, lookups, routing, population, restating."""

from __future__ import annotations

import csv
import gzip
import time
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.exceptions import ContractError
from schemas.hierarchy import (
    REORGANISATION_DATE,
    Hierarchy,
    HierarchyError,
    StationClosed,
    StationNotYetOpen,
    Tier,
    UnknownStation,
    UnknownUnit,
    province_merger,
    reference_dir,
    restate_province,
)
from schemas.hierarchy.population import PopulationGroup

BEFORE = date(2025, 6, 30)
AFTER = REORGANISATION_DATE
NATIONAL_2019 = 96_208_984
DATES = st.dates(min_value=date(2015, 1, 1), max_value=date(2035, 12, 31))


@pytest.fixture(scope="module")
def h() -> Hierarchy:
    return Hierarchy.default()


def test_load_time_and_cache() -> None:
    ref = reference_dir()
    start = time.perf_counter()
    fresh = Hierarchy.from_csv(
        ref / "units.csv.gz", ref / "links.csv.gz", ref / "population.csv.gz"
    )
    elapsed = time.perf_counter() - start
    print(f"\nhierarchy load (read + validate + index): {elapsed * 1000:.0f} ms")
    assert elapsed < 5.0  # loose guard; the target (well under 1 s) is measured, not asserted
    assert Hierarchy.default() is Hierarchy.default()
    assert len(fresh.codes(Tier.STATION)) == len(Hierarchy.default().codes(Tier.STATION))


def test_counts_before_and_after(h: Hierarchy) -> None:
    assert len(h.units(Tier.NATIONAL, BEFORE)) == 1
    assert len(h.units(Tier.PROVINCE, BEFORE)) == 63
    assert len(h.units(Tier.PROVINCE, AFTER)) == 34
    assert 690 <= len(h.units(Tier.DISTRICT, BEFORE)) <= 710
    assert 10_000 <= len(h.units(Tier.STATION, BEFORE)) <= 10_700
    assert len(h.units(Tier.STATION, AFTER)) == 3321
    assert all(r.kind == "khu vực" for r in h.units(Tier.DISTRICT, AFTER))
    assert h.boundaries == (AFTER,)
    assert h.current_date == AFTER


def test_lookup_old_and_new(h: Hierarchy) -> None:
    # Phường Trúc Bạch (00004) keeps its code: becomes Phường Ba Đình under KV001.
    old = h.lookup("00004", BEFORE)
    assert (old.station.name, old.district.code, old.province.code) == (
        "Phường Trúc Bạch",
        "001",
        "01",
    )
    assert old.national.code == "VN"
    new = h.lookup("00004", AFTER)
    assert new.station.name == "Phường Ba Đình"
    assert (new.district.code, new.district.name) == ("KV001", "TTYT khu vực Ba Đình")
    assert new.codes() == {
        "station": "00004",
        "district": "KV001",
        "province": "01",
        "national": "VN",
    }
    assert h.opened_at("00004") is None
    assert h.closed_at("00004") is None


def test_timestamps_use_vietnam_time(h: Hierarchy) -> None:
    # 2025-06-30 18:00 UTC is 2025-07-01 01:00 in Vietnam: the new structure.
    s = h.lookup("00004", datetime(2025, 6, 30, 18, tzinfo=UTC))
    assert s.district.code == "KV001"
    s = h.lookup("00004", datetime(2025, 6, 30, 16, 59, tzinfo=UTC))
    assert s.district.code == "001"
    assert h.lookup("00004", datetime(2025, 7, 1, 0, 0)).district.code == "KV001"  # naive=local


def test_lookup_errors(h: Hierarchy) -> None:
    with pytest.raises(UnknownStation) as e:
        h.lookup("99999", BEFORE)
    assert e.value.reason == "unknown_station"
    with pytest.raises(UnknownStation):
        h.lookup("001", BEFORE)  # a district, not a station
    with pytest.raises(StationClosed) as c:
        h.lookup("00001", AFTER)  # Phường Phúc Xá merged into Phường Ba Đình
    assert c.value.reason == "closed_station" and c.value.code == "00001"
    with pytest.raises(StationNotYetOpen) as n:
        h.lookup("26732", BEFORE)  # Đặc khu Côn Đảo, a new code in 2025
    assert n.value.reason == "before_station_opened"
    assert h.opened_at("26732") == AFTER
    assert h.closed_at("00001") == AFTER
    for err in (e.value, c.value, n.value):
        assert isinstance(err, HierarchyError) and isinstance(err, ContractError)
        assert not err.retryable


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), day=DATES)
def test_every_open_station_routes_to_one_chain(
    h: Hierarchy, data: st.DataObject, day: date
) -> None:
    station = data.draw(st.sampled_from(h.codes(Tier.STATION)))
    try:
        p = h.lookup(station, day)
    except (StationClosed, StationNotYetOpen):
        assert not h.exists(station, day)
        return
    assert p.station.code == station and p.at == day
    assert p.district.tier is Tier.DISTRICT and p.province.tier is Tier.PROVINCE
    # the chain is the parent chain, and the station is a child of exactly one district
    assert h.parent(station, day) == p.district
    assert h.parent(p.district.code, day) == p.province
    holders = [d for d in h.children(p.province.code, day) if station in h.stations_in(d.code, day)]
    assert holders == [p.district]
    assert station in h.stations_in(p.province.code, day)
    # the era decides the shape of the chain
    assert p.district.code.startswith("KV") == (day >= AFTER)
    assert (p.province.code in set(province_merger().values())) or day < AFTER


@pytest.mark.parametrize("day", [BEFORE, AFTER])
def test_every_station_is_placed_once(h: Hierarchy, day: date) -> None:
    stations = [r.code for r in h.units(Tier.STATION, day)]
    under_provinces = [s for p in h.units(Tier.PROVINCE, day) for s in h.stations_in(p.code, day)]
    assert sorted(under_provinces) == sorted(stations)
    assert len(set(stations)) == len(stations)
    assert h.stations_in("VN", day) == tuple(sorted(stations))


@pytest.mark.parametrize("day", [date(2019, 4, 1), BEFORE, AFTER, date(2030, 1, 1)])
@pytest.mark.parametrize("group", ["total", "under_1", "women_15_49"])
def test_population_sums_at_every_tier(h: Hierarchy, day: date, group: PopulationGroup) -> None:
    for tier in (Tier.NATIONAL, Tier.PROVINCE, Tier.DISTRICT):
        for unit in h.units(tier, day):
            kids = h.children(unit.code, day)
            assert h.population(unit.code, day, group) == sum(
                h.population(k.code, day, group) for k in kids
            )


@pytest.fixture(scope="module")
def census() -> Hierarchy:
    """The default hierarchy without growth: the 2019 census counts as they are."""
    ref = reference_dir()
    return Hierarchy.from_csv(ref / "units.csv.gz", ref / "links.csv.gz", ref / "population.csv.gz")


def test_population_is_the_census_by_commune(census: Hierarchy) -> None:
    with (reference_dir() / "province_population.csv").open(encoding="utf-8") as fh:
        totals = {r["old_province_code"]: int(r["population_2019"]) for r in csv.DictReader(fh)}
    assert sum(totals.values()) == NATIONAL_2019
    with gzip.open(reference_dir() / "commune_population_2019.csv.gz", "rt") as fh:
        communes = {r["ward_code"]: int(r["population_2019"]) for r in csv.DictReader(fh)}
    for station in census.units(Tier.STATION, BEFORE):
        assert census.population(station.code, BEFORE) == communes[station.code]
    # island districts without a commune before July 2025 (Bạch Long Vĩ, Cồn Cỏ, Lý Sơn,
    # Côn Đảo) have no station: their people count from the special zones (đặc khu) on
    islands = {"31": 624, "45": 346, "51": 18_550, "77": 8_827}
    for code, total in totals.items():
        assert census.population(code, BEFORE) == total - islands.get(code, 0)
    merged: dict[str, int] = {}
    for old, new in province_merger().items():
        merged[new] = merged.get(new, 0) + totals[old]
    for code, total in merged.items():
        assert census.population(code, AFTER) == total
    assert census.population("VN", AFTER) == NATIONAL_2019
    stale = [
        s.code for s in census.units(Tier.STATION, BEFORE) if not census.population(s.code, BEFORE)
    ]
    assert len(stale) == 11  # 0.6.0 lists 11 communes merged before the 2019 census


def test_population_grows_between_the_census_and_the_2024_survey(
    h: Hierarchy, census: Hierarchy
) -> None:
    growth = h.growth
    assert growth is not None
    assert growth.total(date(2019, 4, 1)) == pytest.approx(NATIONAL_2019)
    assert growth.total(date(2024, 4, 1)) == pytest.approx(101_112_656)
    n_stations = len(h.units(Tier.STATION, AFTER))
    for year in (2025, 2026, 2030):
        day = date(year, 12, 31)
        want = growth.total(date(year, 7, 1))  # mid-year: the denominator of an annual rate
        assert abs(h.population("VN", day) - want) <= n_stations / 2 + 1
        assert h.population("VN", day) > census.population("VN", day)
    assert h.population("VN", date(2026, 1, 1)) == h.population("VN", date(2026, 12, 31))
    assert h.population("VN", date(2027, 1, 1)) > h.population("VN", date(2026, 12, 31))
    assert "estimate" in h.population_basis(date(2026, 10, 31))


def test_restate_province_and_units(h: Hierarchy) -> None:
    merger = province_merger()
    assert len(merger) == 63 and len(set(merger.values())) == 34
    assert restate_province("10") == "15"  # Lào Cai (old) → Lào Cai (new, code of Yên Bái)
    assert restate_province("01") == "01"
    with pytest.raises(UnknownUnit):
        restate_province("99")
    for old, new in merger.items():
        assert h.restate(old, BEFORE).code == new
        assert restate_province(new) == new
    assert h.restate("00001", BEFORE).code == "00097"  # Phúc Xá → Hồng Hà (NSO table)
    assert h.restate("00004", BEFORE).code == "00004"  # surviving commune → itself
    assert h.restate("001", BEFORE).code == "KV001"
    assert h.restate("00001", BEFORE, to=BEFORE).code == "00001"
    # a closed station's events after the merger: a site of the commune it merged into
    site = h.lookup_site("00001", AFTER)
    assert (site.station.code, site.district.code) == (
        "00001",
        h.lookup("00097", AFTER).district.code,
    )
    assert h.successor_station("00001", AFTER) == "00097"
    assert h.successor_station("00004", AFTER) is None  # still open
    with pytest.raises(ValueError):
        h.restate("00004", AFTER, to=BEFORE)


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_restated_station_lies_in_restated_province(h: Hierarchy, data: st.DataObject) -> None:
    station = data.draw(st.sampled_from(h.codes(Tier.STATION)))
    if not h.exists(station, BEFORE):
        return
    old = h.lookup(station, BEFORE)
    now = h.restate(station, BEFORE)
    assert now.tier in (Tier.STATION, Tier.DISTRICT)
    chain = {now.code}
    parent = h.parent(now.code, AFTER)
    while parent is not None:
        chain.add(parent.code)
        parent = h.parent(parent.code, AFTER)
    assert restate_province(old.province.code) in chain


def test_descendants_and_children(h: Hierarchy) -> None:
    hanoi_districts = h.children("01", BEFORE)
    assert all(d.tier is Tier.DISTRICT for d in hanoi_districts)
    assert h.descendants("01", "district", BEFORE) == hanoi_districts
    assert h.descendants("00004", Tier.STATION, BEFORE)[0].code == "00004"
    assert h.descendants("VN", Tier.PROVINCE, AFTER) == h.units(Tier.PROVINCE, AFTER)
    with pytest.raises(UnknownUnit):
        h.children("02", AFTER)  # Hà Giang no longer exists
    with pytest.raises(UnknownUnit):
        h.unit("nope", BEFORE)


def test_select_stations_for_simulator(h: Hierarchy) -> None:
    all_hn = h.select_stations(AFTER, ["01"])
    assert all_hn == h.stations_in("01", AFTER) and len(all_hn) > 100
    sample = h.select_stations(AFTER, ["01", "79"], limit=20, seed=7)
    assert len(sample) == 20 and sample == h.select_stations(AFTER, ["01", "79"], limit=20, seed=7)
    assert all(h.lookup(s, AFTER).province.code in ("01", "79") for s in sample)
    assert len(h.select_stations(BEFORE)) == len(h.units(Tier.STATION, BEFORE))


def test_lookup_throughput(h: Hierarchy) -> None:
    stations = h.select_stations(AFTER)
    start = time.perf_counter()
    for _ in range(3):
        for s in stations:
            h.lookup(s, AFTER + timedelta(days=3))
    rate = 3 * len(stations) / (time.perf_counter() - start)
    print(f"\nlookup (warm cache): {rate:,.0f} per s")
