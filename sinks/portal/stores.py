"""The one place the portal touches the stores: which store a principal may open, and how.

The service alone holds the store root (and, on object stores, its credentials); a request
never names a path. A scope opens only what it covers:

- a national scope reads every province's root (the tier the report is for: national pages
  the province tier, ``sinks.reports.source_tier``), and its reports leave the provinces'
  subtrees only suppressed (``sinks.reports.smallcells``); the public page reads the
  national (pseudonymised) tier;
- a province, district/regional-centre or station scope reads its **province's** folders
  of the tier the report is for (province pages: the province tier; district pages: the
  district tier), and of the pre-2025 provinces merged into it.

Each owner has its own root (``sinks.roots.StoreRoots``: a root per province, the national
root); :meth:`StoreAccess.roots` asks ``StoreRoots.for_store`` which roots a key covers (a
province and the pre-2025 provinces merged into it share one root). Connections are DuckDB
in-memory catalogs (``sinks.catalog.open_catalog``, each locked to its root), one per
(tier, provinces), shared by the request threads through ``cursor()``: each request's own
DuckDB cursor, with its own snapshot of the store's files (``sinks.catalog.snapshot``; the
snapshot's decision of which current-state rows are each record's latest is reused while
the listed files are unchanged, so a request after another pays no more than loading it).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from schemas.hierarchy import Hierarchy, Tier
from sinks.catalog import open_catalog, snapshot
from sinks.portal.scope import Scope
from sinks.reports.config import source_tier
from sinks.roots import StoreRoots
from sinks.store import SIGNOFF_DIR

__all__ = ["StoreAccess", "StoreKey"]


@dataclass(frozen=True, slots=True)
class StoreKey:
    """Which store a request reads: a tier and the province folders (``None``: all)."""

    tier: str
    provinces: tuple[str, ...] | None

    def __str__(self) -> str:
        return f"{self.tier}:{','.join(self.provinces) if self.provinces else '*'}"


class StoreAccess:
    """Opens the stores a scope covers (see the module docstring)."""

    def __init__(
        self,
        root: str | StoreRoots,
        hierarchy: Hierarchy,
        *,
        hierarchy_dir: Path | None = None,
        generation_ttl: float = 5.0,
    ) -> None:
        self.store_roots = root if isinstance(root, StoreRoots) else StoreRoots.single(root)
        self.h = hierarchy
        self.hierarchy_dir = hierarchy_dir
        self.generation_ttl = generation_ttl
        self._cons: dict[StoreKey, duckdb.DuckDBPyConnection] = {}
        self._gens: dict[StoreKey, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def key(self, scope: Scope, report_tier: str, at: date) -> StoreKey:
        """The store a scope reads for a report at ``report_tier``."""
        tier = source_tier(report_tier)
        if scope.tier is Tier.NATIONAL:  # every province; its reports are suppressed
            return StoreKey(tier, None)
        return StoreKey(tier, scope.store_provinces(self.h, at))

    def public_key(self) -> StoreKey:
        """The public page's store: the national tier (pseudonymised; resources only)."""
        return StoreKey("national", None)

    def roots(self, key: StoreKey) -> list[str]:
        """The roots holding ``key``'s data: the national root, or the root of the
        province(s) of the key."""
        return self.store_roots.for_store(key.tier, key.provinces)

    @contextmanager
    def cursor(
        self, key: StoreKey, reads: Iterable[str] | None = None
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection of its own over ``key``'s catalog, closed afterwards. ``reads``: the
        record types whose current views the request reads (what its snapshot decides,
        ``sinks.catalog.snapshot``; default every one; a view read beyond them is still exact,
        only slower)."""
        with self._lock:
            con = self._cons.get(key)
            if con is None:
                roots = self._existing(self.roots(key))
                con = open_catalog(
                    roots[0] if len(roots) == 1 else roots,
                    key.tier,
                    province=key.provinces,
                    hierarchy=self.hierarchy_dir,
                )
                self._cons[key] = con
        cur = con.cursor()
        try:
            with snapshot(cur, reads=reads):  # one listing of the store per request, its own
                yield cur
        finally:
            cur.close()

    @staticmethod
    def _existing(roots: list[str]) -> list[str]:
        """``roots`` without the local ones that do not exist (a province with no data yet);
        at least the first (an empty catalog)."""
        kept = [
            r
            for r in roots
            if ("://" in r and not r.startswith("file://"))
            or Path(r.removeprefix("file://")).exists()
        ]
        return kept or roots[:1]

    def _local_dirs(self, key: StoreKey) -> list[Path]:
        out = []
        for root in self.roots(key):
            if "://" in root and not root.startswith("file://"):
                continue
            base = Path(root.removeprefix("file://")) / key.tier
            if key.provinces is None:
                out.append(base)
            else:
                out += [base / f"province={p}" for p in key.provinces]
        return out

    def generation(self, key: StoreKey) -> str:
        """Changes whenever a file under ``key``'s folders or their sign-off ledger is added,
        replaced or removed (re-read at most every ``generation_ttl`` seconds; object-store
        roots: a time bucket of that length)."""
        now = time.monotonic()
        with self._lock:
            hit = self._gens.get(key)
            if hit is not None and now - hit[0] < self.generation_ttl:
                return hit[1]
        dirs = self._local_dirs(key)
        if dirs:  # the sign-off ledger: reports "as submitted" and revisions follow it too
            dirs += self._local_dirs(StoreKey(SIGNOFF_DIR, key.provinces))
        if not dirs:
            gen = f"t{int(time.time() // max(self.generation_ttl, 1.0))}"
        else:
            count, newest, size = 0, 0, 0
            for d in dirs:
                for path, _subdirs, files in os.walk(d):
                    for f in files:
                        if f.endswith(".parquet"):
                            st = (Path(path) / f).stat()
                            count += 1
                            size += st.st_size
                            newest = max(newest, st.st_mtime_ns)
            gen = f"{count}-{size}-{newest}"
        with self._lock:
            self._gens[key] = (now, gen)
        return gen

    def months(self, key: StoreKey) -> list[str]:
        """The event months with data in ``key``'s folders (local roots), sorted."""
        found: set[str] = set()
        for d in self._local_dirs(key):
            provinces = [d] if key.provinces is not None else sorted(d.glob("province=*"))
            for prov in provinces:
                for month in prov.glob("record_type=*/month=*"):
                    found.add(month.name.removeprefix("month="))
        return sorted(found)

    def close(self) -> None:
        with self._lock:
            for con in self._cons.values():
                con.close()
            self._cons.clear()
