"""The effective-dated hierarchy: lookups, subtrees, population and restating.

Dates: every query takes a ``date`` or ``datetime`` (see ``as_local_date``). Between two
consecutive boundary dates (any ``valid_from``/``valid_to`` in the data) the tree does not
change, so derived answers (children, population sums, placements) are cached per such
*epoch*.
"""

from __future__ import annotations

import bisect
import random
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from functools import cache
from importlib import resources
from pathlib import Path

from schemas.hierarchy.exceptions import (
    HierarchyError,
    NoPopulation,
    StationClosed,
    StationNotYetOpen,
    UnknownStation,
    UnknownUnit,
)
from schemas.hierarchy.io import CsvSource, read_links, read_population, read_totals, read_units
from schemas.hierarchy.model import Link, Placement, Tier, Unit, UnitRef, as_local_date
from schemas.hierarchy.population import (
    Growth,
    PopulationGroup,
    PopulationRow,
    mid_year,
)
from schemas.hierarchy.validate import validate

__all__ = ["Hierarchy", "reference_dir"]

When = date | datetime


def reference_dir() -> Path:
    """Folder of the committed default reference data (``schemas/reference``)."""
    return Path(str(resources.files("schemas.reference")))


def _ref(unit: Unit) -> UnitRef:
    return UnitRef(unit.tier, unit.code, unit.name, unit.kind)


