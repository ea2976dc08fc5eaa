"""The import core shared by every foreign format (Decision 130 XML, FHIR R4 bundles).

A *reader* turns one input file into :class:`Visit` s (the records one visit or one bundle
entry group yields, validated as payload models) and :class:`Problem` s (a bad file, or a bad
visit with its table, key and reason). :class:`Importer` publishes the visits through the
station SDK (:class:`producers.sdk.StationClient`, one outbox per source), so everything the
SDK guarantees holds: written to disk before sent, counters that survive restarts, nothing
lost when the broker is away, resent with the same ids.

Idempotence: each record's content digest is stored with it in the outbox; a record whose
content did not change since its last accepted version publishes nothing. Event ids are
derived from the visit time and the content (:mod:`producers.interop.ids`), so even a lost
outbox cannot make the pipeline count a visit twice. A visit is published whole or not at
all: its records are validated first and staged in the same outbox transaction.
"""

from __future__ import annotations

import base64
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from nacl.signing import SigningKey

from producers.config import DEV_KEY_SEED, ProducerConfig
from producers.interop.ids import content_digest, deterministic_event_id
from producers.sdk.builders import record_id_for
from producers.sdk.client import Accepted, StationClient
from producers.simulator.fastwire import Prepared
from producers.simulator.spec import Spec
from schemas import (
    ContractViolation,
    KafkaMessage,
    Payload,
    Reason,
    dev_signer,
    dev_signing_key,
)
from schemas.facilities import FacilityRegistry
from schemas.registry import CURRENT_MAJOR, RecordType, parse_payload

__all__ = [
    "MAX_EVENT_AGE",
    "Draft",
    "ImportReport",
    "Importer",
    "Problem",
    "ReadContext",
    "Reader",
    "Signing",
    "SigningPolicy",
    "Visit",
    "dev_signing",
    "holds_person_record",
    "read_input",
    "read_signing_key",
    "single_key",
    "validated",
]

logger = logging.getLogger(__name__)

#: The stream validator's default maximum event age (``streams.config.ValidationPolicy``):
#: older visits would be dead-lettered, so they are reported here instead.
MAX_EVENT_AGE = timedelta(days=730)
#: Visits staged per outbox transaction (one fsync each).
BATCH_VISITS = 2000


@dataclass(frozen=True, slots=True)
class Problem:
    """A bad file (``table``/``key`` ``-``) or a bad visit; or a warning about a dropped
    optional value. ``line()`` is the tab-separated form the CLI prints."""

    file: str
    table: str
    key: str
    reason: Reason
    message: str

    def line(self) -> str:
        return "\t".join((self.file, self.table, self.key, self.reason.value, self.message))


@dataclass(frozen=True, slots=True)
class Draft:
    """One record of a visit, validated: record type, local id (``None`` for a person),
    payload model, event time, and the table it came from (for error lines)."""

    table: str
    record_type: RecordType
    local_id: str | None
    payload: Payload
    time: datetime


@dataclass
class Visit:
    """What one visit (a Decision 130 ``HOSO``, a FHIR encounter) yields for one source."""

    file: str
    key: str
    source: str
    drafts: list[Draft]


@dataclass
class ImportReport:
    """The outcome of an import: counts, bad visits and files, warnings."""

    files: int = 0
    visits: int = 0
    published: int = 0
    unchanged: int = 0
    persons_elsewhere: int = 0
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    by_type: Counter[str] = field(default_factory=Counter)
    sources: set[str] = field(default_factory=set)

    def summary(self) -> dict[str, int]:
        return {
            "files": self.files,
            "visits": self.visits,
            "published": self.published,
            "unchanged": self.unchanged,
            "persons_elsewhere": self.persons_elsewhere,
            "bad": len(self.problems),
            "warnings": len(self.warnings),
        }


class ReadContext:
    """What readers need: where a facility publishes (registry or one fixed source), "now",
    the accepted event age, and a place for warnings."""

    def __init__(
        self,
        *,
        registry: FacilityRegistry | None = None,
        source: str | None = None,
        now: datetime | None = None,
        max_age: timedelta = MAX_EVENT_AGE,
    ) -> None:
        if registry is None and source is None:
            raise ValueError("give a facility registry or a source")
        self.registry = registry
        self.fixed_source = source
        self.now = now or datetime.now(UTC)
        self.max_age = max_age
        self.warnings: list[Problem] = []

    def source_of(self, ma_cskcb: str | None, at: datetime) -> str:
        """The source a facility code publishes as (the registry wins over a fixed source)."""
        if self.registry is not None and ma_cskcb:
            return self.registry.source(ma_cskcb, at.date())
        if self.fixed_source is not None:
            return self.fixed_source
        raise ContractViolation(
            Reason.MISSING_FIELD, "no facility code (MA_CSKCB) in the file", field="MA_CSKCB"
        )

    def check_time(self, t: datetime, what: str) -> None:
        """``t`` is neither in the future nor older than the accepted event age."""
        if t > self.now + timedelta(minutes=5):
            raise ContractViolation(Reason.FUTURE_TIME, f"{what} {t.isoformat()} is in the future")
        if t < self.now - self.max_age:
            raise ContractViolation(
                Reason.EVENT_TOO_OLD,
                f"{what} {t.isoformat()} is older than the accepted {self.max_age.days} days",
            )

    def warn(self, file: str, table: str, key: str, reason: Reason, message: str) -> None:
        self.warnings.append(Problem(file, table, key, reason, message))


