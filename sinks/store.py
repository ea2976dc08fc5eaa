"""The store root: its layout, and durable atomic file writes through pyarrow's filesystems.

Layout under a root (a local path, ``file://`` or any URI ``pyarrow.fs.FileSystem.from_uri``
understands, e.g. ``s3://bucket/prefix``)::

    <root>/<tier>/province=<code>/record_type=<rt>/month=<YYYY-MM>/<file>
    <root>/aggregates/period=<period>/<file>
    <root>/dlq/reason=<reason>/day=<YYYY-MM-DD>/<file>

    <file> = <topic>+<partition>+<first offset>.parquet   (a sink's closed segment)
           | <topic>+<partition>+<first offset>.<block start>.parquet
                                                          (a part of a sink's open segment)
           | <topic>+merged+<digest>.parquet              (written by compaction)

Writers only ever create ``*.parquet`` files by atomic rename (local: temporary name, fsync
file, rename, fsync directory; object stores: one PUT/multipart upload, atomic on completion),
so a reader's ``*.parquet`` glob never sees a half-written file.

On a local root, files are created 0640 and directories 0750 whatever the umask: the owner
(the sink's account) writes, its group (the root's readers, e.g. the province's analysts)
reads, nobody else gets in. On object stores, the bucket's credentials decide.
"""

from __future__ import annotations

import fcntl
import glob
import logging
import os
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from sinks.exceptions import StoreWriteError

__all__ = [
    "AGGREGATES_DIR",
    "DIR_MODE",
    "DLQ_DIR",
    "FILE_MODE",
    "SIGNOFF_DIR",
    "TIER_DIRS",
    "Store",
    "file_name",
    "part_name",
    "parts_prefix",
    "safe_value",
]

logger = logging.getLogger(__name__)

FILE_MODE = 0o640
DIR_MODE = 0o750

TIER_DIRS = ("district", "province", "national")
AGGREGATES_DIR = "aggregates"
DLQ_DIR = "dlq"
SIGNOFF_DIR = "signoff"

_SAFE = re.compile(r"[^A-Za-z0-9._-]")


@lru_cache(maxsize=65536)
def safe_value(value: str) -> str:
    """A hive partition value safe in a path (anything unusual becomes ``_``)."""
    cleaned = _SAFE.sub("_", value)[:64]
    return cleaned or "_"


def file_name(topic: str, partition: int, first_offset: int) -> str:
    """``<topic>+<partition>+<first offset>.parquet``: deterministic, so a replay overwrites."""
    return f"{topic}+{partition}+{first_offset}.parquet"


def part_name(topic: str, partition: int, start: int, first_offset: int) -> str:
    """``<topic>+<partition>+<segment start>.<first offset>.parquet``: a part of an open
    segment (its block of offsets from ``first_offset``), deterministic like the segment's
    file."""
    return f"{topic}+{partition}+{start}.{first_offset}.parquet"


def parts_prefix(topic: str, partition: int, start: int) -> str:
    """What the names of segment ``start``'s parts begin with (then digits, ``.parquet``)."""
    return f"{topic}+{partition}+{start}."


def _part_offset(name: str, prefix: str) -> int | None:
    """The first offset of a part named ``<prefix><digits>.parquet``, else None."""
    if not name.startswith(prefix) or not name.endswith(".parquet"):
        return None
    digits = name[len(prefix) : -len(".parquet")]
    return int(digits) if digits.isdigit() else None


