"""``StationClient``: what station software uses to publish record changes.

    client = StationClient.open(station="00004", signer="hw-00004-1", signing_key=key,
                                config=ProducerConfig(kafka=KafkaConnection(bootstrap=...),
                                                      topic=..., outbox_path=...))
    with client.batch():                      # one SQLite transaction for many events
        client.upsert_person(PersonV1(...))
        client.upsert_encounter(EncounterV2(...), local_id="visit-881")
    client.flush()                            # wait until Kafka confirmed everything
    client.close()

Every call builds the change, gives it the next ``station_seq`` and the record's next
``record_version``, signs it and writes it to the outbox *before* anything is sent; the
publisher then sends it and deletes it on a successful delivery report.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Literal

from confluent_kafka import Producer
from nacl.signing import SigningKey

from producers.config import DEV_KEY_SEED, ProducerConfig
from producers.exceptions import SequenceError
from producers.sdk.builders import (
    Accepted,
    Draft,
    TypedUpsert,
    UpsertKeyed,
    UpsertLocal,
    delete_draft,
    upsert_draft,
)
from producers.sdk.outbox import Outbox
from producers.sdk.publisher import OutboxPublisher
from schemas import KafkaMessage, RecordChange, dev_signer, dev_signing_key, encode, make_change
from schemas import sign as sign_change
from schemas.fields import VN_TZ, Payload
from schemas.payloads.clinical import (
    AntenatalVisitV1,
    ChronicEnrolmentV1,
    ChronicFollowupV1,
    ChronicFollowupV2,
    EncounterV1,
    EncounterV2,
)
from schemas.payloads.immunization import ImmunizationV1
from schemas.payloads.medicines import MedicineDispensedV1
from schemas.payloads.person import PersonV1
from schemas.payloads.reporting import ReportSubmissionV1
from schemas.payloads.resources import (
    BedSnapshotV1,
    EquipmentSnapshotV1,
    StaffSnapshotV1,
    StockSnapshotV1,
)
from schemas.payloads.surveillance import DiseaseCaseV1
from schemas.payloads.transfer import PersonTransferV1
from schemas.payloads.vital_events import BirthV1, DeathV1

logger = logging.getLogger(__name__)


class StationClient:
    """One station's publisher: typed builders, signing, durable outbox, idempotent producer."""

    def __init__(
        self,
        station: str,
        signer: str,
        signing_key: SigningKey,
        config: ProducerConfig,
        *,
        producer: Producer | None = None,
        key_id: str | None = None,
    ) -> None:
        """``key_id``: the registry's id of ``signing_key`` when the signer has several keys
        (it travels in every event, docs/contract.md §5)."""
        self.station = station
        self.signer = signer
        self.config = config
        self._key = signing_key
        self.key_id = key_id
        self.outbox = Outbox(config.outbox_path, synchronous=config.synchronous)
        self.publisher = OutboxPublisher(self.outbox, config, producer=producer)
        self._lock = threading.RLock()
        self._seq = self.outbox.station_seq
        self._staged: list[tuple[str, KafkaMessage]] = []
        self._staged_versions: dict[tuple[str, str], int] = {}
        self._staged_digests: dict[tuple[str, str], str] = {}
        self._batch_depth = 0
        self.publisher.poll(0)  # start resending what a previous run left unconfirmed

    @classmethod
    def open(
        cls,
        station: str,
        signer: str,
        signing_key: SigningKey,
        config: ProducerConfig,
        *,
        producer: Producer | None = None,
        key_id: str | None = None,
    ) -> StationClient:
        return cls(station, signer, signing_key, config, producer=producer, key_id=key_id)

    @classmethod
    def dev(
        cls,
        station: str,
        config: ProducerConfig,
        *,
        n: int = 1,
        seed: bytes = DEV_KEY_SEED,
        producer: Producer | None = None,
    ) -> StationClient:
        """A client signing with the development key of ``hw-<station>-<n>``."""
        signer = dev_signer(station, n)
        return cls(station, signer, dev_signing_key(seed, signer), config, producer=producer)

    # ---- counters -------------------------------------------------------------------
    @property
    def station_seq(self) -> int:
        """The last ``station_seq`` handed out (committed or staged)."""
        return self._seq

    def record_version(self, record_type: str, record_id: str) -> int:
        """The last version of a record (0 when this station never wrote it)."""
        k = (record_type, record_id)
        with self._lock:
            return self._staged_versions.get(k) or self.outbox.version(*k)

    def record_digest(self, record_type: str, record_id: str) -> str | None:
        """The digest :meth:`submit` stored with the record's last change (``None`` when none
        was given; ``""`` after a change without one). Importers compare it to publish
        nothing when the same content comes again."""
        k = (record_type, record_id)
        with self._lock:
            staged = self._staged_digests.get(k)
            return staged if staged is not None else self.outbox.digest(*k)

    # ---- batching -------------------------------------------------------------------
    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Group the events built inside into one outbox transaction (much faster). If the
        block raises, none of its events is kept (and their counters are not used)."""
        with self._lock:
            self._batch_depth += 1
            try:
                yield
            except BaseException:
                self._batch_depth -= 1
                if self._batch_depth == 0:
                    self._discard()
                raise
            self._batch_depth -= 1
            if self._batch_depth == 0:
                self._commit()

    def _discard(self) -> None:
        self._staged.clear()
        self._staged_versions.clear()
        self._staged_digests.clear()
        self._seq = self.outbox.station_seq

    def _commit(self) -> None:
        if not self._staged:
            return
        try:
            rows = self.outbox.append(
                self.config.topic,
                self._staged,
                station_seq=self._seq,
                versions=self._staged_versions,
                digests=self._staged_digests,
            )
        except Exception:
            self._discard()
            raise
        self._staged = []
        self._staged_versions = {}
        self._staged_digests = {}
        self.publisher.offer(rows)

    # ---- building -------------------------------------------------------------------
    def _accept(
        self,
        draft: Draft,
        *,
        time: datetime | None,
        signer: str | None,
    ) -> Accepted:
        with self._lock:
            k = (draft.record_type.value, draft.record_id)
            version = self.record_version(*k) + 1
            seq = self._seq + 1
            change = make_change(
                station=self.station,
                record_type=draft.record_type,
                record_id=draft.record_id,
                op=draft.op,
                record_version=version,
                station_seq=seq,
                signer=signer or self.signer,
                data=draft.data,
                time=time,
                schema_major=draft.schema_major,
            )
            signed = sign_change(change, self._key, key_id=self.key_id)
            self._staged.append((signed.id, encode(signed)))
            self._staged_versions[k] = version
            uses = self._staged_digests or self.outbox.uses_digests
            if uses and self.record_digest(*k):  # the stored content digest is now stale
                self._staged_digests[k] = ""
            self._seq = seq
            if self._batch_depth == 0:
                self._commit()
            return Accepted(signed.id, k[0], k[1], version, seq)

    def upsert(
        self,
        payload: object,
        *,
        local_id: str | None = None,
        time: datetime | None = None,
    ) -> Accepted:
        """Publish the full after-image ``payload`` (any payload model). Person-centred records
        need a stable ``local_id`` to be updated later (a new one is made when ``None``)."""
        if not isinstance(payload, Payload):
            raise TypeError(f"{type(payload).__name__} is not a payload model")
        return self._accept(
            upsert_draft(payload, self.station, local_id=local_id),
            time=time,
            signer=None,
        )

    def delete(self, record_type: str, record_id: str, *, time: datetime | None = None) -> Accepted:
        """Publish the deletion of a record (e.g. entered in error)."""
        return self._accept(delete_draft(record_type, record_id), time=time, signer=None)

    # typed builders (one per record type): ``upsert`` with the payload model's type ------
    upsert_person = TypedUpsert[UpsertKeyed[PersonV1]]()
    upsert_encounter = TypedUpsert[UpsertLocal[EncounterV2 | EncounterV1]]()
    upsert_immunization = TypedUpsert[UpsertLocal[ImmunizationV1]]()
    upsert_chronic_followup = TypedUpsert[UpsertLocal[ChronicFollowupV2 | ChronicFollowupV1]]()
    #: a patient's entry in the station's hypertension or diabetes register (use one stable
    #: ``local_id`` per patient and condition, e.g. the condition's name)
    upsert_chronic_enrolment = TypedUpsert[UpsertLocal[ChronicEnrolmentV1]]()
    upsert_antenatal_visit = TypedUpsert[UpsertLocal[AntenatalVisitV1]]()
    upsert_birth = TypedUpsert[UpsertLocal[BirthV1]]()
    upsert_death = TypedUpsert[UpsertLocal[DeathV1]]()
    upsert_disease_case = TypedUpsert[UpsertLocal[DiseaseCaseV1]]()
    upsert_medicine_dispensed = TypedUpsert[UpsertLocal[MedicineDispensedV1]]()
    upsert_staff = TypedUpsert[UpsertKeyed[StaffSnapshotV1]]()
    upsert_beds = TypedUpsert[UpsertKeyed[BedSnapshotV1]]()
    upsert_equipment = TypedUpsert[UpsertKeyed[EquipmentSnapshotV1]]()
    upsert_stock = TypedUpsert[UpsertKeyed[StockSnapshotV1]]()

    def submit_month(
        self, period: str, *, remarks: str | None = None, time: datetime | None = None
    ) -> Accepted:
        """Submit the station's report for ``period`` (``YYYY-MM``): a signed
        ``report_submission``. The client must sign as the station head (``hw-<station>-1``
        with the development keys); submitting again (after a send-back) is a new version."""
        return self.upsert(ReportSubmissionV1(period=period, remarks=remarks), time=time)

    def transfer(
        self,
        health_id: str,
        to_station: str,
        *,
        transfer_date: date | None = None,
        reason: Literal["moved", "registration_error", "other"] = "moved",
        person_record_version: int | None = None,
        time: datetime | None = None,
    ) -> Accepted:
        """Hand the person record of ``health_id`` (held by this station) to ``to_station``
        (docs/contract.md §3, "Transfers"). ``person_record_version``: the person record's
        last version, by default the last this client sent."""
        released = person_record_version or self.record_version("person", health_id)
        if released < 1:
            raise ValueError(
                f"this station sent no version of person {health_id}: pass person_record_version"
            )
        when = time or datetime.now(UTC)
        payload = PersonTransferV1(
            health_id=health_id,
            to_station=to_station,
            transfer_date=transfer_date or when.astimezone(VN_TZ).date(),
            person_record_version=released,
            reason=reason,
        )
        return self.upsert(payload, time=time)

    # ---- pre-built changes (simulator, importers) --------------------------------------
    def submit(
        self,
        changes: Sequence[RecordChange],
        *,
        digests: Mapping[tuple[str, str], str] | None = None,
    ) -> list[Accepted]:
        """Store already signed changes of this station (e.g. from the simulator or an
        importer) as they are. Their ``station_seq`` must increase past the outbox's;
        versions are recorded, and ``digests`` (``(record type, record id)`` → a digest of
        the content) are stored with them in the same transaction (:meth:`record_digest`)."""
        for c in changes:
            if c.station != self.station:
                raise SequenceError(
                    f"change {c.id} is from station {c.station}, not {self.station}"
                )
        return self.submit_encoded(
            [
                (Accepted(c.id, c.record_type.value, c.record_id, c.record_version, c.station_seq),
                 encode(c))
                for c in changes
            ],
            digests=digests,
        )  # fmt: skip

    def submit_encoded(
        self,
        items: Sequence[tuple[Accepted, KafkaMessage]],
        *,
        digests: Mapping[tuple[str, str], str] | None = None,
    ) -> list[Accepted]:
        """:meth:`submit` for changes already signed *and encoded* by the caller (importers
        with a fast encoder): each item is the change's identity and its Kafka message."""
        with self._lock:
            if digests:
                self._staged_digests.update(digests)
            out: list[Accepted] = []
            for acc, msg in items:
                if acc.station_seq <= self._seq:
                    raise SequenceError(
                        f"change {acc.event_id} has station_seq {acc.station_seq} <= "
                        f"{self._seq} already used"
                    )
                self._seq = acc.station_seq
                k = (acc.record_type, acc.record_id)
                self._staged.append((acc.event_id, msg))
                self._staged_versions[k] = max(acc.record_version, self._staged_versions.get(k, 0))
                out.append(acc)
            if self._batch_depth == 0:
                self._commit()
            return out

    # ---- delivery ---------------------------------------------------------------------
    @property
    def pending(self) -> int:
        """Events accepted but not yet confirmed by Kafka."""
        return self.outbox.count()

    def poll(self, timeout: float = 0.0) -> None:
        """Serve delivery reports and send what waits (call it regularly, or use
        :meth:`start_background`)."""
        self.publisher.poll(timeout)

    def start_background(self) -> None:
        self.publisher.start_background()

    def flush(self, timeout: float = 30.0) -> int:
        """Wait until everything is confirmed (returns what is still pending after
        ``timeout`` seconds; it stays in the outbox and is retried)."""
        with self._lock:
            self._commit()
        return self.publisher.flush(timeout)

    def close(self, timeout: float = 10.0) -> int:
        """Flush for up to ``timeout`` s, then close. Unconfirmed events stay in the outbox."""
        with self._lock:
            self._commit()
        remaining = self.publisher.close(timeout)
        self.outbox.close()
        logger.info("station client closed station=%s pending=%d", self.station, remaining)
        return remaining

    def __enter__(self) -> StationClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