def read_input(path: Path, limit: int) -> bytes:
    """The bytes of an input file of at most ``limit`` bytes; ``ContractViolation``
    (``oversized``, or ``missing_data`` when it cannot be read)."""
    try:
        size = path.stat().st_size
        if size > limit:
            raise ContractViolation(Reason.OVERSIZED, f"the file is {size} bytes, limit {limit}")
        return path.read_bytes()
    except OSError as exc:
        raise ContractViolation(Reason.MISSING_DATA, f"cannot read the file: {exc}") from None


#: A reader: one file → visits and problems, in file order.
Reader = Callable[[Path, ReadContext], Iterator["Visit | Problem"]]


def validated(record_type: RecordType, data: dict[str, Any], now: datetime) -> Payload:
    """``data`` as the current payload model of ``record_type``; ``ContractViolation``."""
    return parse_payload(record_type, CURRENT_MAJOR[record_type], data, now=now)


class Signing(NamedTuple):
    """Who signs: the signer id, its private key, and the registry's id of that key when the
    signer has several (``key_id``, carried in every event: docs/contract.md §5)."""

    signer: str
    key: SigningKey
    key_id: str | None = None


#: Who signs a source's events: ``source → Signing``; raises ``ContractViolation``
#: (``signature_station_mismatch``) when this import holds no key for it.
SigningPolicy = Callable[[str], Signing]


def dev_signing(source: str) -> Signing:
    """Development keys: ``hw-<source>-1`` (anyone knowing the seed can sign; dev only)."""
    signer = dev_signer(source, 1)
    return Signing(signer, dev_signing_key(DEV_KEY_SEED, signer))


def holds_person_record(draft: Draft, source: str) -> bool:
    """Whether ``source`` may publish ``draft``: every record but a ``person`` one, and a
    person record only from the station of the person's commune of residence.

    The person record (keyed by the health id alone) is held by the station that registered
    the person, normally their commune's station; the validator dead-letters a change from
    any other source (``not_record_holder``). A hospital (a registered facility) or the
    station of another commune therefore publishes the visit and what it dispensed, not the
    person record: it would be refused, or, for a person no station registered yet, taken
    from their commune's station."""
    if draft.record_type is not RecordType.PERSON:
        return True
    return getattr(draft.payload, "residence_commune", None) == source


def read_signing_key(path: Path) -> SigningKey:
    """A facility's Ed25519 private key: a 32-byte seed written as base64 or hex (one line).
    ``ValueError`` when the file holds neither."""
    import binascii

    text = path.read_text(encoding="ascii", errors="replace").strip()
    for decode in (bytes.fromhex, lambda t: base64.b64decode(t, validate=True)):
        try:
            raw = decode(text)
        except (ValueError, binascii.Error):
            continue
        if len(raw) == 32:
            return SigningKey(raw)
    raise ValueError(f"{path} does not hold a 32-byte key in base64 or hex")


def single_key(
    source: str, signer: str, key: SigningKey, key_id: str | None = None
) -> SigningPolicy:
    """One facility's key (``key_id``: its id in the registry, when the signer has several):
    every visit must come from ``source``."""
    signing = Signing(signer, key, key_id)

    def policy(s: str) -> Signing:
        if s != source:
            raise ContractViolation(
                Reason.SIGNATURE_STATION_MISMATCH,
                f"the file is from source {s}; the key of {signer} belongs to {source}",
            )
        return signing

    return policy


