"""Decision 130 check-out files → contract payloads (pure: no broker, no outbox).

The table files under ``tests/data/xml130/tables`` are written by hand from the public field
descriptions (dh-hos/Mo-ta-he-thong, XML130/QD4570, tables 1 and 2); this module wraps them
the way a facility's software does (``GIAMDINHHS`` with base64 ``NOIDUNGFILE``)."""

from __future__ import annotations

import base64
import contextlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from producers.interop.importer import Problem, ReadContext, Visit
from producers.interop.xml130 import read_file
from producers.interop.xml130.mapping import health_id_of_card, local_id_of, parse_time
from producers.interop.xml130.wrapper import read_wrapper, write_wrapper
from schemas import ContractViolation, Reason
from schemas.facilities import FacilityRegistry

DATA = Path(__file__).resolve().parents[2] / "data" / "xml130"
NOW = datetime(2026, 11, 1, tzinfo=UTC)
REGISTRY = FacilityRegistry.from_csv(
    "ma_cskcb,source,name,province,valid_from,valid_to\n"
    "01004,00004,,,,\n"
    "01929,90001,Bệnh viện Bạch Mai,01,,\n"
)


def wrap(*visits: list[str], cskcb: str = "01004") -> bytes:
    """A GIAMDINHHS file around hand-written tables: each visit is a list of table files
    (``visit-a.XML1.xml``…), their content base64-encoded as the decision requires."""
    hosos = []
    for tables in visits:
        files = "".join(
            "<FILEHOSO><LOAIHOSO>{}</LOAIHOSO><NOIDUNGFILE>{}</NOIDUNGFILE></FILEHOSO>".format(
                name.split(".")[-2],
                base64.b64encode((DATA / "tables" / name).read_bytes()).decode(),
            )
            for name in tables
        )
        hosos.append(f"<HOSO>{files}</HOSO>")
    return (
        '<?xml version="1.0" encoding="utf-8"?><GIAMDINHHS><THONGTINDONVI>'
        f"<MACSKCB>{cskcb}</MACSKCB></THONGTINDONVI><THONGTINHOSO><NGAYLAP>20261018</NGAYLAP>"
        f"<SOLUONGHOSO>{len(hosos)}</SOLUONGHOSO><DANHSACHHOSO>{''.join(hosos)}"
        "</DANHSACHHOSO></THONGTINHOSO><CHUKYDONVI/></GIAMDINHHS>"
    ).encode()


def read(tmp_path: Path, data: bytes, name: str = "f.xml") -> list[Visit | Problem]:
    path = tmp_path / name
    path.write_bytes(data)
    return list(read_file(path, ReadContext(registry=REGISTRY, now=NOW)))


def dumped(v: Visit) -> list[tuple[str, str | None, dict[str, object], str]]:
    return [
        (
            d.record_type.value,
            d.local_id,
            d.payload.model_dump(mode="json", exclude_none=True),
            d.time.isoformat(),
        )
        for d in v.drafts
    ]


