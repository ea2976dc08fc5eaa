"""`tuyen import xml130|fhir` against the real broker, through the SDK outbox: exactly the
expected events and error lines; a re-import publishes nothing; a corrected visit publishes
a new version; a FHIR Bundle made from the events imports as the same events."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import orjson
from confluent_kafka import TopicPartition
from typer.testing import CliRunner, Result

from deploy.cli.root import app
from producers.config import DEV_KEY_SEED
from producers.interop.ids import content_digest, deterministic_event_id
from producers.interop.xml130 import write_wrapper
from producers.interop.xml130.wrapper import read_wrapper
from schemas import DevKeyRegistry, KeyRegistry, RecordChange, decode, fhirmap, verify
from schemas.kafka import KafkaConnection, consumer
from schemas.keys import SignerKey, StaticKeyRegistry
from schemas.partition import partition_for
from tests.unit.producers.test_xml130 import DATA, wrap

FACILITIES = "ma_cskcb,source,name,province,valid_from,valid_to\n01004,00004,,,,\n"
A, B, C = "01004_2026_10_BN001_KB001", "01004_2026_10_BN002_KB002", "01004_2026_10_BN003_KB003"


def consume_all(
    kafka: KafkaConnection, topic: str, registry: KeyRegistry | None = None
) -> list[RecordChange]:
    """Every message of ``topic`` up to its end offsets, decoded with the receiver's strict
    decoder (header allow-list), signature-checked (RFC 8785 bytes) against ``registry``
    (default: the development keys), each on its key's murmur2 partition."""
    keys = registry or DevKeyRegistry(DEV_KEY_SEED)
    c = consumer(kafka, {"group.id": topic, "enable.auto.commit": False})
    try:
        meta = c.list_topics(topic, timeout=10).topics[topic]
        ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in meta.partitions}  # fmt: skip
        c.assign([TopicPartition(topic, p, 0) for p in ends])
        out: list[RecordChange] = []
        done = {p for p, end in ends.items() if end == 0}
        while len(done) < len(ends):
            m = c.poll(5)
            assert m is not None, f"consumed {len(out)}, waiting for {ends}"
            assert m.error() is None, m.error()
            headers = m.headers()
            assert isinstance(headers, list)
            key = m.key()
            assert isinstance(key, bytes)
            change = decode(m.value(), headers, key=key)
            verify(change, keys)
            assert m.partition() == partition_for(key, len(ends)), "not the contract's partition"
            out.append(change)
            if (m.offset() or 0) + 1 >= ends[m.partition() or 0]:
                done.add(m.partition())
        return sorted(out, key=lambda ch: ch.station_seq)
    finally:
        c.close()


def run(env: dict[str, str], *args: str) -> tuple[Result, list[str], dict[str, int]]:
    result = CliRunner().invoke(app, ["import", *args, "--dev-keys"], env=env)
    lines = result.stdout.strip().splitlines()
    return result, lines[:-1], orjson.loads(lines[-1])


