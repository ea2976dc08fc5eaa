"""The demo's legacy stations: their visits reach the pipeline only as Decision 130 files.

The simulator's events of the legacy stations are kept back (``LegacyStations.offer``),
written as check-out files under ``<out>/xml130/<station>/``, then imported exactly as
``tuyen import xml130`` does (facility registry, SDK outbox per station, development keys).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from producers.simulator.legacy import LegacyStations, Written
from schemas.kafka import KafkaConnection
from sinks.roots import StoreRoots

__all__ = ["LegacyRun", "choose_legacy", "import_legacy", "stored_visits"]


@dataclass
class LegacyRun:
    """What the demo wrote and imported for its legacy stations."""

    stations: LegacyStations
    written: Written
    published: int
    problems: int
    #: person records left to the person's commune station (visitors from other communes)
    persons_elsewhere: int = 0


def choose_legacy(stations: tuple[str, ...], provinces: dict[str, str], n: int) -> LegacyStations:
    """The first ``n`` stations (by code) as legacy, each with a made-up MA_CSKCB
    (province + 9xx: a block no real commune station of the demo uses)."""
    picked = sorted(stations)[:n]
    return LegacyStations(
        {s: f"{provinces[s]}{900 + i:03d}" for i, s in enumerate(picked)},
        {s: provinces[s] for s in picked},
    )


def import_legacy(
    legacy: LegacyStations, out: Path, kafka: KafkaConnection, topic: str, console: Console
) -> LegacyRun:
    """Write the legacy stations' check-out files and import them into ``topic``."""
    from producers.config import ProducerConfig
    from producers.interop.importer import Importer, ReadContext, dev_signing
    from producers.interop.xml130 import read_file
    from schemas.facilities import FacilityRegistry

    folder = out / "xml130"
    written = legacy.write(folder)
    registry_path = folder / "facilities.csv"
    registry_path.write_text(legacy.registry_csv(), encoding="utf-8")
    ctx = ReadContext(registry=FacilityRegistry.load(registry_path))

    def config_for(source: str) -> ProducerConfig:
        return ProducerConfig(
            kafka=kafka, topic=topic, outbox_path=out / "outboxes" / f"{source}.db"
        )

    importer = Importer(config_for, dev_signing)
    try:
        report = importer.run(written.files, read_file, ctx)
    finally:
        left = importer.close(120.0)
    for p in report.problems[:10]:
        console.print(f"[yellow]legacy import problem[/yellow] {p.line()}", highlight=False)
    console.print(
        f"legacy stations {', '.join(sorted(legacy.stations))}: {sum(written.visits.values())} "
        f"visits in {len(written.files)} Decision 130 files → {report.published} events "
        f"through the SDK outbox ({left} unconfirmed)"
    )
    return LegacyRun(
        legacy, written, report.published, len(report.problems), report.persons_elsewhere
    )


def stored_visits(roots: StoreRoots, run: LegacyRun, console: Console) -> None:
    """Print each legacy station's visits in its province's store beside what was written."""
    from sinks.catalog import open_catalog

    for station in sorted(run.stations.stations):
        con = open_catalog(roots.province_root(run.stations.provinces[station]), "province")
        try:
            n = con.execute(
                "SELECT count(*) FROM encounter WHERE station_code = ?", [station]
            ).fetchall()[0][0]
        finally:
            con.close()
        wrote = sum(v for (s, _), v in run.written.visits.items() if s == station)
        console.print(
            f"legacy station {station} (Decision 130 files only): {wrote} visits written, "
            f"{n} in the province store"
        )