def test_good_visits_give_exactly_the_expected_records(tmp_path: Path) -> None:
    out = read(tmp_path, wrap(["visit-a.XML1.xml", "visit-a.XML2.xml"], ["visit-b.XML1.xml"]))
    assert all(isinstance(x, Visit) for x in out), out
    a, b = out
    assert isinstance(a, Visit) and isinstance(b, Visit)
    assert (a.key, a.source, b.key, b.source) == (
        "01004_2026_10_BN001_KB001",
        "00004",
        "01004_2026_10_BN002_KB002",
        "00004",
    )
    t_a = "2026-10-15T08:30:00+07:00"
    assert dumped(a) == [
        (
            "person",
            None,
            {
                "health_id": "0123456789",
                "citizen_id": "001058012345",
                "full_name": "Nguyễn Văn An",
                "sex": "male",
                "birth_date": "1958-03-02",
                "ethnicity": "01",
                "residence_commune": "00004",
                "street_address": "Số 5, ngõ 12, phường Ba Đình, Hà Nội",
                "phone": "0912345678",
            },
            t_a,
        ),
        (
            "encounter",
            "01004_2026_10_BN001_KB001",
            {
                "health_id": "0123456789",
                "encounter_date": "2026-10-15",
                "encounter_type": "outpatient",
                "diagnoses": ["I10", "E11.9", "J06.9"],
                "vitals": {"weight_kg": 61.5},
            },
            t_a,
        ),
        (
            "medicine_dispensed",
            "01004_2026_10_BN001_KB001-rx",
            {
                "health_id": "0123456789",
                "dispensed_date": "2026-10-15",
                "encounter_local_id": "01004_2026_10_BN001_KB001",
                "items": [
                    {
                        "medicine_code": "40.678",
                        "name": "Amlodipin",
                        "strength": "5mg",
                        "route": "1.01",
                        "unit": "Viên",
                        "quantity": 40.0,
                        "dosage": "1 viên/lần * 1 lần/ngày * 30 ngày [1 viên/ngày]",
                        "prescriber": "001234/HNO-CCHN",
                    },
                    {
                        "medicine_code": "40.759",
                        "name": "Metformin",
                        "strength": "500mg",
                        "route": "1.01",
                        "unit": "Viên",
                        "quantity": 60.0,
                        "dosage": "1 viên/lần * 2 lần/ngày * 30 ngày [2 viên/ngày]",
                        "prescriber": "001234/HNO-CCHN",
                    },
                ],
            },
            t_a,
        ),
    ]
    t_b = "2026-10-16T22:15:00+07:00"
    assert dumped(b) == [
        (
            "person",
            None,
            {
                "health_id": "0987654321",
                "full_name": "Trần Thị Bích",
                "sex": "female",
                "birth_date": "1990-01-01",
                "ethnicity": "07",
                "residence_commune": "00004",
                "street_address": "Thôn Đông, phường Ba Đình, Hà Nội",
                "phone": "0912000111",
            },
            t_b,
        ),
        (
            "encounter",
            "01004_2026_10_BN002_KB002",
            {
                "health_id": "0987654321",
                "encounter_date": "2026-10-16",
                "encounter_type": "emergency",
                "diagnoses": ["T63"],
                "referral": {
                    "to_level": "other",
                    "facility_code": "01929",
                    "reason": "chuyển tuyến theo yêu cầu chuyên môn",
                },
            },
            t_b,
        ),
    ]


def test_a_visit_with_a_bad_icd10_code_is_one_error_line_and_the_others_pass(
    tmp_path: Path,
) -> None:
    out = read(tmp_path, wrap(["visit-a.XML1.xml"], ["visit-c.XML1.xml"], ["visit-b.XML1.xml"]))
    problems = [x for x in out if isinstance(x, Problem)]
    assert [v.key for v in out if isinstance(v, Visit)] == [
        "01004_2026_10_BN001_KB001",
        "01004_2026_10_BN002_KB002",
    ]
    assert [p.line() for p in problems] == [
        f"{tmp_path / 'f.xml'}\tXML1\t01004_2026_10_BN003_KB003\tbad_icd10\tdata.diagnoses.0: "
        "'K21.9' is not a well-formed ICD-10 code (e.g. A09, I10, E11.9) in the shipped subset"
    ]


def test_a_malformed_file_is_one_error_line(tmp_path: Path) -> None:
    out = list(read_file(DATA / "malformed.xml", ReadContext(registry=REGISTRY, now=NOW)))
    assert len(out) == 1 and isinstance(out[0], Problem)
    p = out[0]
    assert (p.file, p.table, p.key, p.reason) == (
        str(DATA / "malformed.xml"),
        "-",
        "-",
        Reason.BAD_FORMAT,
    )
    assert p.message == "file: not well-formed XML (mismatched tag: line 12, column 10)"


