"""File import for vendors: validate every line of a JSON Lines file before publishing any.

Each line is one CloudEvents structured-mode event (``schemas.to_json_line``). Pure: the
CLI (:mod:`deploy.cli.station`) does the producing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from schemas import (
    ContractViolation,
    KafkaMessage,
    KeyRegistry,
    Reason,
    encode,
    from_json_line,
    verify,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line that breaks the contract."""

    line: int
    reason: Reason
    message: str
    event_id: str | None = None


@dataclass
class FileReport:
    """The outcome of validating a file: messages ready to produce, and the bad lines."""

    path: Path
    good: list[KafkaMessage] = field(default_factory=list)
    good_ids: list[str] = field(default_factory=list)
    bad: list[BadLine] = field(default_factory=list)
    blank: int = 0
    signatures_checked: bool = False

    @property
    def total(self) -> int:
        return len(self.good) + len(self.bad)


def iter_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, stripped bytes) of every line."""
    with path.open("rb") as f:
        for n, raw in enumerate(f, start=1):
            yield n, raw.strip()


def validate_file(
    path: Path,
    *,
    registry: KeyRegistry | None = None,
    now: datetime | None = None,
    tick: Callable[[int], None] | None = None,
) -> FileReport:
    """Decode (format and schema) and, with a ``registry``, verify the signature of every
    line. Duplicate event ids within the file are reported too."""
    report = FileReport(path, signatures_checked=registry is not None)
    seen: dict[str, int] = {}
    for n, line in iter_lines(path):
        if tick is not None and n % 1000 == 0:
            tick(1000)
        if not line:
            report.blank += 1
            continue
        try:
            change = from_json_line(line, now=now)
            if registry is not None:
                verify(change, registry)
        except ContractViolation as exc:
            report.bad.append(BadLine(n, exc.reason, exc.message, _id_of(line)))
            continue
        first = seen.get(change.id)
        if first is not None:
            report.bad.append(
                BadLine(n, Reason.DUPLICATE_EVENT, f"event id already on line {first}", change.id)
            )
            continue
        seen[change.id] = n
        report.good.append(encode(change))
        report.good_ids.append(change.id)
    return report


def _id_of(line: bytes) -> str | None:
    import orjson

    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    v = obj.get("id") if isinstance(obj, dict) else None
    return v if isinstance(v, str) else None