class Hierarchy:
    """An immutable, validated, effective-dated hierarchy (national → province → district →
    station) with optional per-station population rows."""

    def __init__(
        self,
        units: Iterable[Unit],
        links: Iterable[Link],
        population: Iterable[PopulationRow] = (),
        *,
        growth: Growth | None = None,
        check: bool = True,
    ) -> None:
        versions: dict[str, list[Unit]] = defaultdict(list)
        for u in units:
            versions[u.code].append(u)
        parents: dict[str, list[Link]] = defaultdict(list)
        children: dict[str, list[Link]] = defaultdict(list)
        for link in links:
            parents[link.child].append(link)
            children[link.parent].append(link)
        pop: dict[str, list[PopulationRow]] = defaultdict(list)
        for row in population:
            pop[row.code].append(row)

        def start(x: Unit | Link | PopulationRow) -> date:
            return x.valid_from or date.min

        self._versions = {k: tuple(sorted(v, key=start)) for k, v in versions.items()}
        self._parents = {k: tuple(sorted(v, key=start)) for k, v in parents.items()}
        self._children = {k: tuple(v) for k, v in children.items()}
        self._population = {k: tuple(sorted(v, key=start)) for k, v in pop.items()}
        if check:
            validate(self._versions, self._parents, self._population)
        self._growth = growth
        bounds: set[date] = set()
        for group in (self._versions, self._parents):
            for items in group.values():
                for x in items:
                    bounds.update(d for d in (x.valid_from, x.valid_to) if d is not None)
        self._structure_bounds: tuple[date, ...] = tuple(sorted(bounds))
        for rows in self._population.values():
            for r in rows:
                bounds.update(d for d in (r.valid_from, r.valid_to) if d is not None)
        self._bounds: tuple[date, ...] = tuple(sorted(bounds))
        self._by_tier: dict[Tier, tuple[str, ...]] = {
            t: tuple(sorted(c for c, vs in self._versions.items() if vs[0].tier is t)) for t in Tier
        }
        self._placements: dict[tuple[str, int], Placement] = {}
        self._pop_cache: dict[tuple[str, int, int, str], int] = {}
        self._child_cache: dict[tuple[str, int], tuple[UnitRef, ...]] = {}
        self._sites: dict[tuple[str, int], Placement] = {}

    # ---- construction ---------------------------------------------------------------------

    @classmethod
    def from_csv(
        cls,
        units: CsvSource,
        links: CsvSource,
        population: CsvSource | None = None,
        totals: CsvSource | None = None,
    ) -> Hierarchy:
        """Load a hierarchy from the CSV files described in ``schemas.hierarchy.io``;
        ``totals`` (national totals) scale population rows that have a reference date."""
        return cls(
            read_units(units),
            read_links(links),
            read_population(population) if population is not None else (),
            growth=Growth(read_totals(totals)) if totals is not None else None,
        )

    @classmethod
    def from_directory(cls, directory: Path) -> Hierarchy:
        """Load ``units``, ``links`` and ``population`` (``.csv.gz`` or ``.csv``) from a folder
        (a province's own reference data); its ``population_totals`` when it has one, else
        the reference national totals."""

        def pick(stem: str) -> Path:
            gz = directory / f"{stem}.csv.gz"
            return gz if gz.exists() else directory / f"{stem}.csv"

        totals = pick("population_totals")
        return cls.from_csv(
            pick("units"),
            pick("links"),
            pick("population"),
            totals if totals.exists() else reference_dir() / "population_totals.csv",
        )

    def with_population(self, rows: Iterable[PopulationRow]) -> Hierarchy:
        """This hierarchy with the population rows of every station named in ``rows``
        replaced by ``rows`` (a province's own official table); other stations keep theirs.
        Rows without a ``reference_date`` are used as they are (no growth applied)."""
        new = list(rows)
        codes = {r.code for r in new}
        kept = [r for code, rs in self._population.items() if code not in codes for r in rs]
        return Hierarchy(
            (v for vs in self._versions.values() for v in vs),
            (link for ls in self._parents.values() for link in ls),
            [*kept, *new],
            growth=self._growth,
        )

    def extended(
        self,
        units: Iterable[Unit] = (),
        links: Iterable[Link] = (),
        population: Iterable[PopulationRow] = (),
    ) -> Hierarchy:
        """A new hierarchy: this one plus more units, links and population rows (validated
        as a whole; e.g. the facilities of ``schemas.facilities``), with the same population
        growth (estimates for the years after the census). This one is unchanged."""
        return Hierarchy(
            [*(v for vs in self._versions.values() for v in vs), *units],
            [*(x for xs in self._parents.values() for x in xs), *links],
            [*(r for rs in self._population.values() for r in rs), *population],
            growth=self._growth,
        )

    @classmethod
    def default(cls) -> Hierarchy:
        """Vietnam's units: pre-July-2025 (63 provinces) then the 2025 structure (34). Cached."""
        return _default()

    # ---- dates ----------------------------------------------------------------------------

    @property
    def boundaries(self) -> tuple[date, ...]:
        """Every date on which something in the hierarchy changes, ascending."""
        return self._bounds

    @property
    def current_date(self) -> date:
        """The first date of the latest structure (the last unit or link boundary), the
        default restate target. ``date.min`` when nothing is dated."""
        return self._structure_bounds[-1] if self._structure_bounds else date.min

    def _epoch(self, day: date) -> int:
        return bisect.bisect_right(self._bounds, day)

    # ---- single units ---------------------------------------------------------------------

    def _version(self, code: str, day: date) -> Unit | None:
        for v in self._versions.get(code, ()):
            if v.valid_at(day):
                return v
        return None

    def tier_of(self, code: str) -> Tier:
        vs = self._versions.get(code)
        if not vs:
            raise UnknownUnit(f"no unit {code!r}", code=code)
        return vs[0].tier

    def unit(self, code: str, at: When) -> UnitRef:
        """The unit ``code`` as it was at ``at``; ``UnknownUnit`` if it did not exist then."""
        day = as_local_date(at)
        v = self._version(code, day)
        if v is None:
            raise UnknownUnit(f"no unit {code!r} on {day}", code=code, at=day)
        return _ref(v)

    def exists(self, code: str, at: When) -> bool:
        return self._version(code, as_local_date(at)) is not None

    def versions(self, code: str) -> tuple[Unit, ...]:
        """Every version of ``code`` (renames, closing), oldest first."""
        return self._versions.get(code, ())

    def parent(self, code: str, at: When) -> UnitRef | None:
        """The parent of ``code`` at ``at`` (``None`` for the national unit)."""
        day = as_local_date(at)
        self.unit(code, day)
        for link in self._parents.get(code, ()):
            if link.valid_at(day):
                return self.unit(link.parent, day)
        return None

    def opened_at(self, station: str) -> date | None:
        """First day of ``station`` (``None``: it exists since before the data begins)."""
        vs = self._versions.get(station)
        if not vs or vs[0].tier is not Tier.STATION:
            raise UnknownStation(f"no station {station!r}", code=station)
        return vs[0].valid_from

    def closed_at(self, station: str) -> date | None:
        """First day ``station`` no longer exists (``None``: still open)."""
        vs = self._versions.get(station)
        if not vs or vs[0].tier is not Tier.STATION:
            raise UnknownStation(f"no station {station!r}", code=station)
        return vs[-1].valid_to

    # ---- the lookup the validator and router use ------------------------------------------

    def lookup(self, station: str, at: When) -> Placement:
        """Station → district → province → national as valid at ``at``.

        Raises ``UnknownStation`` (never a station), ``StationNotYetOpen`` (before its first
        day) or ``StationClosed`` (after its last day, or in a gap between versions).
        """
        day = as_local_date(at)
        key = (station, self._epoch(day))
        hit = self._placements.get(key)
        if hit is not None:
            return hit if hit.at == day else _redate(hit, day)
        vs = self._versions.get(station)
        if not vs or vs[0].tier is not Tier.STATION:
            raise UnknownStation(f"no station {station!r}", code=station, at=day)
        v = self._version(station, day)
        if v is None:
            first = vs[0].valid_from
            if first is not None and day < first:
                raise StationNotYetOpen(
                    f"station {station} opens on {first}, event dated {day}", code=station, at=day
                )
            raise StationClosed(
                f"station {station} closed on {vs[-1].valid_to}, event dated {day}",
                code=station,
                at=day,
            )
        district = self.parent(station, day)
        province = self.parent(district.code, day) if district else None
        national = self.parent(province.code, day) if province else None
        assert district and province and national  # guaranteed by validation
        placement = Placement(day, _ref(v), district, province, national)
        self._placements[key] = placement
        return placement

    def lookup_site(self, station: str, at: When) -> Placement:
        """:meth:`lookup`, except that a station closed by a commune merger still places its
        events: as a *site* of its successor station (the commune it merged into, following
        successors), under that station's district and province at ``at``.
        ``placement.station`` keeps the closed code and its last name, so the event counts
        under the old code as recorded and under the new commune when restated.

        Raises like ``lookup`` when the station closed into something that is not a station."""
        try:
            return self.lookup(station, at)
        except StationClosed:
            day = as_local_date(at)
            key = (station, self._epoch(day))
            hit = self._sites.get(key)
            if hit is None:
                successor = self.successor_station(station, day)
                if successor is None:
                    raise
                pl = self.lookup(successor, day)
                site = _ref(self._versions[station][-1])
                hit = Placement(day, site, pl.district, pl.province, pl.national)
                self._sites[key] = hit
            return hit if hit.at == day else _redate(hit, day)

    def successor_station(self, station: str, at: When) -> str | None:
        """The station open at ``at`` that closed ``station`` merged into (successors
        followed); ``None`` when ``station`` is still open at ``at`` or has no successor
        station (it closed into a district or a regional centre)."""
        day = as_local_date(at)
        vs = self._versions.get(station)
        if not vs or vs[0].tier is not Tier.STATION:
            return None
        end = vs[-1].valid_to
        if end is None or day < end:
            return None
        try:
            ref = self.restate(station, end - timedelta(days=1), day)
        except (HierarchyError, ValueError):
            return None
        return ref.code if ref.tier is Tier.STATION else None

    # ---- subtrees -------------------------------------------------------------------------

    def children(self, code: str, at: When) -> tuple[UnitRef, ...]:
        """Direct children of ``code`` at ``at``, by code."""
        day = as_local_date(at)
        self.unit(code, day)
        key = (code, self._epoch(day))
        cached = self._child_cache.get(key)
        if cached is None:
            refs = [
                self.unit(link.child, day)
                for link in self._children.get(code, ())
                if link.valid_at(day)
            ]
            cached = tuple(sorted(refs, key=lambda r: r.code))
            self._child_cache[key] = cached
        return cached

    def descendants(self, code: str, tier: Tier | str, at: When) -> tuple[UnitRef, ...]:
        """Units of ``tier`` under ``code`` at ``at`` (``code`` itself if of that tier)."""
        day = as_local_date(at)
        want = Tier.parse(tier)
        frontier = [self.unit(code, day)]
        while frontier and frontier[0].tier < want:
            frontier = [c for ref in frontier for c in self.children(ref.code, day)]
        return tuple(sorted((r for r in frontier if r.tier is want), key=lambda r: r.code))

    def stations_in(self, code: str, at: When) -> tuple[str, ...]:
        """Codes of the stations under ``code`` at ``at``."""
        return tuple(r.code for r in self.descendants(code, Tier.STATION, at))

    def units(self, tier: Tier | str, at: When) -> tuple[UnitRef, ...]:
        """Every unit of ``tier`` that exists at ``at``, by code."""
        day = as_local_date(at)
        out = []
        for code in self._by_tier[Tier.parse(tier)]:
            v = self._version(code, day)
            if v is not None:
                out.append(_ref(v))
        return tuple(out)

    def codes(self, tier: Tier | str) -> tuple[str, ...]:
        """Every code of ``tier`` at any date."""
        return self._by_tier[Tier.parse(tier)]

    # ---- population -----------------------------------------------------------------------

    @property
    def has_population(self) -> bool:
        return bool(self._population)

    @property
    def growth(self) -> Growth | None:
        return self._growth

    def population(self, code: str, at: When, group: PopulationGroup = "total") -> int:
        """Population (``group``: ``total``, ``under_1``, ``women_15_49``) of ``code`` at
        ``at``: a station's own row, scaled from its reference date to 1 July of ``at``'s year
        by the national growth (an estimate), else the sum of its stations."""
        day = as_local_date(at)
        key = (code, self._epoch(day), day.year, group)
        cached = self._pop_cache.get(key)
        if cached is not None:
            return cached
        ref = self.unit(code, day)
        if ref.tier is Tier.STATION:
            value = self._station_population(code, day, group)
        else:
            value = sum(self.population(c.code, day, group) for c in self.children(code, day))
        self._pop_cache[key] = value
        return value

    def _station_population(self, code: str, day: date, group: PopulationGroup) -> int:
        for row in self._population.get(code, ()):
            if row.valid_at(day):
                count = row.count(group)
                if count is None:
                    break
                if row.reference_date is None or self._growth is None:
                    return count
                return round(count * self._growth.factor(row.reference_date, mid_year(day.year)))
        raise NoPopulation(f"no {group} population for station {code} on {day}", code=code, at=day)

    def population_basis(self, at: When) -> str:
        """How the population denominators at ``at`` are made, for report footers."""
        day = as_local_date(at)
        rows = [r for rs in self._population.values() for r in rs if r.valid_at(day)]
        if not rows:
            return "no population data"
        dated = sorted({r.reference_date for r in rows if r.reference_date is not None})
        as_given = sum(1 for r in rows if r.reference_date is None or self._growth is None)
        parts = []
        if dated and self._growth is not None:
            sources = ", ".join(a.source or a.day.isoformat() for a in self._growth.anchors)
            parts.append(
                f"counts of {', '.join(d.isoformat() for d in dated)} scaled to "
                f"{mid_year(day.year).isoformat()} by the national growth between {sources} "
                "(an estimate)"
            )
        if as_given:
            parts.append(f"{as_given} station(s) from an official table, as given")
        return "; ".join(parts)

    # ---- restating into another (the current) structure -----------------------------------

    def restate(self, code: str, at: When, to: When | None = None) -> UnitRef:
        """The unit of the structure at ``to`` (default ``current_date``) that ``code``, as it
        was recorded at ``at``, rolls into: itself if it still exists, else its successor (a
        merged commune → its regional centre, a district → its regional centre or new province,
        a province → its new province), followed until one exists at ``to``."""
        day = as_local_date(at)
        target = as_local_date(to) if to is not None else self.current_date
        if target < day:
            raise ValueError(f"restate goes forward in time only ({day} → {target})")
        v = self._version(code, day)
        if v is None:
            raise UnknownUnit(f"no unit {code!r} on {day}", code=code, at=day)
        for _ in range(64):
            if v.valid_to is None or target < v.valid_to:
                return _ref(v)
            end = v.valid_to
            nxt = self._version(v.code, end) or (
                self._version(v.successor, end) if v.successor else None
            )
            if nxt is None:
                raise UnknownUnit(
                    f"unit {v.code} ends on {end} with no successor", code=v.code, at=end
                )
            v = nxt
        raise UnknownUnit(f"successor chain of {code} too long", code=code, at=day)

    # ---- for the simulator ----------------------------------------------------------------

    def select_stations(
        self,
        at: When,
        provinces: Iterable[str] | None = None,
        *,
        limit: int | None = None,
        seed: int = 0,
    ) -> tuple[str, ...]:
        """Stations open at ``at`` in ``provinces`` (default: all), sorted by code; with
        ``limit``, a seeded sample of that many (deterministic for a given seed)."""
        day = as_local_date(at)
        if provinces is None:
            pool = [r.code for r in self.units(Tier.STATION, day)]
        else:
            pool = sorted({s for p in provinces for s in self.stations_in(p, day)})
        if limit is not None and limit < len(pool):
            pool = sorted(random.Random(seed).sample(pool, limit))
        return tuple(pool)

    def __repr__(self) -> str:
        counts = ", ".join(f"{t.label}={len(self._by_tier[t])}" for t in Tier)
        return f"Hierarchy({counts}, boundaries={[d.isoformat() for d in self._bounds]})"


def _redate(p: Placement, day: date) -> Placement:
    return Placement(day, p.station, p.district, p.province, p.national)


@cache
def _default() -> Hierarchy:
    ref = reference_dir()
    return Hierarchy.from_csv(
        ref / "units.csv.gz",
        ref / "links.csv.gz",
        ref / "population.csv.gz",
        ref / "population_totals.csv",
    )