def test_inline_tables_and_unmapped_tables_are_read(tmp_path: Path) -> None:
    ctx = ReadContext(registry=REGISTRY, now=NOW)
    out = list(read_file(DATA / "inline.xml", ctx))
    assert len(out) == 1 and isinstance(out[0], Visit)
    assert [d.record_type.value for d in out[0].drafts] == ["person", "encounter"]
    assert not ctx.warnings


def test_warnings_for_dropped_optional_values(tmp_path: Path) -> None:
    ctx = ReadContext(registry=REGISTRY, now=NOW)
    path = tmp_path / "b.xml"
    path.write_bytes(wrap(["visit-b.XML1.xml"]))
    list(read_file(path, ctx))
    assert [(w.table, w.key, w.reason.value, w.message) for w in ctx.warnings] == [
        (
            "XML1",
            "01004_2026_10_BN002_KB002",
            "bad_format",
            "SO_CCCD '012345678' is not a 12-digit CCCD: dropped",
        )
    ]


def _tonghop(**fields: str) -> dict[str, str]:
    base = {
        "MA_LK": "LK1",
        "HO_TEN": "Phạm Thị Dung",
        "NGAY_SINH": "200001010000",
        "GIOI_TINH": "2",
        "MA_DANTOC": "01",
        "MAXA_CU_TRU": "00004",
        "MA_THE_BHYT": "GD4011234567890",
        "MA_BENH_CHINH": "J06.9",
        "NGAY_VAO": "202610100900",
        "MA_LOAI_KCB": "01",
        "MA_CSKCB": "01004",
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v != "-"}


@pytest.mark.parametrize(
    ("fields", "xml2", "table", "reason"),
    [
        ({"MA_THE_BHYT": "-"}, None, "XML1", Reason.BAD_HEALTH_ID),
        ({"MA_THE_BHYT": "GD40112345"}, None, "XML1", Reason.BAD_HEALTH_ID),
        ({"GIOI_TINH": "3"}, None, "XML1", Reason.UNKNOWN_CODE),
        ({"MA_DANTOC": "99"}, None, "XML1", Reason.UNKNOWN_CODE),
        ({"NGAY_VAO": "2026-10-10"}, None, "XML1", Reason.BAD_DATE),
        ({"NGAY_VAO": "202612010900"}, None, "XML1", Reason.FUTURE_TIME),
        ({"NGAY_VAO": "202310010900"}, None, "XML1", Reason.EVENT_TOO_OLD),
        ({"MA_CSKCB": "79999"}, None, "XML1", Reason.INCONSISTENT),
        ({"MA_BENH_CHINH": "-"}, None, "XML1", Reason.MISSING_FIELD),
        ({"MA_LK": "-"}, None, "XML1", Reason.MISSING_FIELD),
        ({}, {"MA_LK": "LK2", "MA_THUOC": "40.1", "TEN_THUOC": "X", "DON_VI_TINH": "Viên",
              "SO_LUONG": "1"}, "XML2", Reason.INCONSISTENT),
        ({}, {"MA_LK": "LK1", "MA_THUOC": "40.1", "TEN_THUOC": "X", "DON_VI_TINH": "Viên",
              "SO_LUONG": "một"}, "XML2", Reason.BAD_FORMAT),
        ({}, {"MA_LK": "LK1", "MA_THUOC": "40 1", "TEN_THUOC": "X", "DON_VI_TINH": "Viên",
              "SO_LUONG": "1"}, "XML2", Reason.BAD_FORMAT),
        ({}, {"MA_LK": "LK1", "MA_THUOC": "40.1", "TEN_THUOC": "X", "DON_VI_TINH": "Viên",
              "SO_LUONG": "0"}, "XML2", Reason.OUT_OF_RANGE),
    ],
)  # fmt: skip
def test_each_bad_visit_has_its_reason(
    tmp_path: Path,
    fields: dict[str, str],
    xml2: dict[str, str] | None,
    table: str,
    reason: Reason,
) -> None:
    visit = {"XML1": [_tonghop(**fields)], "XML2": [xml2] if xml2 else []}
    out = read(tmp_path, write_wrapper("01004", [visit], "20261018"))
    assert len(out) == 1 and isinstance(out[0], Problem), out
    assert (out[0].table, out[0].reason) == (table, reason), out[0]


