"""Legacy stations: stations whose software only exports Decision 130 check-out files.

:class:`LegacyStations` takes the simulator's events of the stations chosen as legacy
(``offer`` returns ``True``: the event must not be sent anywhere else), keeps each visit's
and each person's final state (corrections applied, deletions removed) and writes the visits
as check-out files, one per station and day (``write``). Only visits reach the pipeline from
a legacy station: the rest of its activity has no form in the decision. A visit whose
patient has no live person record, and home visits (no form in the decision), are not
written; ``expected`` counts what was written, for oracle tests.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from producers.interop.xml130.rows import EXPRESSIBLE_TYPES, visit_tables
from producers.interop.xml130.wrapper import write_wrapper
from producers.simulator.model import SimEvent
from schemas.facilities import HEADER
from schemas.hierarchy import VN_TZ

__all__ = ["LegacyStations", "Written"]


@dataclass
class Written:
    """What the files hold: visits by station and type, patients by station, files."""

    visits: Counter[tuple[str, str]] = field(default_factory=Counter)
    patients: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    files: list[Path] = field(default_factory=list)


class LegacyStations:
    """The legacy stations of a simulation (station code → its MA_CSKCB)."""

    def __init__(self, stations: Mapping[str, str], provinces: Mapping[str, str]) -> None:
        self.stations = dict(stations)
        self.provinces = dict(provinces)
        self._persons: dict[str, dict[str, Any] | None] = {}
        self._visits: dict[tuple[str, str], tuple[datetime, dict[str, Any] | None]] = {}
        self.diverted = 0

    def offer(self, ev: SimEvent) -> bool:
        """Keep ``ev`` if it comes from a legacy station (``True``: do not send it)."""
        if ev.station not in self.stations:
            return False
        self.diverted += 1
        change = ev.change
        if ev.bad is not None or change is None:
            return True
        rt = change.record_type.value
        if rt == "person":
            self._persons[change.record_id] = change.data
        elif rt == "encounter":
            prev = self._visits.get((ev.station, change.record_id))
            first_time = prev[0] if prev is not None else change.time
            self._visits[(ev.station, change.record_id)] = (first_time, change.data)
        return True

    def add_visit(
        self,
        station: str,
        record_id: str,
        encounter: dict[str, Any],
        time: datetime,
        person: dict[str, Any],
    ) -> None:
        """One more visit at a legacy station (e.g. a patient of another station)."""
        self._persons[person["health_id"]] = person
        self._visits[(station, record_id)] = (time, encounter)

    def registry_csv(self) -> str:
        """The facility registry of the legacy stations (``schemas.facilities`` format)."""
        rows = [",".join(HEADER)]
        rows += [f"{cskcb},{station},,,," for station, cskcb in sorted(self.stations.items())]
        return "\n".join(rows) + "\n"

    def write(self, out_dir: Path) -> Written:
        """One check-out file per legacy station and visit day under ``out_dir``."""
        by_file: dict[tuple[str, str], list[dict[str, list[dict[str, str]]]]] = defaultdict(list)
        written = Written()
        for (station, record_id), (first, data) in sorted(self._visits.items()):
            if data is None or data.get("encounter_type", "outpatient") not in EXPRESSIBLE_TYPES:
                continue
            person = self._persons.get(data["health_id"])
            if person is None:
                continue
            day = data["encounter_date"]
            local = first.astimezone(VN_TZ)
            hhmm = (local.hour, local.minute) if local.date().isoformat() == day else (8, 0)
            visit_time = datetime.fromisoformat(day).replace(
                hour=hhmm[0], minute=hhmm[1], tzinfo=VN_TZ
            )
            cskcb = self.stations[station]
            ma_lk = f"{cskcb}_{record_id.split(':', 1)[1]}"
            tables = visit_tables(
                cskcb, ma_lk, person, data, visit_time, province=self.provinces[station]
            )
            by_file[(station, day)].append(tables)
            written.visits[(station, data.get("encounter_type", "outpatient"))] += 1
            written.patients[station].add(data["health_id"])
        for (station, day), visits in sorted(by_file.items()):
            path = out_dir / station / f"{self.stations[station]}_{day}.xml"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(write_wrapper(self.stations[station], visits, day.replace("-", "")))
            written.files.append(path)
        return written