class Importer:
    """Publishes visits through one :class:`StationClient` (outbox) per source.

    ``config_for(source)`` gives each source's :class:`ProducerConfig` (its outbox path);
    ``signing`` who signs each source's events (no default: :func:`dev_signing` is for
    development only); ``dry_run`` validates and counts without opening any outbox."""

    def __init__(
        self,
        config_for: Callable[[str], ProducerConfig],
        signing: SigningPolicy,
        *,
        dry_run: bool = False,
        batch_visits: int = BATCH_VISITS,
    ) -> None:
        self._config_for = config_for
        self._signing = signing
        self.dry_run = dry_run
        self._batch_visits = batch_visits
        self._clients: dict[str, StationClient] = {}
        self._pending: dict[str, list[Visit]] = {}
        self._signable: set[str] = set()
        self._keys: dict[str, Signing] = {}
        self.report = ImportReport()

    # ---- reading ----------------------------------------------------------------------
    def run(self, paths: Iterable[Path], reader: Reader, ctx: ReadContext) -> ImportReport:
        """Read every file with ``reader`` and publish its good visits (call :meth:`flush`
        to wait for Kafka and :meth:`close` at the end)."""
        for path in paths:
            self.report.files += 1
            for item in reader(path, ctx):
                if isinstance(item, Problem):
                    self.report.problems.append(item)
                else:
                    self.add(item)
        self.report.warnings.extend(ctx.warnings)
        ctx.warnings.clear()
        self.commit()
        return self.report

    def add(self, visit: Visit) -> None:
        """Queue a good visit; a full batch of its source is committed to the outbox."""
        if visit.source not in self._signable:
            try:
                self._signing(visit.source)
            except ContractViolation as exc:
                self.report.problems.append(
                    Problem(visit.file, "-", visit.key, exc.reason, exc.message)
                )
                return
            self._signable.add(visit.source)
        kept = [d for d in visit.drafts if holds_person_record(d, visit.source)]
        self.report.persons_elsewhere += len(visit.drafts) - len(kept)
        visit.drafts = kept
        pending = self._pending.setdefault(visit.source, [])
        pending.append(visit)
        if len(pending) >= self._batch_visits:
            self._commit_source(visit.source)

    # ---- publishing -------------------------------------------------------------------
    def client(self, source: str) -> StationClient:
        c = self._clients.get(source)
        if c is None:
            signing = self._signing(source)
            c = StationClient.open(
                source, signing.signer, signing.key, self._config_for(source),
                key_id=signing.key_id,
            )  # fmt: skip
            self._clients[source] = c
            self._keys[source] = signing
        return c

    def commit(self) -> None:
        """Stage every queued visit (one outbox transaction per source and batch)."""
        for source in list(self._pending):
            self._commit_source(source)

    def _commit_source(self, source: str) -> None:
        visits = self._pending.pop(source, [])
        if not visits:
            return
        self.report.sources.add(source)
        if self.dry_run:
            for v in visits:
                self.report.visits += 1
                for d in v.drafts:
                    self.report.published += 1
                    self.report.by_type[d.record_type.value] += 1
            return
        client = self.client(source)
        located = [
            [(d, *record_id_for(d.payload, source, local_id=d.local_id)) for d in v.drafts]
            for v in visits
        ]
        client.outbox.prefetch((rt.value, rid) for drafts in located for _, rt, rid in drafts)
        with client.batch():
            for drafts in located:
                self._publish(client, drafts)

    def _publish(self, client: StationClient, drafts: list[tuple[Draft, RecordType, str]]) -> None:
        """Stage one visit's changed records. The payloads are validated models already and
        every other part of a change is built here by construction (canonical UUIDv7, the
        record id of the payload, the next counters), so the change is signed and encoded
        directly (the simulator's encoder: the bytes of ``schemas.sign`` + ``schemas.encode``)
        and staged with its content digest in the open outbox batch."""
        self.report.visits += 1
        signer, key, key_id = self._keys[client.station]
        for d, rt, record_id in drafts:
            data = d.payload.model_dump(mode="json", exclude_none=True)
            digest = content_digest(data)
            k = (rt.value, record_id)
            if client.record_digest(*k) == digest:
                self.report.unchanged += 1
                continue
            eid = deterministic_event_id(d.time, client.station, rt.value, record_id, digest)
            version, seq = client.record_version(*k) + 1, client.station_seq + 1
            spec = Spec(d.time.astimezone(UTC), rt.value, record_id, "upsert", version, data, 1)
            p = Prepared(client.station, spec, eid, seq, signer=signer, key_id=key_id)
            signature = base64.b64encode(key.sign(p.canonical).signature).decode()
            message = KafkaMessage(*p.message(signature))
            accepted = Accepted(eid, rt.value, record_id, version, seq)
            client.submit_encoded([(accepted, message)], digests={k: digest})
            self.report.published += 1
            self.report.by_type[rt.value] += 1

    def flush(self, timeout: float = 60.0) -> int:
        """Wait until Kafka confirmed every event; returns how many still wait (they stay in
        the outboxes and are resent by the next import or SDK start)."""
        self.commit()
        return sum(c.flush(timeout) for c in self._clients.values())

    def close(self, timeout: float = 10.0) -> int:
        """Flush for up to ``timeout`` s and close every outbox; returns what still waits."""
        self.commit()
        left = sum(c.close(timeout) for c in self._clients.values())
        self._clients.clear()
        return left

    @property
    def outboxes(self) -> dict[str, Path]:
        return {s: c.outbox.path for s, c in self._clients.items()}
