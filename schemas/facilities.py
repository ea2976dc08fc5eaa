"""Facilities known by their health-insurance code (mã cơ sở KBCB, ``MA_CSKCB``) as sources.

Every facility that bills health insurance has a 5-digit ``MA_CSKCB`` (2-digit province +
3-digit number) and writes it into its Decision 130 files. The registry maps it to the
*source code* the pipeline uses (``ce_source = station/<source code>``):

- a commune health station: its 5-digit GSO commune code (already in the hierarchy), so a
  station whose software only exports Decision 130 files publishes as itself;
- a facility outside the station hierarchy (a hospital, a private clinic): a code of the
  reserved block ``90000``–``99999`` (GSO commune codes end at 32248), assigned by the
  registry. :meth:`FacilityRegistry.hierarchy` adds it to the hierarchy as a station-tier
  unit of kind ``facility`` under a per-province group ``CS<province>`` (district tier, kind
  ``facilities``), with a population of 0 (facilities add activity, not people). When its
  province merges into another (2025), the facility moves to the new province's group.

So the contract's formats stay as they are: a registered facility signs with keys of its
source code in the key registry (``{"signer": "hw-90001-1", "station": "90001", ...}``) and
the validator accepts it once the worker's hierarchy includes the registry
(``TUYEN_FACILITIES``).

The registry file is CSV with the header ``ma_cskcb,source,name,province,valid_from,valid_to``
(dates ``YYYY-MM-DD`` or empty = unbounded). ``name`` and ``province`` are required for a
new facility and ignored for a station.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Final

from schemas.hierarchy import (
    Hierarchy,
    HierarchyError,
    InvalidReferenceData,
    Link,
    PopulationRow,
    Tier,
    Unit,
    as_local_date,
)
from schemas.hierarchy.model import covers
from schemas.reasons import ContractViolation, Reason

__all__ = [
    "FACILITY_CODES",
    "GROUP_PREFIX",
    "Facility",
    "FacilityRegistry",
    "load_hierarchy",
]

#: Source codes reserved for registered facilities outside the station hierarchy.
FACILITY_CODES: Final = range(90000, 100000)
#: District-tier group of a province's registered facilities: ``CS`` + province code.
GROUP_PREFIX: Final = "CS"
FACILITY_KIND: Final = "facility"
GROUP_KIND: Final = "facilities"
HEADER: Final = ("ma_cskcb", "source", "name", "province", "valid_from", "valid_to")

_CODE5 = re.compile(r"^[0-9]{5}$")


@dataclass(frozen=True, slots=True)
class Facility:
    """One registry row: ``ma_cskcb`` publishes as ``source`` over ``[valid_from, valid_to)``."""

    ma_cskcb: str
    source: str
    name: str = ""
    province: str = ""
    valid_from: date | None = None
    valid_to: date | None = None

    @property
    def is_station(self) -> bool:
        """A commune station (its GSO code) rather than a registered facility."""
        return int(self.source) not in FACILITY_CODES

    def valid_at(self, day: date) -> bool:
        return covers(self.valid_from, self.valid_to, day)


def _date(text: str, where: str) -> date | None:
    text = text.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidReferenceData(f"{where}: {text!r} is not a date YYYY-MM-DD") from None


class FacilityRegistry:
    """The MA_CSKCB → source code table (immutable, checked on construction)."""

    def __init__(self, facilities: Iterable[Facility]) -> None:
        self._rows: dict[str, list[Facility]] = {}
        for f in facilities:
            where = f"facility {f.ma_cskcb!r}"
            if not _CODE5.match(f.ma_cskcb) or not _CODE5.match(f.source):
                raise InvalidReferenceData(f"{where}: ma_cskcb and source must be 5 digits")
            if (f.valid_from or date.min) >= (f.valid_to or date.max):
                raise InvalidReferenceData(f"{where}: empty validity")
            if not f.is_station and not (f.name.strip() and f.province.strip()):
                raise InvalidReferenceData(f"{where}: a new facility needs a name and a province")
            rows = self._rows.setdefault(f.ma_cskcb, [])
            for other in rows:
                if (f.valid_from or date.min) < (other.valid_to or date.max) and (
                    other.valid_from or date.min
                ) < (f.valid_to or date.max):
                    raise InvalidReferenceData(f"{where}: overlapping rows")
            rows.append(f)

    def __len__(self) -> int:
        return sum(len(v) for v in self._rows.values())

    def __iter__(self) -> Iterator[Facility]:
        return iter([f for rows in self._rows.values() for f in rows])

    @classmethod
    def from_csv(cls, text: str) -> FacilityRegistry:
        reader = csv.DictReader(io.StringIO(text))
        if tuple(reader.fieldnames or ()) != HEADER:
            raise InvalidReferenceData(f"facility registry header must be {','.join(HEADER)}")
        rows = []
        for n, r in enumerate(reader, start=2):
            where = f"facility registry line {n}"
            rows.append(
                Facility(
                    ma_cskcb=(r["ma_cskcb"] or "").strip(),
                    source=(r["source"] or "").strip(),
                    name=(r["name"] or "").strip(),
                    province=(r["province"] or "").strip(),
                    valid_from=_date(r["valid_from"] or "", where),
                    valid_to=_date(r["valid_to"] or "", where),
                )
            )
        return cls(rows)

    @classmethod
    def load(cls, path: Path) -> FacilityRegistry:
        return cls.from_csv(path.read_text(encoding="utf-8"))

    def to_csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(HEADER)
        for f in sorted(self, key=lambda f: (f.ma_cskcb, f.valid_from or date.min)):
            w.writerow(
                (
                    f.ma_cskcb,
                    f.source,
                    f.name,
                    f.province,
                    f.valid_from.isoformat() if f.valid_from else "",
                    f.valid_to.isoformat() if f.valid_to else "",
                )
            )
        return buf.getvalue()

    def source(self, ma_cskcb: str, at: date) -> str:
        """The source code ``ma_cskcb`` publishes as on ``at`` (a Vietnam calendar date).

        Raises ``ContractViolation(unknown_station)`` when it is not registered then.
        """
        for f in self._rows.get(ma_cskcb, ()):
            if f.valid_at(as_local_date(at)):
                return f.source
        raise ContractViolation(
            Reason.UNKNOWN_STATION,
            f"MA_CSKCB {ma_cskcb!r} is not in the facility registry on {at}",
            field="MA_CSKCB",
        )

    def hierarchy(self, base: Hierarchy) -> Hierarchy:
        """``base`` plus every registered facility outside it (see the module docstring).

        A station row must name a station of ``base``; a facility row a code of the reserved
        block not used by ``base``. Raises ``InvalidReferenceData``."""
        units: list[Unit] = []
        links: list[Link] = []
        population: list[PopulationRow] = []
        groups: set[str] = set()
        for f in self:
            if f.is_station:
                if not base.versions(f.source) or base.tier_of(f.source) is not Tier.STATION:
                    raise InvalidReferenceData(
                        f"facility {f.ma_cskcb}: source {f.source} is not a station"
                    )
                continue
            if base.versions(f.source):
                raise InvalidReferenceData(f"facility {f.ma_cskcb}: code {f.source} is taken")
            units.append(
                Unit(Tier.STATION, f.source, f.name, FACILITY_KIND, f.valid_from, f.valid_to)
            )
            population.append(PopulationRow(f.source, 0, f.valid_from, f.valid_to))
            for start, end, province in _province_segments(base, f):
                links.append(Link(f.source, GROUP_PREFIX + province, start, end))
                groups.add(province)
        for province in sorted(groups):
            vs = base.versions(province)
            first, last = vs[0].valid_from, vs[-1].valid_to
            name = f"Cơ sở KCB ngoài trạm y tế xã ({vs[-1].name})"
            units.append(
                Unit(Tier.DISTRICT, GROUP_PREFIX + province, name, GROUP_KIND, first, last)
            )
            links.append(Link(GROUP_PREFIX + province, province, first, last))
        return base.extended(units, links, population) if units else base


def _province_segments(h: Hierarchy, f: Facility) -> list[tuple[date | None, date | None, str]]:
    """``[(from, to, province)]`` covering the facility's validity: its province, then the
    province that one merged into, and so on."""
    where = f"facility {f.ma_cskcb}"
    province = f.province
    vs = h.versions(province)
    if not vs or vs[0].tier is not Tier.PROVINCE:
        raise InvalidReferenceData(f"{where}: unknown province {province!r}")
    start = f.valid_from
    out: list[tuple[date | None, date | None, str]] = []
    for _ in range(16):
        day = start or vs[0].valid_from or date.min
        if not h.exists(province, day):
            raise InvalidReferenceData(f"{where}: province {province} does not exist on {day}")
        end = h.versions(province)[-1].valid_to  # the code's last day (renames keep the code)
        if end is not None and f.valid_to is not None and f.valid_to <= end:
            end = f.valid_to
        if out and out[-1][2] == province:
            out[-1] = (out[-1][0], end, province)
        else:
            out.append((start, end, province))
        if end is None or end == f.valid_to:
            return out
        try:
            province = h.restate(province, day, to=end).code
        except HierarchyError as exc:
            raise InvalidReferenceData(f"{where}: province {province} has no successor") from exc
        start = end
    raise InvalidReferenceData(f"{where}: province successor chain too long")


def load_hierarchy(path: str | Path | None, base: Hierarchy | None = None) -> Hierarchy:
    """The default hierarchy (or ``base``) with the facility registry at ``path``, if any."""
    h = base if base is not None else Hierarchy.default()
    if path is None:
        return h
    return FacilityRegistry.load(Path(path)).hierarchy(h)