def test_file_level_problems(tmp_path: Path) -> None:
    cases = {
        b"<GIAMDINHHS/>": Reason.MISSING_FIELD,
        b"<HOSO/>": Reason.SCHEMA_VIOLATION,
        b'<!DOCTYPE x [<!ENTITY a "b">]><GIAMDINHHS/>': Reason.BAD_FORMAT,
        wrap(["visit-a.XML1.xml"], cskcb="55555"): Reason.INCONSISTENT,
    }
    for data, reason in cases.items():
        out = read(tmp_path, data)
        assert [p.reason for p in out if isinstance(p, Problem)] == [reason], data[:60]
    visit = {"XML1": [_tonghop(MA_CSKCB="55555")]}
    unknown = read(tmp_path, write_wrapper("55555", [visit], "20261018"))
    assert [p.reason for p in unknown if isinstance(p, Problem)] == [Reason.UNKNOWN_STATION]


LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><GIAMDINHHS>&lol2;'
    b"</GIAMDINHHS>"
)
XXE = (
    b'<?xml version="1.0"?><!DOCTYPE g [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b"<GIAMDINHHS>&x;</GIAMDINHHS>"
)


@pytest.mark.parametrize(
    "data",
    [
        LAUGHS,
        XXE,
        XXE.decode().encode("utf-16"),
        b'<?xml version="1.0" encoding="ISO-8859-1"?><GIAMDINHHS/>',
        b"<GIAMDINHHS>\xff\xfe</GIAMDINHHS>",
    ],
    ids=["billion-laughs", "external-entity", "utf-16", "declared-latin-1", "not-utf-8"],
)
def test_hostile_xml_is_refused_before_anything_is_expanded(tmp_path: Path, data: bytes) -> None:
    out = read(tmp_path, data)
    assert [(p.table, p.reason) for p in out if isinstance(p, Problem)] == [
        ("-", Reason.BAD_FORMAT)
    ]


def test_a_table_with_a_dtd_makes_only_its_visit_bad(tmp_path: Path) -> None:
    visit = {"XML1": [_tonghop()]}
    good = write_wrapper("01004", [visit, visit], "20261018")
    inner = base64.b64encode(XXE).decode()
    first = good.index(b"<NOIDUNGFILE>") + len(b"<NOIDUNGFILE>")
    end = good.index(b"</NOIDUNGFILE>")
    out = read(tmp_path, good[:first] + inner.encode() + good[end:])
    assert isinstance(out[0], Problem) and out[0].reason is Reason.BAD_FORMAT
    assert "DTD" in out[0].message and isinstance(out[1], Visit)


def test_broken_base64_marks_only_its_visit(tmp_path: Path) -> None:
    data = wrap(["visit-a.XML1.xml"], ["visit-b.XML1.xml"])
    first = data.index(b"<NOIDUNGFILE>") + len(b"<NOIDUNGFILE>")
    broken = data[:first] + b"%%%" + data[first:]
    out = read(tmp_path, broken)
    assert isinstance(out[0], Problem) and out[0].reason is Reason.BAD_FORMAT
    assert isinstance(out[1], Visit)


def test_written_files_read_back_the_same_rows() -> None:
    visit = {"XML1": [_tonghop()], "XML2": [{"MA_LK": "LK1", "SO_LUONG": "2.5"}]}
    w = read_wrapper(write_wrapper("01004", [visit, visit], "20261018"))
    assert w.ma_cskcb == "01004" and w.created == "20261018" and len(w.visits) == 2
    assert w.visits[0].tables == visit