@dataclass(frozen=True)
class Store:
    """A store root opened through pyarrow: ``fs`` and the root ``base`` path inside it."""

    uri: str
    fs: pafs.FileSystem
    base: str

    @classmethod
    def open(cls, root: str | Path, *, create: bool = True) -> Store:
        """Open ``root``: a local path (created if missing and ``create``) or a filesystem URI."""
        text = str(root)
        if "://" in text:
            fs, base = pafs.FileSystem.from_uri(text)
        else:
            fs, base = pafs.LocalFileSystem(), str(Path(text).resolve())
        base = base.rstrip("/")
        if create and cls._is_local(fs):
            make_dirs(Path(base))
        return cls(text, fs, base)

    @staticmethod
    def _is_local(fs: pafs.FileSystem) -> bool:
        return isinstance(fs, pafs.LocalFileSystem)

    @property
    def local(self) -> bool:
        return self._is_local(self.fs)

    def path(self, *parts: str) -> str:
        return "/".join((self.base, *parts))

    def glob_uri(self, *parts: str) -> str:
        """A path or URL for DuckDB: a local path, else ``<scheme>://<base>/…``."""
        inner = self.path(*parts)
        if self.local:
            return inner
        scheme = self.uri.split("://", 1)[0]
        return f"{scheme}://{inner}"

    # ---- writing ------------------------------------------------------------------------

    def write_table(self, path: str, table: pa.Table, *, sync_dir: bool = True) -> int:
        """Write ``table`` to ``path`` (Parquet, zstd) atomically and durably; its size.

        ``sync_dir=False`` (a batch of files): the file is durable but its directory entry
        only once the caller has passed its directory to :meth:`sync_dirs`, once for every
        file the batch put there."""
        try:
            if self.local:
                return _write_local(path, table, sync_dir=sync_dir)
            parent = path.rsplit("/", 1)[0]
            self.fs.create_dir(parent, recursive=True)
            with self.fs.open_output_stream(path) as out:
                pq.write_table(table, out, compression="zstd")
            info = self.fs.get_file_info(path)
            return int(info.size or 0)
        except OSError as exc:
            raise StoreWriteError(f"cannot write {path}: {exc}") from exc

    def write_bytes(self, path: str, data: bytes) -> None:
        """Write ``data`` to ``path`` atomically and durably (a small JSON document)."""
        try:
            if self.local:
                _write_local_with(path, lambda fh: fh.write(data))
                return
            self.fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
            with self.fs.open_output_stream(path) as out:
                out.write(data)
        except OSError as exc:
            raise StoreWriteError(f"cannot write {path}: {exc}") from exc

    def sync_dirs(self, directories: Iterable[str]) -> None:
        """Make durable the entries of the files written into ``directories`` (full paths)
        with ``sync_dir=False``: one fsync per directory (object stores: nothing to do)."""
        if self.local:
            for directory in sorted(set(directories)):
                _fsync_dir(directory)

    # ---- listing and removing --------------------------------------------------------------

    def list_files(self, *parts: str, suffix: str = ".parquet") -> list[pafs.FileInfo]:
        """Every file under ``parts`` (recursively) ending with ``suffix``, by path."""
        selector = pafs.FileSelector(self.path(*parts), recursive=True, allow_not_found=True)
        infos = self.fs.get_file_info(selector)
        found = [
            i
            for i in infos
            if i.type == pafs.FileType.File
            and i.base_name.endswith(suffix)
            and not i.base_name.startswith(".")
        ]
        return sorted(found, key=lambda i: i.path)

    def delete_parts(self, directory: str, prefix: str) -> int:
        """Remove the part files named ``<prefix><first offset>.parquet`` in ``directory``
        (not below it); how many there were."""
        selector = pafs.FileSelector(self.path(directory), recursive=False, allow_not_found=True)
        removed = 0
        for info in self.fs.get_file_info(selector):
            if info.type == pafs.FileType.File and _part_offset(info.base_name, prefix) is not None:
                self.delete(info.path)
                removed += 1
        return removed

    def delete(self, path: str) -> None:
        """Remove one file (missing is fine: removal is idempotent)."""
        try:
            self.fs.delete_file(path)
        except FileNotFoundError:
            return
        if self.local:
            _fsync_dir(path.rsplit("/", 1)[0])


def make_dirs(path: Path) -> bool:
    """``mkdir -p`` with every directory it creates 0750 (not the umask's); True if it made
    ``path``."""
    if path.is_dir():
        return False
    missing = []
    at = path
    while not at.exists():
        missing.append(at)
        at = at.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue  # another writer made it meanwhile
        directory.chmod(DIR_MODE)
    return True


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_local(path: str, table: pa.Table, *, sync_dir: bool = True) -> int:
    return _write_local_with(
        path, lambda fh: pq.write_table(table, fh, compression="zstd"), sync_dir=sync_dir
    )


def _write_local_with(
    path: str, write: Callable[[BinaryIO], object], *, sync_dir: bool = True
) -> int:
    """Write ``path`` through ``write(file)``: temporary name, fsync, rename, fsync dir (the
    last left to the caller if not ``sync_dir``; new parent directories always here)."""
    target = Path(path)
    new_dir = make_dirs(target.parent)
    _remove_orphans(target)
    tmp, fh = _locked_new(target)
    try:
        with fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
            tmp.replace(target)  # under the lock: never taken for an orphan before this
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if sync_dir or new_dir:
        _fsync_dir(str(target.parent))
    if new_dir:  # the new directories' entries must be durable too
        for parent in list(target.parents)[1:4]:
            _fsync_dir(str(parent))
    return target.stat().st_size


def _locked_new(target: Path) -> tuple[Path, BinaryIO]:
    """A new temporary file for ``target``, locked (``flock``) by this writer until closed: a
    temporary file nobody holds a lock on is an orphan of a killed writer
    (:func:`_remove_orphans`)."""
    while True:
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        os.fchmod(fd, FILE_MODE)  # the umask may have taken more away
        fh = os.fdopen(fd, "wb")
        fcntl.flock(fh, fcntl.LOCK_EX)
        if os.fstat(fh.fileno()).st_nlink:  # not removed as an orphan between open and lock
            return tmp, fh
        fh.close()


def _remove_orphans(target: Path) -> None:
    """Delete temporary files of ``target`` left by a writer killed mid-write (SIGKILL leaves
    ``.<name>.<random>.tmp``); a sink that restarts rewrites the same file names (segments are
    deterministic), so each orphan is found here. A file still locked belongs to a live writer
    (another process rewriting the same file during a rebalance) and is left alone."""
    for stale in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        try:
            with stale.open("rb") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                stale.unlink()
        except (BlockingIOError, FileNotFoundError):
            continue
        logger.warning("removed the temporary file of a killed writer path=%s", stale)
