"""The facility registry: MA_CSKCB → source code, hospitals placed under their province and
accepted by the real validator when its hierarchy includes the registry."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from schemas import DevKeyRegistry, Reason, encode, sign
from schemas.examples import example_change
from schemas.facilities import FacilityRegistry
from schemas.hierarchy import Hierarchy, InvalidReferenceData
from schemas.keys import DEV_KEY_SEED
from schemas.reasons import ContractViolation
from streams.validate import Accepted, RawMessage, Rejected, Validator

REGISTRY = """ma_cskcb,source,name,province,valid_from,valid_to
01929,90001,Bệnh viện Bạch Mai,01,,
10001,90002,Bệnh viện đa khoa tỉnh Lào Cai,10,2020-01-01,
04001,00004,,,,
"""


@pytest.fixture(scope="module")
def hierarchy() -> Hierarchy:
    return FacilityRegistry.from_csv(REGISTRY).hierarchy(Hierarchy.default())


def test_a_hospital_sits_under_its_province_and_follows_the_2025_merger(
    hierarchy: Hierarchy,
) -> None:
    before = hierarchy.lookup("90002", date(2024, 5, 1))
    assert (before.station.kind, before.district.code, before.province.code) == (
        "facility",
        "CS10",
        "10",
    )
    after = hierarchy.lookup("90002", date(2025, 8, 1))
    assert (after.district.code, after.province.code) == ("CS15", "15")  # Lào Cai → 15
    assert hierarchy.lookup("90001", date(2025, 8, 1)).province.code == "01"
    with pytest.raises(Exception, match="opens on 2020-01-01"):
        hierarchy.lookup("90002", date(2019, 5, 1))


def test_facilities_add_no_population(hierarchy: Hierarchy) -> None:
    base = Hierarchy.default()
    for code, day in (("01", date(2024, 1, 1)), ("15", date(2025, 8, 1)), ("VN", date(2025, 8, 1))):
        assert hierarchy.population(code, day) == base.population(code, day)


def test_a_station_row_maps_the_insurance_code_to_the_gso_code() -> None:
    reg = FacilityRegistry.from_csv(REGISTRY)
    assert reg.source("04001", date(2025, 1, 1)) == "00004"
    assert reg.source("01929", date(2025, 1, 1)) == "90001"
    with pytest.raises(ContractViolation) as exc:
        reg.source("10001", date(2019, 12, 31))
    assert exc.value.reason is Reason.UNKNOWN_STATION
    assert FacilityRegistry.from_csv(reg.to_csv()).to_csv() == reg.to_csv()


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ("01929,90001,,01,,", "needs a name"),
        ("01929,12345,Bệnh viện X,01,,", "not a station"),
        ("01929,00004x,A,01,,", "5 digits"),
        ("01929,90001,A,99,,", "unknown province"),
        ("01929,00001,,,,\n01929,00004,,,2025-01-01,", "overlapping"),
        ("01929,90001,A,01,2025-01-01,2024-01-01", "empty validity"),
    ],
)
def test_bad_registry_rows_are_refused(row: str, problem: str) -> None:
    with pytest.raises(InvalidReferenceData, match=problem):
        FacilityRegistry.from_csv(REGISTRY.splitlines()[0] + "\n" + row + "\n").hierarchy(
            Hierarchy.default()
        )


def _raw(station: str) -> RawMessage:
    change = example_change("encounter", station=station, on=date(2025, 1, 15))
    signer = f"hw-{station}-1"
    signed = sign(
        change.model_copy(update={"signer": signer}),
        DevKeyRegistry(DEV_KEY_SEED).signing_key(signer),
    )
    m = encode(signed)
    return RawMessage(m.key, m.value, m.headers, "t", 0, 0, datetime.now(UTC))


def test_the_validator_accepts_a_registered_hospital_and_only_with_the_registry(
    hierarchy: Hierarchy,
) -> None:
    keys = DevKeyRegistry(DEV_KEY_SEED)
    now = datetime(2025, 1, 16, tzinfo=UTC)
    with_registry = Validator(hierarchy, keys).check(_raw("90001"), now)
    assert isinstance(with_registry, Accepted)
    rec = with_registry.record
    assert (rec["station_code"], rec["district_code"], rec["province_code"]) == (
        "90001",
        "CS01",
        "01",
    )
    without = Validator(Hierarchy.default(), keys).check(_raw("90001"), now)
    assert isinstance(without, Rejected) and without.reason is Reason.UNKNOWN_STATION
