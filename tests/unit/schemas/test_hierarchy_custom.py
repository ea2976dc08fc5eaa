"""Custom (province-supplied) hierarchies from CSV, validation of bad data, apportionment."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.hierarchy import (
    Hierarchy,
    InvalidReferenceData,
    Link,
    NoPopulation,
    PopulationRow,
    StationClosed,
    StationNotYetOpen,
    Tier,
    Unit,
    UnknownStation,
    apportion,
    hash_weight,
)
from schemas.hierarchy.io import write_links, write_population, write_units

D1 = date(2024, 1, 1)  # S3 opens
D2 = date(2026, 1, 1)  # reorganisation: D-A absorbs D-B; S2 closes into S1

UNITS = """tier,code,name,kind,valid_from,valid_to,successor
national,N,Nation,,,,
province,P,Province,,,,
district,DA,District A,,,,
district,DB,District B,,,2026-01-01,DA
station,S1,Station 1,,,,
station,S2,Station 2,,,2026-01-01,S1
station,S3,Station 3,,2024-01-01,,
"""
LINKS = """child,parent,valid_from,valid_to
P,N,,
DA,P,,
DB,P,,2026-01-01
S1,DA,,
S2,DB,,2026-01-01
S3,DB,2024-01-01,2026-01-01
S3,DA,2026-01-01,
"""
POPULATION = """code,valid_from,valid_to,population
S1,,2026-01-01,100
S1,2026-01-01,,150
S2,,2026-01-01,50
S3,2024-01-01,,30
"""


def small() -> Hierarchy:
    return Hierarchy.from_csv(io.StringIO(UNITS), io.StringIO(LINKS), io.StringIO(POPULATION))


def test_small_hierarchy_routes_by_date() -> None:
    h = small()
    assert h.lookup("S3", date(2025, 1, 1)).district.code == "DB"
    assert h.lookup("S3", D2).district.code == "DA"
    assert h.lookup("S1", date(1990, 1, 1)).chain[-1].code == "N"
    with pytest.raises(StationNotYetOpen):
        h.lookup("S3", date(2023, 12, 31))
    with pytest.raises(StationClosed):
        h.lookup("S2", D2)
    with pytest.raises(UnknownStation):
        h.lookup("DA", D2)
    assert h.boundaries == (D1, D2)
    assert h.restate("S2", D1).code == "S1"
    assert h.restate("DB", D1).code == "DA"


def test_small_population() -> None:
    h = small()
    assert h.population("DB", date(2023, 6, 1)) == 50
    assert h.population("DB", date(2025, 6, 1)) == 80
    assert h.population("N", date(2025, 6, 1)) == 180
    assert h.population("DA", D2) == 180
    assert h.population("N", D2) == 180


def test_missing_population() -> None:
    h = Hierarchy.from_csv(io.StringIO(UNITS), io.StringIO(LINKS))
    assert not h.has_population
    with pytest.raises(NoPopulation) as e:
        h.population("P", D2)
    assert e.value.reason == "no_population"


def test_roundtrip_through_gzip_files(tmp_path: Path) -> None:
    h = small()
    units = [v for t in Tier for c in h.codes(t) for v in h.versions(c)]
    links = [Link("P", "N"), Link("DA", "P"), Link("DB", "P", None, D2), Link("S1", "DA")]
    links += [Link("S2", "DB", None, D2), Link("S3", "DB", D1, D2), Link("S3", "DA", D2, None)]
    pops = [PopulationRow("S1", 100, None, D2), PopulationRow("S1", 150, D2, None)]
    pops += [PopulationRow("S2", 50, None, D2), PopulationRow("S3", 30, D1, None)]
    write_units(tmp_path / "u.csv.gz", units)
    write_links(tmp_path / "l.csv.gz", links)
    write_population(tmp_path / "p.csv", pops)
    again = Hierarchy.from_csv(tmp_path / "u.csv.gz", tmp_path / "l.csv.gz", tmp_path / "p.csv")
    for day in (date(2000, 1, 1), D1, D2):
        for s in ("S1", "S2", "S3"):
            if h.exists(s, day):
                assert again.lookup(s, day) == h.lookup(s, day)
        assert again.population("N", day) == h.population("N", day)


def _bad(units: str = UNITS, links: str = LINKS, population: str = POPULATION) -> str:
    with pytest.raises(InvalidReferenceData) as e:
        Hierarchy.from_csv(io.StringIO(units), io.StringIO(links), io.StringIO(population))
    assert e.value.reason == "invalid_reference_data"
    return str(e.value)


def test_rejects_inconsistent_data() -> None:
    assert "cover" in _bad(links=LINKS.replace("S3,DA,2026-01-01,\n", ""))  # gap
    assert "overlapping" in _bad(links=LINKS + "S1,DB,2020-01-01,2021-01-01\n")
    assert "under" in _bad(links=LINKS.replace("S1,DA,,", "S1,P,,"))  # skips a tier
    assert "does not exist" in _bad(links=LINKS.replace("S1,DA,,", "S1,DB,,"))
    assert "successor" in _bad(units=UNITS.replace("2026-01-01,DA", "2026-01-01,XX"))
    assert "not a station" in _bad(population=POPULATION + "DA,,,5\n")
    assert "exceed" in _bad(population=POPULATION + "S2,2026-01-01,,5\n")
    assert "bad date" in _bad(links=LINKS.replace("2024-01-01,2026", "2024-13-01,2026"))
    assert "missing columns" in _bad(units="tier,code\n")
    assert "tier" in _bad(units=UNITS.replace("national,N", "planet,N"))
    assert "parent" in _bad(links=LINKS + "N,P,,\n")


def test_custom_units_from_records() -> None:
    h = Hierarchy(
        [Unit(Tier.NATIONAL, "N", "N"), Unit(Tier.PROVINCE, "P", "P")],
        [Link("P", "N")],
    )
    assert [r.code for r in h.children("N", date.today())] == ["P"]
    assert h.stations_in("N", date.today()) == ()


@given(
    total=st.integers(min_value=0, max_value=10**9),
    weights=st.dictionaries(
        st.text(min_size=1, max_size=5), st.integers(min_value=0, max_value=10**6), min_size=1
    ),
)
def test_apportion_is_exact_and_fair(total: int, weights: dict[str, int]) -> None:
    parts = apportion(total, weights)
    assert sum(parts.values()) == total
    assert set(parts) == set(weights)
    wsum = sum(weights.values())
    eff = weights if wsum else dict.fromkeys(weights, 1)
    esum = sum(eff.values())
    for key, part in parts.items():
        quota = total * eff[key] / esum
        assert quota - 1 < part < quota + 1  # within one of the exact quota
    assert apportion(total, list(reversed(list(weights.items())))) == parts  # order-free


@given(st.text(min_size=1, max_size=8))
def test_hash_weight_range(code: str) -> None:
    assert 500 <= hash_weight(code) < 1500
    assert hash_weight(code) == hash_weight(code)


def test_apportion_edges() -> None:
    assert apportion(0, {}) == {}
    with pytest.raises(ValueError):
        apportion(5, {})
    with pytest.raises(ValueError):
        apportion(5, {"a": -1})
    assert apportion(10, {"a": 1, "b": 1, "c": 1}) == {"a": 4, "b": 3, "c": 3}