def test_card_numbers_times_and_local_ids() -> None:
    assert health_id_of_card("DN4010123456789;DN4010123456789") == "0123456789"
    assert parse_time("202610150830", "T").isoformat() == "2026-10-15T08:30:00+07:00"
    assert parse_time("20261015", "T").isoformat() == "2026-10-15T00:00:00+07:00"
    with pytest.raises(ContractViolation):
        parse_time("202602300830", "T")
    assert local_id_of("01004_2026_10_BN001_KB001") == "01004_2026_10_BN001_KB001"
    assert local_id_of("LK/01/ÁÀ").startswith("lk-") and len(local_id_of("LK/01/ÁÀ")) == 35


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_hostile_bytes_never_raise(data: bytes) -> None:
    with contextlib.suppress(ContractViolation):
        read_wrapper(data)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(_tonghop())), st.text(max_size=30), max_size=11))
def test_hostile_fields_give_a_visit_or_a_problem(fields: dict[str, str]) -> None:
    ctx = ReadContext(registry=REGISTRY, now=NOW)
    visit = {"XML1": [_tonghop(**fields)]}
    from producers.interop.xml130.mapping import map_visit

    w = read_wrapper(write_wrapper("01004", [visit], "20261018"))
    out = map_visit("f", w.visits[0], w.ma_cskcb, ctx)
    assert isinstance(out, Visit | Problem)


def test_the_cli_dry_run_needs_no_broker_and_signing_fails_closed(tmp_path: Path) -> None:
    import orjson
    from typer.testing import CliRunner

    from deploy.cli.root import app

    path = tmp_path / "f.xml"
    path.write_bytes(wrap(["visit-a.XML1.xml", "visit-a.XML2.xml"], ["visit-c.XML1.xml"]))
    env = {"TUYEN_HOME": str(tmp_path / "home")}
    args = ["import", "xml130", str(path), "--source", "00004"]
    unsigned = CliRunner().invoke(app, args, env=env)
    assert unsigned.exit_code == 2 and "no signing key" in unsigned.output
    dry = CliRunner().invoke(app, [*args, "--dev-keys", "--dry-run"], env=env)
    assert dry.exit_code == 1, dry.output  # one bad visit
    lines = dry.stdout.strip().splitlines()
    assert lines[0].split("\t")[2:4] == ["01004_2026_10_BN003_KB003", "bad_icd10"]
    assert orjson.loads(lines[-1]) == {"files": 1, "visits": 1, "published": 3, "unchanged": 0,
                                       "persons_elsewhere": 0, "bad": 1, "warnings": 0,
                                       "unconfirmed": 0}  # fmt: skip
    assert not (tmp_path / "home" / "outboxes").exists()


def test_only_the_persons_commune_station_publishes_the_person_record(tmp_path: Path) -> None:
    """A hospital's visit publishes the encounter and the medicines, never the person record
    (held by the person's commune station: not_record_holder); a station does publish the
    record of a person of its own commune, not of a visitor from another commune."""
    from dataclasses import replace

    from producers.interop.importer import Importer, dev_signing

    (own,) = read(tmp_path, wrap(["visit-a.XML1.xml", "visit-a.XML2.xml"]))  # 00004's resident
    assert isinstance(own, Visit) and own.source == "00004"
    hospital = replace(own, source="90001", drafts=list(own.drafts))  # Bạch Mai (registry)
    visitor = replace(own, source="00005", drafts=list(own.drafts))  # seen in another commune
    importer = Importer(lambda s: pytest.fail("a dry run opens no outbox"), dev_signing,
                        dry_run=True)  # fmt: skip
    for v in (hospital, own, visitor):
        importer.add(v)
    importer.commit()
    report = importer.report
    assert report.by_type == {"person": 1, "encounter": 3, "medicine_dispensed": 3}
    assert report.persons_elsewhere == 2
    assert report.summary()["persons_elsewhere"] == 2
