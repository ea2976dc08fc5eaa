"""The erasure register: what makes a purge stick while sinks keep writing.

``tuyen purge`` (sinks.purge) rewrites the files of a store root, but a running sink holds its
open segments in memory, and a sink replaying the tier topics (kept 14 days) reads the
person's events again. So before it rewrites anything the purge adds an entry to the
**register** of every root it purges, ``<root>/erasure/``, one small file per erased person,
written the store's atomic way; every writer of record rows filters what it writes against
the register of the root it writes to (:func:`erase_rows`, the purge's own row rules, used by
the purge too).

What an entry names, by root (the file name is the entry; its content is only the time):

- ``pseudonym-<p…>``: the person's national pseudonym, for the ``national/`` tier, whose rows
  carry nothing else (its readers see pseudonyms already);
- ``subject-<s…>``: a keyed hash of the health id for the record-level tiers and the dead
  letters (:func:`erasure_hasher`: HMAC-SHA256 with a key derived from the pseudonym key,
  domain ``erasure``; the writers are given that key, ``TUYEN_ERASURE_KEY``, never the
  pseudonym key). Never the id in clear: the purge registers the person in every
  province's root, and a root the person never reached must not learn their id. An unkeyed
  hash of a 10-digit id would be reversed in minutes; the derived key lets the sinks apply
  the register without the pseudonym key itself (they cannot make national pseudonyms).

:class:`ErasedWrites` is the writers' order (the segment writer's parts and closes,
compaction): write the rows filtered with the register as last read; re-read the register;
if it changed, rewrite the same files filtered with the new one, until it holds still. With
the purge's order (register first, then rewrite every file) no row survives: a write that
ended before the writer's re-read started either was seen by that re-read's register (then
rewritten) or ended before the entry existed, hence before the purge's sweep listed the
files, which rewrites it. Docs: docs/stores.md "Erasure and retention".
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Protocol

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from sinks.config import RECORD_SINKS
from sinks.exceptions import StoreWriteError

__all__ = [
    "REGISTER_DIR",
    "Erased",
    "ErasedWrites",
    "ErasureKeyMismatch",
    "ErasureKeyMissing",
    "Register",
    "erase_rows",
    "erasure_hasher",
    "key_check",
]

logger = logging.getLogger(__name__)

REGISTER_DIR = "erasure"
_SUFFIX = ".entry"
_SUBJECT = "subject-"
_PSEUDONYM = "pseudonym-"
_KEY = "key-"
#: What the register's key check hashes (not a health id: never matches a row).
_KEY_CHECK = "erasure-key-check"
_KEYED = ("record_key", "health_id", "mother_health_id")
RECORD_LEVEL = RECORD_SINKS  # the record-level tiers: their store folders are named as the sinks
_DIGITS = re.compile(rb"[0-9]{10,}")
_HASH = re.compile(r"[0-9a-z]{8,128}")


class ErasureKeyMissing(StoreWriteError):
    """A register names erased persons by keyed hash and this writer has no key to apply it."""


class ErasureKeyMismatch(StoreWriteError):
    """The register was written with another erasure key than this writer's: its entries
    cannot be matched (the writer would write the persons back)."""


def key_check(subject_of: Callable[[str], str]) -> str:
    """The register's key check: what ``subject_of`` makes of a fixed non-id string. The
    purge writes it beside the subjects; a writer whose key differs finds it does not match."""
    return subject_of(_KEY_CHECK)


class RegisterStore(Protocol):
    """What the register and the writers need of a store (sinks.store.Store; fakes in tests)."""

    @property
    def base(self) -> str: ...

    def path(self, *parts: str) -> str: ...
    def list_files(self, *parts: str, suffix: str = ...) -> Sequence[object]: ...
    def write_bytes(self, path: str, data: bytes) -> None: ...
    def write_table(self, path: str, table: pa.Table, *, sync_dir: bool = ...) -> int: ...
    def sync_dirs(self, directories: Iterable[str]) -> None: ...
    def delete(self, path: str) -> None: ...


def erasure_hasher(key: bytes) -> Callable[[str], str]:
    """The register's keyed hash of a health id: ``s`` + 32 hex of HMAC-SHA256(``key``,
    ``erasure:<id>``); ``key`` is derived from the pseudonym key (deploy.cli), never it."""
    if len(key) < 16:
        raise ValueError("the erasure key must be at least 16 bytes")
    keyed = hmac.new(key, digestmod=hashlib.sha256)

    @lru_cache(maxsize=1 << 16)
    def subject(health_id: str) -> str:
        h = keyed.copy()
        h.update(f"erasure:{health_id}".encode())
        return "s" + h.hexdigest()[:32]

    return subject


@dataclass(frozen=True)
class Erased:
    """The persons erased from one root: keyed hashes of health ids and national pseudonyms;
    ``keys``: the key checks of the erasure keys the subjects were hashed with (one)."""

    subjects: frozenset[str] = frozenset()
    pseudonyms: frozenset[str] = frozenset()
    keys: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.subjects or self.pseudonyms)


class Register:
    """The erasure register of one root (``<root>/erasure/``): one file per entry."""

    def __init__(self, store: RegisterStore) -> None:
        self.store = store

    def read(self) -> Erased:
        """The entries now (one listing; a missing folder is an empty register)."""
        subjects, pseudonyms, keys = set(), set(), set()
        for info in self.store.list_files(REGISTER_DIR, suffix=_SUFFIX):
            name = str(getattr(info, "base_name", info)).rsplit("/", 1)[-1][: -len(_SUFFIX)]
            if name.startswith(_SUBJECT):
                subjects.add(name[len(_SUBJECT) :])
            elif name.startswith(_PSEUDONYM):
                pseudonyms.add(name[len(_PSEUDONYM) :])
            elif name.startswith(_KEY):
                keys.add(name[len(_KEY) :])
        return Erased(frozenset(subjects), frozenset(pseudonyms), frozenset(keys))

    def add(
        self, *, subject: str | None = None, pseudonym: str | None = None, key: str | None = None
    ) -> None:
        """Register a person (idempotent: the entry's name is its content); ``key``: the key
        check (:func:`key_check`) of the key ``subject`` was hashed with, written first."""
        stamp = orjson.dumps({"time": datetime.now(UTC).isoformat(timespec="seconds")})
        for prefix, value in ((_KEY, key), (_SUBJECT, subject), (_PSEUDONYM, pseudonym)):
            if value is None:
                continue
            if not _HASH.fullmatch(value):
                raise ValueError(f"not a hash or pseudonym: {value[:8]}…")
            self.store.write_bytes(self.store.path(REGISTER_DIR, prefix + value + _SUFFIX), stamp)


# ---- the row rules (the purge's, for the purge and every writer) ----------------------------


@dataclass
class Erasure:
    """What :func:`erase_rows` left of a table and what it took."""

    table: pa.Table
    removed: int = 0
    cleared: int = 0


def _false(n: int) -> pa.Array:
    return pa.array([False] * n, pa.bool_())


HashOf = Callable[[str], str] | None


def _hits(column: pa.ChunkedArray, erased: frozenset[str], hash_of: HashOf) -> pa.Array | None:
    """The values of ``column`` whose hash (``hash_of``, or the value itself) is ``erased``."""
    values = [v for v in pc.unique(column).to_pylist() if v is not None]
    found = [v for v in values if (hash_of(v) if hash_of else v) in erased]
    return pa.array(found, column.type) if found else None


def _mask(
    table: pa.Table, names: Iterable[str], erased: frozenset[str], hash_of: HashOf
) -> pa.Array:
    mask = _false(table.num_rows)
    for name in names:
        if name in table.column_names:
            hits = _hits(table[name], erased, hash_of)
            if hits is not None:
                mask = pc.or_(mask, pc.fill_null(pc.is_in(table[name], value_set=hits), False))
    return mask


def _clear_child(table: pa.Table, erased: frozenset[str], hash_of: HashOf) -> tuple[pa.Table, int]:
    """``child_health_id`` of an erased person cleared (column and JSON after-image)."""
    hit = _mask(table, ("child_health_id",), erased, hash_of)
    count = pc.sum(hit).as_py() or 0
    if not count:
        return table, 0
    idx = table.schema.get_field_index("child_health_id")
    nulls = pa.nulls(table.num_rows, table.schema.field(idx).type)
    table = table.set_column(idx, table.schema.field(idx), pc.if_else(hit, nulls, table[idx]))
    datas = table["data"].to_pylist()
    for i, flag in enumerate(hit.to_pylist()):
        if flag and datas[i]:
            doc = orjson.loads(datas[i])
            doc.pop("child_health_id", None)
            datas[i] = orjson.dumps(doc).decode()
    d = table.schema.get_field_index("data")
    table = table.set_column(d, table.schema.field(d), pa.array(datas, table.schema.field(d).type))
    return table, int(count)


def _contains(blob: bytes | None, erased: frozenset[str], hash_of: Callable[[str], str]) -> bool:
    """Whether ``blob`` contains an erased 10-digit health id (every 10-digit window)."""
    if not blob:
        return False
    for run in _DIGITS.findall(blob):
        for i in range(len(run) - 9):
            if hash_of(run[i : i + 10].decode()) in erased:
                return True
    return False


def _dlq_mask(table: pa.Table, erased: frozenset[str], hash_of: Callable[[str], str]) -> pa.Array:
    """Dead letters whose original key, value or any header value contains an erased id."""
    n = table.num_rows
    keys = table["key"].to_pylist() if "key" in table.column_names else [None] * n
    values = table["value"].to_pylist() if "value" in table.column_names else [None] * n
    headers = table["headers"].to_pylist() if "headers" in table.column_names else [None] * n
    out = []
    for k, v, hs in zip(keys, values, headers, strict=True):
        found = _contains(k, erased, hash_of) or _contains(v, erased, hash_of)
        found = found or any(_contains(h.get("value"), erased, hash_of) for h in hs or ())
        out.append(found)
    return pa.array(out, pa.bool_())


def erase_rows(
    table: pa.Table,
    directory: str,
    erased: Erased,
    subject_of: Callable[[str], str] | None,
) -> Erasure:
    """``table`` (rows of ``directory``) without the erased persons, by the purge's rules:

    - ``district/``, ``province/``: a row keyed by an erased health id (``record_key``,
      ``health_id``, ``mother_health_id``) is removed; one naming it only as
      ``child_health_id`` (the mother's birth) keeps the birth with that id cleared;
    - ``national/``: a row whose ``record_key``, ``health_id`` or ``mother_health_id`` is an
      erased pseudonym is removed (the k-anonymous release ``national/person_qi`` is the
      purge's own step);
    - ``dlq/``: a dead letter whose key, value or a header contains an erased id;
    - other folders (aggregates, sign-offs) carry no person: untouched.

    An empty register costs one test (``erased`` is falsy). ``subject_of``: the register's
    keyed hash (:func:`erasure_hasher`); without it a register naming subjects cannot be
    applied to record rows (:class:`ErasureKeyMissing`: fail closed)."""
    if not erased or not table.num_rows:
        return Erasure(table)
    area = directory.split("/", 1)[0]
    if area == "national":
        if not erased.pseudonyms or directory.startswith("national/person_qi"):
            return Erasure(table)
        mask = _mask(table, _KEYED, erased.pseudonyms, None)
        removed = pc.sum(mask).as_py() or 0
        return Erasure(table.filter(pc.invert(mask)) if removed else table, int(removed))
    if area not in (*RECORD_LEVEL, "dlq") or not erased.subjects:
        return Erasure(table)
    if subject_of is None:
        raise ErasureKeyMissing(
            f"the erasure register names erased persons and this writer has no erasure key "
            f"to apply it to {directory}: set TUYEN_ERASURE_KEY (`tuyen keys erasure-key` "
            "derives it from the pseudonym key)"
        )
    if erased.keys and erased.keys != {key_check(subject_of)}:
        raise ErasureKeyMismatch(
            f"the erasure register of the root of {directory} was written with another "
            "erasure key than this writer's: TUYEN_ERASURE_KEY is not the one derived from the "
            "pseudonym key the purge used; derive it again (`tuyen keys erasure-key`)"
        )
    if area == "dlq":
        mask = _dlq_mask(table, erased.subjects, subject_of)
    else:
        mask = _mask(table, _KEYED, erased.subjects, subject_of)
    removed = int(pc.sum(mask).as_py() or 0)
    kept = table.filter(pc.invert(mask)) if removed else table
    cleared = 0
    if area in RECORD_LEVEL:
        kept, cleared = _clear_child(kept, erased.subjects, subject_of)
    return Erasure(kept, removed, cleared)


# ---- the writers' order --------------------------------------------------------------------


@dataclass(frozen=True)
class WriteJob:
    """One file to write: ``table`` (rows of ``directory``) at ``path`` of ``store``;
    ``sync_dir=False``: its directory entry is made durable by whoever runs the files
    (``RunFiles``: once per directory, before it returns)."""

    store: RegisterStore
    directory: str
    path: str
    table: pa.Table
    sync_dir: bool = True


RunFiles = Callable[[Callable[[WriteJob], int], Sequence[WriteJob]], list[int]]


_StoreDir = tuple[RegisterStore, str]
#: ``map``, or a thread pool's: runs a function over items, lazily or not
MapFn = Callable[[Callable[[_StoreDir], None], list[_StoreDir]], Iterable[None]]


def sync_job_dirs(jobs: Sequence[WriteJob], map_fn: MapFn = map) -> None:
    """Make durable the directory entries of the ``jobs`` written with ``sync_dir=False``:
    one fsync per directory, run through ``map_fn`` (a thread pool's ``map``: together)."""
    dirs: dict[tuple[str, str], _StoreDir] = {}
    for job in jobs:
        if not job.sync_dir:
            directory = job.path.rsplit("/", 1)[0]
            dirs.setdefault((job.store.base, directory), (job.store, directory))
    for _ in map_fn(_sync_dir, list(dirs.values())):
        pass


def _sync_dir(item: _StoreDir) -> None:
    store, directory = item
    store.sync_dirs([directory])


def _one_by_one(write: Callable[[WriteJob], int], jobs: Sequence[WriteJob]) -> list[int]:
    sizes = [write(job) for job in jobs]
    sync_job_dirs(jobs)
    return sizes


@dataclass
class ErasedWrites:
    """Writes files with the erased persons' rows left out, in the order that keeps them
    out while a purge runs (module doc). ``subject_of``: the register's keyed hash (None: a
    writer without the erasure key, fine until a register names a subject).

    ``write(jobs)`` runs the steps; ``run_files`` writes the jobs (the caller's threads)."""

    subject_of: Callable[[str], str] | None = None
    #: the register of each root as last read (by ``store.base``)
    views: dict[str, Erased] = field(default_factory=dict)
    rows_erased: int = 0
    rewrites: int = 0

    def write(
        self,
        jobs: Sequence[WriteJob],
        run_files: RunFiles | None = None,
    ) -> list[int]:
        """The sizes written (0: a file left without rows, removed)."""
        run_files = run_files or _one_by_one
        stores = {j.store.base: j.store for j in jobs}.values()
        for store in stores:  # before the threads: every file of 1 uses a view from here
            self.view(store)
        sizes = run_files(self.step1_write, jobs)
        while True:
            changed = self.step2_reread(stores)
            if not changed:
                return sizes
            self.rewrites += 1
            again = [j for j in jobs if j.store.base in changed]
            new = run_files(self.step3_rewrite, again)
            by_path = dict(zip([j.path for j in again], new, strict=True))
            sizes = [by_path.get(j.path, s) for j, s in zip(jobs, sizes, strict=True)]

    def view(self, store: RegisterStore) -> Erased:
        """The register of ``store``'s root as last read (read once if never)."""
        got = self.views.get(store.base)
        if got is None:
            got = self.views[store.base] = Register(store).read()
        return got

    def step1_write(self, job: WriteJob) -> int:
        """1. Write the file with the rows of the persons in the register as last read left
        out (a file left without rows is removed: an earlier version may hold them). The
        views are read before the files are written (``write``), never while: a file written
        with a view older than the one 2 compares against would not be rewritten."""
        kept = erase_rows(job.table, job.directory, self.view(job.store), self.subject_of)
        self.rows_erased += kept.removed
        if not kept.table.num_rows:
            job.store.delete(job.path)
            return 0
        return job.store.write_table(job.path, kept.table, sync_dir=job.sync_dir)

    def step2_reread(self, stores: Iterable[RegisterStore]) -> set[str]:
        """2. Once every file of 1 is durable, read the registers of the roots written (one
        listing each): the roots whose register changed since the view 1 used."""
        changed = set()
        for store in stores:
            now = Register(store).read()
            if now != self.views.get(store.base):
                self.views[store.base] = now
                changed.add(store.base)
        return changed

    def step3_rewrite(self, job: WriteJob) -> int:
        """3. (a register changed) Write the same file again with the new register; then 2
        again, until the registers hold still."""
        logger.info("erasure register changed: rewriting path=%s", job.path)
        return self.step1_write(job)
