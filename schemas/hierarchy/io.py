"""Reading and writing the hierarchy's CSV files (plain or gzip), one format for all sources.

Files (UTF-8, header row, dates ISO ``YYYY-MM-DD``, empty = unbounded/none):

- units:      ``tier,code,name,kind,valid_from,valid_to,successor``
- links:      ``child,parent,valid_from,valid_to``
- population: ``code,valid_from,valid_to,population`` (stations only), optionally
  ``under_1,women_15_49,reference_date``
- national totals: ``date,population,source`` (the growth anchors)

The default reference data in ``schemas/reference/`` uses exactly this format, so a province
that supplies its own hierarchy writes the same three files.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import IO

from schemas.hierarchy.exceptions import InvalidReferenceData
from schemas.hierarchy.model import Link, Tier, Unit
from schemas.hierarchy.population import PopulationRow, PopulationTotal

__all__ = [
    "LINK_COLUMNS",
    "POPULATION_COLUMNS",
    "POPULATION_OPTIONAL",
    "TOTALS_COLUMNS",
    "UNIT_COLUMNS",
    "CsvSource",
    "read_links",
    "read_population",
    "read_totals",
    "read_units",
    "write_links",
    "write_population",
    "write_units",
]

UNIT_COLUMNS = ("tier", "code", "name", "kind", "valid_from", "valid_to", "successor")
LINK_COLUMNS = ("child", "parent", "valid_from", "valid_to")
POPULATION_COLUMNS = ("code", "valid_from", "valid_to", "population")
#: optional population columns: target groups and the date the counts refer to
POPULATION_OPTIONAL = ("under_1", "women_15_49", "reference_date")
TOTALS_COLUMNS = ("date", "population", "source")

#: A path (``.gz`` is decompressed) or an open text stream.
CsvSource = str | Path | IO[str]


@contextmanager
def _open_text(source: CsvSource) -> Iterator[IO[str]]:
    if isinstance(source, str | Path):
        path = Path(source)
        if path.suffix == ".gz":
            with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
                yield fh
        else:
            with path.open(encoding="utf-8", newline="") as fh:
                yield fh
    else:
        yield source


def _rows(source: CsvSource, columns: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    with _open_text(source) as fh:
        reader = csv.reader(fh)
        header = next(reader, [])
        missing = [c for c in columns if c not in header]
        if missing:
            raise InvalidReferenceData(f"{_name(source)}: missing columns {missing}")
        width = len(header)
        for lineno, values in enumerate(reader, start=2):
            if len(values) != width:
                raise InvalidReferenceData(
                    f"{_name(source)}:{lineno}: {len(values)} fields, header has {width}"
                )
            yield lineno, dict(zip(header, values, strict=True))


def _name(source: CsvSource) -> str:
    return str(source) if isinstance(source, str | Path) else getattr(source, "name", "<stream>")


def _date(text: str, source: CsvSource, lineno: int) -> date | None:
    text = text.strip()
    if not text:
        return None
    try:
        return _parse_date(text)
    except ValueError:
        raise InvalidReferenceData(f"{_name(source)}:{lineno}: bad date {text!r}") from None


@lru_cache(maxsize=1024)
def _parse_date(text: str) -> date:
    return date.fromisoformat(text)


def _fmt(day: date | None) -> str:
    return day.isoformat() if day else ""


def read_units(source: CsvSource) -> list[Unit]:
    out: list[Unit] = []
    for lineno, row in _rows(source, UNIT_COLUMNS):
        try:
            tier = Tier.parse(row["tier"])
        except ValueError as exc:
            raise InvalidReferenceData(f"{_name(source)}:{lineno}: {exc}") from None
        code = row["code"].strip()
        if not code:
            raise InvalidReferenceData(f"{_name(source)}:{lineno}: empty code")
        out.append(
            Unit(
                tier=tier,
                code=code,
                name=row["name"].strip(),
                kind=(row.get("kind") or "").strip(),
                valid_from=_date(row["valid_from"], source, lineno),
                valid_to=_date(row["valid_to"], source, lineno),
                successor=(row.get("successor") or "").strip() or None,
            )
        )
    return out


def read_links(source: CsvSource) -> list[Link]:
    out: list[Link] = []
    for lineno, row in _rows(source, LINK_COLUMNS):
        out.append(
            Link(
                child=row["child"].strip(),
                parent=row["parent"].strip(),
                valid_from=_date(row["valid_from"], source, lineno),
                valid_to=_date(row["valid_to"], source, lineno),
            )
        )
    return out


def _count(text: str | None, what: str, source: CsvSource, lineno: int) -> int | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        raise InvalidReferenceData(f"{_name(source)}:{lineno}: bad {what} {text!r}") from None
    if value < 0:
        raise InvalidReferenceData(f"{_name(source)}:{lineno}: negative {what}")
    return value


def read_population(source: CsvSource) -> list[PopulationRow]:
    """Rows ``code,valid_from,valid_to,population`` and optionally ``under_1``,
    ``women_15_49`` (target groups) and ``reference_date`` (the date the counts refer to;
    empty: take them as they are)."""
    out: list[PopulationRow] = []
    for lineno, row in _rows(source, POPULATION_COLUMNS):
        value = _count(row["population"], "population", source, lineno)
        if value is None:
            raise InvalidReferenceData(f"{_name(source)}:{lineno}: empty population")
        out.append(
            PopulationRow(
                code=row["code"].strip(),
                population=value,
                valid_from=_date(row["valid_from"], source, lineno),
                valid_to=_date(row["valid_to"], source, lineno),
                under_1=_count(row.get("under_1"), "under_1", source, lineno),
                women_15_49=_count(row.get("women_15_49"), "women_15_49", source, lineno),
                reference_date=_date(row.get("reference_date") or "", source, lineno),
            )
        )
    return out


def read_totals(source: CsvSource) -> list[PopulationTotal]:
    """National totals ``date,population,source`` (the anchors of :class:`Growth`)."""
    out: list[PopulationTotal] = []
    for lineno, row in _rows(source, TOTALS_COLUMNS):
        day = _date(row["date"], source, lineno)
        value = _count(row["population"], "population", source, lineno)
        if day is None or not value:
            raise InvalidReferenceData(f"{_name(source)}:{lineno}: a total needs a date")
        out.append(PopulationTotal(day, value, row["source"].strip()))
    return out


def _write(path: Path, header: tuple[str, ...], rows: Iterable[tuple[str, ...]]) -> None:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    data = buf.getvalue().encode("utf-8")
    if path.suffix == ".gz":
        # mtime=0 keeps the bytes reproducible across rebuilds.
        data = gzip.compress(data, compresslevel=9, mtime=0)
    path.write_bytes(data)


def write_units(path: Path, units: Iterable[Unit]) -> None:
    _write(
        path,
        UNIT_COLUMNS,
        (
            (
                u.tier.label,
                u.code,
                u.name,
                u.kind,
                _fmt(u.valid_from),
                _fmt(u.valid_to),
                u.successor or "",
            )
            for u in units
        ),
    )


def write_links(path: Path, links: Iterable[Link]) -> None:
    _write(
        path,
        LINK_COLUMNS,
        ((x.child, x.parent, _fmt(x.valid_from), _fmt(x.valid_to)) for x in links),
    )


def _opt(value: int | None) -> str:
    return "" if value is None else str(value)


def write_population(path: Path, rows: Iterable[PopulationRow]) -> None:
    _write(
        path,
        POPULATION_COLUMNS + POPULATION_OPTIONAL,
        (
            (
                r.code,
                _fmt(r.valid_from),
                _fmt(r.valid_to),
                str(r.population),
                _opt(r.under_1),
                _opt(r.women_15_49),
                _fmt(r.reference_date),
            )
            for r in rows
        ),
    )
