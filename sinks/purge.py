"""Erasure and retention: a deleted person's history out of the stores, old dead letters gone.

**Purge** (``tuyen purge --health-id … --reason …``; a right-to-erasure request under Decree
13/2023/ND-CP on personal data protection). :class:`Purge` runs in numbered steps, each file
rewritten the way compaction writes (temporary name, fsync, atomic rename over the file; a file
left without rows is removed), so a crash between two files leaves each file either purged or
as it was, and running again finishes the job (idempotent: a second run finds nothing):

0. every root's ``erasure/`` folder made (a local folder, an object store's prefix; never a
   bucket: a root that cannot be reached — its bucket missing, no credentials, the store
   down — fails the purge here, each such root named, before anything is registered or
   removed anywhere); then the person in the erasure register of every root purged
   (sinks.erasure: a keyed hash of the id in the province roots and the quarantine, the
   pseudonym in the national root — never the id in clear), before any file is rewritten:
   every sink and compaction leaves the person out of what it writes from then on (rows in
   an open segment's memory, a replay of the tier topics), in the order that closes the race
   with this sweep; and in
   the register of every other configured root (``register_also``: the province roots that
   do not exist yet, their ``erasure/`` folder created), so that a province's sink started
   later on a new root, replaying the tier topics, finds the entry before it writes a row
   (the rule: every root of the configured map holds every entry, whether or not it held
   the person; a root outside the map is seeded from another's ``erasure/``, docs/stores.md);
1. the record-level tiers (``district``, ``province``): every row keyed by the health id
   (``record_key`` — all of the person's record types and transfers —, or naming it as
   ``health_id`` / ``mother_health_id``) is removed; a row naming it only as
   ``child_health_id`` (the mother's birth record) keeps the birth with that id cleared;
2. the DLQ (quarantine): every dead letter whose original key, value or headers contain the
   health id;
3. the national tier (needs the pseudonym key): every row whose ``record_key``,
   ``health_id`` or ``mother_health_id`` is the person's pseudonym, and the person's row of the
   k-anonymous release, whose province is then generalised again (``sinks.national``) so that
   the remaining combinations still cover k persons;
4. the access log: one entry, ``kind: purge``, with a keyed hash of the health id (HMAC with
   the pseudonym key, domain ``purge``; never the id in clear), the reason and the counts.

The row rules of 1–3 are :func:`sinks.erasure.erase_rows`, the writers' filter too. What it
cannot reach: the person's events still in Kafka topics until their retention expires (raw
30 days, tier topics 14 days) for any consumer other than the sinks, and backups of a root
(docs/stores.md "Erasure and retention").

**DLQ retention**: :func:`expire_dlq` removes dead letters older than ``retention_days``
(``TUYEN_DLQ_RETENTION_DAYS``, default 30: ``tuyen dlq expire``, and ``tuyen compact``): whole
``day=`` folders, by the day they were rejected.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq

from schemas.hierarchy import VN_TZ
from sinks.erasure import RECORD_LEVEL, REGISTER_DIR, Erased, Register, erase_rows, key_check
from sinks.exceptions import RootUnreachable
from sinks.national import DEFAULT_K, QI_DIR, generalise, read_release, write_release
from sinks.reports.accesslog import AccessLog
from sinks.store import DLQ_DIR, Store

__all__ = ["DEFAULT_DLQ_RETENTION_DAYS", "Purge", "PurgeReport", "expire_dlq"]

logger = logging.getLogger(__name__)

DEFAULT_DLQ_RETENTION_DAYS = 30


@dataclass
class PurgeReport:
    """What one purge removed, by area (``district``, ``province``, ``dlq``, ``national``)."""

    subject: str
    rows: dict[str, int] = field(default_factory=dict)
    files: dict[str, int] = field(default_factory=dict)
    cleared: int = 0
    released: bool = False

    @property
    def total(self) -> int:
        return sum(self.rows.values()) + self.cleared


class Purge:
    """One person's erasure from the stores under ``root`` (the steps in the module doc).

    ``pseudonym`` is the worker's (``Pseudonymiser(key).pseudonym``) and ``subject_hash``
    the keyed hash logged instead of the id; ``erasure_hash`` the register's keyed hash
    (sinks.erasure.erasure_hasher; default ``subject_hash``, which the writers must then
    share); all come from whoever holds the pseudonym key.
    """

    def __init__(
        self,
        root: str,
        *,
        pseudonym: Callable[[str], str],
        subject_hash: Callable[[str], str],
        access_log: AccessLog | None = None,
        k: int = DEFAULT_K,
        dlq_root: str | None = None,
        national_root: str | None = None,
        erasure_hash: Callable[[str], str] | None = None,
        register_also: Iterable[str] = (),
    ) -> None:
        self.store = _open(root)
        self.dlq_store = _open(dlq_root) if dlq_root else self.store
        self.national_store = _open(national_root) if national_root else self.store
        self.pseudonym = pseudonym
        self.subject_hash = subject_hash
        self.erasure_hash = erasure_hash or subject_hash
        #: roots registered in step 0 but not rewritten (nothing there yet): created
        self.register_also = [_open(r) for r in register_also]
        self.access_log = access_log
        self.k = k

    def run(self, health_id: str, *, reason: str, principal: str = "operator") -> PurgeReport:
        report = PurgeReport(subject=self.subject_hash(health_id))
        subject, pseudonym = self.erasure_hash(health_id), self.pseudonym(health_id)
        try:
            self.step0_register(subject, pseudonym)
            by_subject = Erased(subjects=frozenset([subject]))
            for tier in RECORD_LEVEL:  # 1. record-level tiers
                self._rewrite(self.store, tier, by_subject, report)
            self._rewrite(self.dlq_store, DLQ_DIR, by_subject, report)  # 2. the quarantine
            by_pseudonym = Erased(pseudonyms=frozenset([pseudonym]))  # 3. the national tier
            self._rewrite(self.national_store, "national", by_pseudonym, report)
            self._release_without(pseudonym, report)
        except BaseException as exc:
            self._log(report, reason, principal, "error", str(exc)[:300])
            raise
        self._log(report, reason, principal, "done", None)  # 4. the access log
        return report

    def step0_register(self, subject: str, pseudonym: str) -> None:
        """0. Before any file is rewritten: every register reachable (:meth:`reach`), then
        the person in the erasure register of every root purged (sinks.erasure: the keyed
        hash where rows carry the id, the pseudonym in the national root; and every root of
        ``register_also``), so that every writer leaves them out from now on. A root that
        fails in between is named with the roots already holding the entry."""
        self.reach()
        check = key_check(self.erasure_hash)  # a writer with another key stops on it
        stores = (self.store, self.dlq_store, *self.register_also)
        entries: list[tuple[Store, dict[str, str]]] = [
            (store, {"subject": subject, "key": check})
            for store in {s.base: s for s in stores}.values()
        ]
        entries.append((self.national_store, {"pseudonym": pseudonym}))
        for i, (store, entry) in enumerate(entries):
            try:
                Register(store).add(**entry)
            except OSError as exc:  # StoreWriteError too
                done = ", ".join(s.uri for s, _ in entries[:i]) or "none"
                raise RootUnreachable(
                    f"cannot register the erasure in root {store.uri}: {exc}; registered "
                    f"so far in: {done}; nothing removed yet — run the purge again once the "
                    "root is reachable"
                ) from exc

    def reach(self) -> None:
        """Make every root's ``erasure/`` folder (a local folder, an object store's prefix:
        idempotent; a bucket is never created), all roots in parallel; raises
        :class:`RootUnreachable` naming every root that failed, before anything is written
        to any register."""
        stores = [self.store, self.dlq_store, self.national_store, *self.register_also]
        unique = list({s.base: s for s in stores}.values())
        with ThreadPoolExecutor(max_workers=min(8, len(unique))) as pool:
            failed = [
                f"{store.uri} ({error})"
                for store, error in zip(unique, pool.map(_reach, unique), strict=True)
                if error is not None
            ]
        if failed:
            raise RootUnreachable(
                f"the purge cannot reach the erasure register of {len(failed)} root(s), so "
                f"it registered and removed nothing: {'; '.join(failed)} — make each root "
                "reachable (an object store's bucket must exist: docs/deploy.md) or take it "
                "out of the configured roots, then run the purge again"
            )

    def _rewrite(self, store: Store, area: str, erased: Erased, report: PurgeReport) -> None:
        area_name = "dlq" if area == DLQ_DIR else area
        for info in store.list_files(area, suffix=".parquet"):
            if area == "national" and info.path.startswith(store.path(QI_DIR)):
                continue
            directory = info.path[len(store.base) + 1 :].rsplit("/", 1)[0]
            table = pq.read_table(info.path, filesystem=store.fs)
            got = erase_rows(table, directory, erased, self.erasure_hash)
            if not got.removed and not got.cleared:
                continue
            self._replace(store, info.path, got.table)
            report.rows[area_name] = report.rows.get(area_name, 0) + got.removed
            report.files[area_name] = report.files.get(area_name, 0) + 1
            report.cleared += got.cleared

    def _release_without(self, pseudonym: str, report: PurgeReport) -> None:
        store = self.national_store
        rows = read_release(store)
        gone = [r for r in rows if r.record_key == pseudonym]
        if not gone:
            return
        rest = [r for r in rows if r.record_key != pseudonym]
        on = _released_on(store) or datetime.now(VN_TZ).date()
        write_release(store, generalise(rest, self.k), self.k, on)
        report.rows["national"] = report.rows.get("national", 0) + len(gone)
        report.released = True

    @staticmethod
    def _replace(store: Store, path: str, table: pa.Table) -> None:
        if table.num_rows:
            store.write_table(path, table)
        else:
            store.delete(path)

    def _log(
        self, report: PurgeReport, reason: str, principal: str, outcome: str, error: str | None
    ) -> None:
        logger.warning(
            "purge outcome=%s subject=%s rows=%s cleared=%d",
            outcome,
            report.subject,
            report.rows,
            report.cleared,
        )
        if self.access_log is None:
            return
        entry: dict[str, object] = {
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
            "principal": principal,
            "kind": "purge",
            "subject": report.subject,
            "reason": reason,
            "outcome": outcome,
            "rows": dict(sorted(report.rows.items())),
            "cleared": report.cleared,
        }
        if error is not None:
            entry["error"] = error
        self.access_log.append(entry)


def _open(root: str) -> Store:
    try:
        return Store.open(root, create=False)
    except OSError as exc:  # e.g. an s3:// bucket whose region cannot be resolved
        raise RootUnreachable(f"the purge cannot open root {root}: {exc}") from exc


def _reach(store: Store) -> str | None:
    """None once ``store``'s register folder exists, else why it cannot."""
    try:
        store.fs.create_dir(store.path(REGISTER_DIR), recursive=True)
    except OSError as exc:
        return str(exc)
    return None


