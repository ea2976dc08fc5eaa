"""The access log: append-only JSONL whose entries are hash-chained, with a keyed head.

Every line is one JSON object. A chained line carries, besides the entry's own fields:

- ``seq``: its line number (0-based);
- ``prev``: the ``hash`` of the line before it (for the first chained line after unchained
  legacy lines, the SHA-256 of all those bytes; for the very first line, 64 zeros);
- ``alg``: ``hmac-sha256`` when a key is configured, else ``sha256``;
- ``hash`` (always last): ``HMAC(key, prev + "\\n" + body)`` (or SHA-256 of the same without
  a key), where ``body`` is the exact bytes of the line without its ``hash`` member.

Beside the log, ``<log>.head`` holds the last ``seq`` and ``hash`` and, with a key,
``HMAC(key, "head" | seq | hash)``; it is rewritten in place (one fixed-size block) and
fsynced after every append.

What :func:`verify` detects: an edited line (its hash no longer matches), a removed,
inserted or reordered line (the next ``prev`` no longer matches), lines removed at the end
(the head names a later entry), a forged head (its MAC, with a key), entries written without
the key into a keyed log, and edits of legacy lines before the chain (the first ``prev``).

What it does not detect: without a key, someone who can write the files can rewrite the
whole chain and head consistently (the chain then only catches accidents and naive edits);
with a key, someone who saved an old head and the log's prefix can roll both back together
(record ``tuyen portal audit verify``'s head elsewhere, e.g. daily, and pass it as
``--expect`` to detect that); and anyone holding the key can forge entries.

Appends take an exclusive ``flock`` on the log, so several processes (the portal, ``tuyen
report``) can write one log.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson

__all__ = ["GENESIS", "AccessLog", "Verification", "verify"]

logger = logging.getLogger(__name__)

GENESIS = "0" * 64
_HASH_SUFFIX_LEN = len(b',"hash":"') + 64 + len(b'"}')
_TAIL_CHUNK = 65536
_HEAD_SIZE = 384  # bytes: the head's JSON, space-padded
_CHAIN_FIELDS = frozenset({"seq", "prev", "alg", "hash"})


def _digest(key: bytes | None, prev: str, body: bytes) -> str:
    data = prev.encode() + b"\n" + body
    if key is None:
        return hashlib.sha256(data).hexdigest()
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def _head_mac(key: bytes, seq: int, digest: str) -> str:
    return hmac.new(key, f"head|{seq}|{digest}".encode(), hashlib.sha256).hexdigest()


def _split(line: bytes) -> tuple[bytes, str] | None:
    """``(body, hash)`` of a chained line (``None`` for an unchained one)."""
    if len(line) < _HASH_SUFFIX_LEN or not line.endswith(b'"}'):
        return None
    cut = len(line) - _HASH_SUFFIX_LEN
    if line[cut : cut + 9] != b',"hash":"':
        return None
    return line[:cut] + b"}", line[cut + 9 : -2].decode("ascii", "replace")


def _last_line(fd: int) -> tuple[bytes | None, int]:
    """The last complete line of the file and the number of lines (reads from the end)."""
    size = os.fstat(fd).st_size
    if size == 0:
        return None, 0
    pos, buf = size, b""
    while pos > 0:
        step = min(_TAIL_CHUNK, pos)
        pos -= step
        buf = os.pread(fd, step, pos) + buf
        body = buf.rstrip(b"\n")
        nl = body.rfind(b"\n")
        if nl >= 0 or pos == 0:
            last = body[nl + 1 :]
            parsed = _split(last)
            if parsed is not None:
                try:
                    seq = int(orjson.loads(parsed[0])["seq"])
                    return last, seq + 1
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                    pass
            return last, _count_lines(fd)
    return None, 0


def _count_lines(fd: int) -> int:
    n, pos = 0, 0
    while chunk := os.pread(fd, 1 << 20, pos):
        n += chunk.count(b"\n")
        pos += len(chunk)
    return n


def _prefix_digest(fd: int) -> str:
    h = hashlib.sha256()
    pos = 0
    while chunk := os.pread(fd, 1 << 20, pos):
        h.update(chunk)
        pos += len(chunk)
    return h.hexdigest()


class AccessLog:
    """Append-only, hash-chained JSONL log of data requests (flushed and fsynced per line).

    ``key``: the HMAC key (``TUYEN_ACCESS_LOG_KEY``); without it the chain is plain SHA-256.
    """

    def __init__(self, path: Path, key: bytes | None = None) -> None:
        self.path = path
        self.key = key

    @property
    def head_path(self) -> Path:
        return self.path.with_name(self.path.name + ".head")

    def append(self, entry: dict[str, object]) -> dict[str, object]:
        """Append ``entry`` (``time`` is added) and return what was written."""
        return self.append_many([entry])[0]

    def append_many(self, entries: list[dict[str, object]]) -> list[dict[str, object]]:
        """Append several entries with one write and one fsync (group commit)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        written: list[dict[str, object]] = []
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            last, seq = _last_line(fd)
            if last is None:
                prev = GENESIS
            else:
                parsed = _split(last)
                prev = parsed[1] if parsed is not None else _prefix_digest(fd)
            chunks = []
            for entry in entries:
                record: dict[str, object] = {
                    "time": datetime.now(UTC).isoformat(),
                    **{k: v for k, v in entry.items() if k not in _CHAIN_FIELDS},
                    "seq": seq,
                    "prev": prev,
                    "alg": "sha256" if self.key is None else "hmac-sha256",
                }
                body = orjson.dumps(record)
                prev = _digest(self.key, prev, body)
                chunks.append(body[:-1] + b',"hash":"' + prev.encode() + b'"}\n')
                written.append({**record, "hash": prev})
                seq += 1
            view = memoryview(b"".join(chunks))
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
            self._write_head(seq - 1, prev)
        finally:
            os.close(fd)  # releases the lock
        for w in written:
            logger.info(
                "access principal=%s outcome=%s seq=%s", w.get("principal"), w.get("outcome"),
                w["seq"],
            )  # fmt: skip
        return written

    def _write_head(self, seq: int, digest: str) -> None:
        """Rewrite the head in place: one fixed-size block (a single-sector write) and one
        fsync, cheaper than a temporary file and a rename on every append."""
        head: dict[str, object] = {"seq": seq, "hash": digest}
        if self.key is not None:
            head["mac"] = _head_mac(self.key, seq, digest)
        block = orjson.dumps(head).ljust(_HEAD_SIZE - 1) + b"\n"
        fd = os.open(self.head_path, os.O_RDWR | os.O_CREAT, 0o640)
        try:
            os.pwrite(fd, block, 0)
            os.ftruncate(fd, _HEAD_SIZE)
            os.fsync(fd)
        finally:
            os.close(fd)

    def read(self) -> list[dict[str, object]]:
        if not self.path.exists():
            return []
        return [orjson.loads(x) for x in self.path.read_bytes().splitlines() if x.strip()]

    def tail(self, n: int) -> list[dict[str, object]]:
        """The last ``n`` entries, newest first."""
        return list(reversed(self.read()[-n:]))

    def verify(self, expect: str | None = None) -> Verification:
        return verify(self.path, self.key, expect=expect)


