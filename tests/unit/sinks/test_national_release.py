"""The k-anonymous person release: every combination kept covers at least k persons."""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from sinks.catalog import open_catalog
from sinks.national import QiRow, age_band, generalise, read_release, widen, write_release
from sinks.store import Store

ON = date(2026, 11, 15)

rows_strategy = st.lists(
    st.builds(
        lambda i, prov, born: QiRow(f"p{i:032x}", prov, age_band(born, ON), 0),
        st.integers(0, 10**9),
        st.sampled_from(["04", "11", "12"]),
        st.dates(date(1930, 1, 1), date(2026, 11, 1)),
    ),
    max_size=300,
    unique_by=lambda r: r.record_key,
)


def smallest_class(rows: list[QiRow]) -> int | None:
    sizes = Counter((r.province_code, r.age_band) for r in rows if r.level < 2)
    return min(sizes.values()) if sizes else None


@settings(max_examples=200, deadline=None)
@given(rows=rows_strategy, k=st.integers(2, 8))
def test_every_kept_combination_covers_k_persons(rows: list[QiRow], k: int) -> None:
    out = generalise(rows, k)
    assert sorted(r.record_key for r in out) == sorted(r.record_key for r in rows)
    small = smallest_class(out)
    assert small is None or small >= k
    for r in out:
        assert (r.age_band is None) == (r.level == 2)
        assert r.level < 2 or r.birth_month is None
    assert generalise(out, k) == out, "idempotent"


@settings(max_examples=100, deadline=None)
@given(rows=rows_strategy, gone=st.integers(0, 300), k=st.integers(2, 6))
def test_removing_a_person_and_generalising_again_keeps_k(
    rows: list[QiRow], gone: int, k: int
) -> None:
    """A purge removes one person from a release; the rest, re-generalised, still hold."""
    released = generalise(rows, k)
    rest = [r for i, r in enumerate(released) if i != gone % max(1, len(released))]
    again = generalise(rest, k)
    small = smallest_class(again)
    assert small is None or small >= k


def test_age_bands_and_their_widening() -> None:
    assert age_band(date(2025, 3, 31), ON) == "2025-03"  # under five: the birth month
    assert age_band(date(2021, 11, 16), ON) == "2021-11"  # 59 months
    assert age_band(date(2021, 11, 15), ON) == "05-09"
    assert age_band(date(1990, 11, 16), ON) == "35-39"
    assert age_band(date(1930, 1, 1), ON) == "80+"
    assert [widen(b) for b in ("2025-03", "05-09", "15-19", "20-24", "55-59", "60-64", "80+")] == [
        "00-04",
        "05-19",
        "05-19",
        "20-39",
        "40-59",
        "60+",
        "60+",
    ]


def test_a_release_is_written_per_province_and_joined_into_the_national_person_view(
    tmp_path: Path,
) -> None:
    store = Store.open(tmp_path)
    rows = [QiRow(f"p{i:032x}", "04", "2025-03", 0) for i in range(5)]
    rows += [QiRow("p" + "f" * 32, "11", "30-34", 0)]  # alone: suppressed
    report = write_release(store, generalise(rows, 5), 5, ON)
    assert report.persons == 6 and report.suppressed == 1 and report.smallest_class == 5
    assert sorted({r.province_code for r in read_release(store)}) == ["04", "11"]
    assert [r.level for r in read_release(store, "11")] == [2]
    con = open_catalog(tmp_path, "national")
    got = con.execute(
        "SELECT province_code, age_band, birth_month, level FROM person_qi ORDER BY ALL"
    ).fetchall()
    assert got[0] == ("04", "2025-03", "2025-03", 0) and got[-1] == ("11", None, None, 2)
    # a later release without province 11 removes its file
    write_release(store, generalise(rows[:5], 5), 5, ON)
    assert read_release(store, "11") == []