def test_xml130_import_reimport_correction_and_fhir_round_trip(
    kafka: KafkaConnection, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    facilities = tmp_path / "facilities.csv"
    facilities.write_text(FACILITIES)
    env = {"KAFKA_BOOTSTRAP": kafka.bootstrap, "TUYEN_HOME": str(tmp_path / "home"),
           "TUYEN_FACILITIES": str(facilities)}  # fmt: skip
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    good = inbox / "2026-10-18.xml"
    good.write_bytes(
        wrap(["visit-a.XML1.xml", "visit-a.XML2.xml"], ["visit-c.XML1.xml"], ["visit-b.XML1.xml"])
    )
    shutil.copy(DATA / "malformed.xml", inbox / "broken.xml")
    topic = make_topic("import")

    result, lines, summary = run(env, "xml130", str(inbox), "--topic", topic)
    assert result.exit_code == 1, result.output
    assert lines == [  # files in name order
        f"{good}\tXML1\t{C}\tbad_icd10\tdata.diagnoses.0: 'K21.9' is not a well-formed ICD-10 "
        "code (e.g. A09, I10, E11.9) in the shipped subset",
        f"{inbox / 'broken.xml'}\t-\t-\tbad_format\tfile: not well-formed XML (mismatched tag: "
        "line 12, column 10)",
    ]
    assert summary == {"files": 2, "visits": 2, "published": 5, "unchanged": 0,
                       "persons_elsewhere": 0, "bad": 2, "warnings": 1,
                       "unconfirmed": 0}  # fmt: skip
    events = consume_all(kafka, topic)
    assert [
        (e.station, e.station_seq, e.record_type.value, e.record_id, e.record_version)
        for e in events
    ] == [
        ("00004", 1, "person", "0123456789", 1),
        ("00004", 2, "encounter", f"0123456789:{A}", 1),
        ("00004", 3, "medicine_dispensed", f"0123456789:{A}-rx", 1),
        ("00004", 4, "person", "0987654321", 1),
        ("00004", 5, "encounter", f"0987654321:{B}", 1),
    ]
    for e in events:
        assert e.signer == "hw-00004-1"
        assert e.id == deterministic_event_id(
            e.time, "00004", e.record_type.value, e.record_id, content_digest(e.data)
        )
    assert {e.time.isoformat() for e in events} == {
        "2026-10-15T01:30:00+00:00",
        "2026-10-16T15:15:00+00:00",
    }

    # the same files again: the same error lines, nothing new on the topic
    result, lines2, summary = run(env, "xml130", str(inbox), "--topic", topic)
    assert result.exit_code == 1 and lines2 == lines
    assert (summary["published"], summary["unchanged"]) == (0, 5)
    assert len(consume_all(kafka, topic)) == 5

    # a follow-up visit of patient A (same person data): only the new encounter
    result, _, summary = run(env, "xml130", str(DATA / "inline.xml"), "--topic", topic)
    assert result.exit_code == 0, result.output
    assert (summary["published"], summary["unchanged"]) == (1, 1)

    # visit A corrected (a new weight): a new version of its encounter only
    rows = read_wrapper(wrap(["visit-a.XML1.xml", "visit-a.XML2.xml"])).visits[0].tables
    rows["XML1"][0]["CAN_NANG"] = "62.00"
    corrected = tmp_path / "corrected.xml"
    corrected.write_bytes(write_wrapper("01004", [rows], "20261019"))
    result, _, summary = run(env, "xml130", str(corrected), "--topic", topic)
    assert result.exit_code == 0, result.output
    assert (summary["published"], summary["unchanged"]) == (1, 2)
    after = consume_all(kafka, topic)
    assert [(e.record_id, e.record_version) for e in after[5:]] == [
        ("0123456789:01004_2026_10_BN001_KB004", 1),
        (f"0123456789:{A}", 2),
    ]
    assert after[-1].data is not None and after[-1].data["vitals"] == {"weight_kg": 62.0}

    # FHIR round trip: the first import's person and encounter events as a Bundle
    firsts = [e for e in events if e.record_type.value in ("person", "encounter")]
    resources = []
    for e in firsts:
        assert e.data is not None
        subject = fhirmap.patient(
            next(p.data for p in firsts if p.record_id == e.record_id.split(":")[0] and p.data)
        )
        resources += fhirmap.record_resources(
            e.record_type.value, e.record_id, e.data, subject, time=e.time
        )
    bundle = tmp_path / "bundle.json"
    bundle.write_bytes(orjson.dumps(fhirmap.bundle(resources)))
    topic2 = make_topic("fhir")
    result, lines, summary = run(
        {**env, "TUYEN_HOME": str(tmp_path / "home2")},
        "fhir", str(bundle), "--source", "00004", "--topic", topic2,
    )  # fmt: skip
    assert result.exit_code == 0 and not lines, result.output
    again = consume_all(kafka, topic2)

    def same(e: RecordChange) -> tuple[object, ...]:
        return (e.id, e.station, e.time, e.record_type, e.record_id, e.op, e.record_version,
                e.signer, e.data)  # fmt: skip

    assert sorted(map(same, again), key=str) == sorted(map(same, firsts), key=str)


def test_a_facility_key_with_its_key_id_signs_the_import(
    kafka: KafkaConnection, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    """A real (non-development) facility key chosen by --key-id among the signer's two keys:
    every event names it, verifies against the registry, and sits on its murmur2 partition
    of a 5-partition topic."""
    import base64

    from nacl.signing import SigningKey

    old, new = SigningKey.generate(), SigningKey.generate()
    key_file = tmp_path / "hw.key"
    key_file.write_text(base64.b64encode(bytes(new)).decode() + "\n")
    signer = "bs-giang-01004"
    registry = StaticKeyRegistry(
        [SignerKey(signer, "00004", bytes(k.verify_key), key_id=kid)
         for kid, k in (("2025", old), ("2026", new))]
    )  # fmt: skip
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "2026-10-18.xml").write_bytes(
        wrap(["visit-a.XML1.xml", "visit-a.XML2.xml"], ["visit-b.XML1.xml"])
    )
    topic = make_topic("import-key", partitions=5)
    env = {"KAFKA_BOOTSTRAP": kafka.bootstrap, "TUYEN_HOME": str(tmp_path / "home")}
    result = CliRunner().invoke(
        app,
        ["import", "xml130", str(inbox), "--source", "00004", "--signer", signer,
         "--key-file", str(key_file), "--key-id", "2026", "--topic", topic],
        env=env,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    events = consume_all(kafka, topic, registry)
    assert len(events) == 5 and {(e.signer, e.key_id) for e in events} == {(signer, "2026")}
    refused = CliRunner().invoke(
        app,
        ["import", "xml130", str(inbox), "--source", "00004", "--signer", signer,
         "--key-file", str(key_file), "--key-id", "bad id", "--dry-run"],
        env=env,
    )  # fmt: skip
    assert refused.exit_code == 2 and "--key-id" in refused.output