def _released_on(store: Store) -> date | None:
    """The date of the current release (kept when a purge rewrites it)."""
    files = store.list_files(QI_DIR)
    if not files:
        return None
    got = pq.read_table(files[0].path, filesystem=store.fs, columns=["released_on"])
    values = got["released_on"].to_pylist()
    return values[0] if values else None


def expire_dlq(store: Store, retention_days: int, *, now: datetime | None = None) -> int:
    """Remove the dead letters rejected more than ``retention_days`` ago (whole ``day=``
    folders older than the cut-off, in Vietnam days); the number of files removed."""
    if retention_days < 1:
        raise ValueError(f"the DLQ retention must be at least 1 day, got {retention_days}")
    today = (now or datetime.now(UTC)).astimezone(VN_TZ).date()
    cutoff = (today - timedelta(days=retention_days)).isoformat()
    removed = 0
    for info in store.list_files(DLQ_DIR):
        day = _day_of(info.path)
        if day is not None and day < cutoff:
            store.delete(info.path)
            removed += 1
    if removed:
        logger.info("dead letters expired files=%d before=%s", removed, cutoff)
    return removed


def _day_of(path: str) -> str | None:
    for part in path.split("/"):
        if part.startswith("day=") and len(part) == 14:
            return part[4:]
    return None