@dataclass
class Verification:
    """The outcome of :func:`verify`: ``ok`` when ``errors`` is empty."""

    entries: int = 0
    legacy: int = 0
    head_seq: int | None = None
    head_hash: str | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def _check_head(
    path: Path, key: bytes | None, last_seq: int | None, last_hash: str | None, out: Verification
) -> None:
    head_path = path.with_name(path.name + ".head")
    if not head_path.exists():
        if last_seq is not None:
            out.errors.append(f"head file {head_path.name} is missing")
        return
    try:
        head = orjson.loads(head_path.read_bytes().strip())
        seq, digest = int(head["seq"]), str(head["hash"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        out.errors.append(f"head file {head_path.name} is unreadable")
        return
    if key is not None and not hmac.compare_digest(
        str(head.get("mac", "")), _head_mac(key, seq, digest)
    ):
        out.errors.append("head MAC does not verify (forged or written without the key)")
    if last_seq is None or seq > last_seq:
        out.errors.append(
            f"the log ends at entry {last_seq} but the head names entry {seq}: "
            "entries were removed at the end"
        )
    elif seq < last_seq:
        out.errors.append(
            f"the head names entry {seq} but the log goes on to {last_seq}: "
            "entries were appended without updating the head"
        )
    elif digest != last_hash:
        out.errors.append(f"entry {seq} differs from the head's hash")


def verify(path: Path, key: bytes | None = None, *, expect: str | None = None) -> Verification:
    """Check every line of the log at ``path`` and its head (see the module docstring).

    ``expect``: ``SEQ:HASH`` recorded earlier (e.g. a daily copy of the head); the entry
    ``SEQ`` must still hold ``HASH``.
    """
    out = Verification()
    data = path.read_bytes() if path.exists() else b""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    prev: str | None = None
    offset = 0
    seen: dict[int, str] = {}
    for i, line in enumerate(lines):
        parsed = _split(line)
        if parsed is None:
            if prev is not None:
                out.errors.append(f"line {i + 1}: not a chained entry after the chain began")
            else:
                out.legacy += 1
            offset += len(line) + 1
            continue
        body, digest = parsed
        try:
            rec = orjson.loads(body)
            seq, rec_prev, alg = int(rec["seq"]), str(rec["prev"]), str(rec["alg"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            out.errors.append(f"line {i + 1}: unreadable entry")
            prev = digest
            continue
        if prev is None:
            prev = GENESIS if offset == 0 else hashlib.sha256(data[:offset]).hexdigest()
        if seq != i:
            out.errors.append(f"line {i + 1}: entry number {seq}, expected {i}")
        if rec_prev != prev:
            out.errors.append(
                f"line {i + 1}: does not follow the line before it "
                "(a line was removed, inserted or reordered)"
            )
        if key is not None and alg != "hmac-sha256":
            out.errors.append(f"line {i + 1}: written without the key ({alg})")
        elif key is None and alg != "sha256":
            out.errors.append(f"line {i + 1}: keyed entry, verification needs the key")
        elif not hmac.compare_digest(_digest(key, rec_prev, body), digest):
            out.errors.append(f"line {i + 1}: content does not match its hash (edited)")
        seen[seq] = digest
        out.entries += 1
        prev = digest
        offset += len(line) + 1
    last_seq = max(seen) if seen else None
    _check_head(path, key, last_seq, seen.get(last_seq) if last_seq is not None else None, out)
    if last_seq is not None:
        out.head_seq, out.head_hash = last_seq, seen[last_seq]
    if expect:
        want_seq, _, want_hash = expect.partition(":")
        if seen.get(int(want_seq)) != want_hash:
            out.errors.append(f"entry {want_seq} no longer holds the recorded hash {want_hash}")
    return out
