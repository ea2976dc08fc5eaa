"""Per-station ``station_seq`` tracking: which sequence numbers this worker has seen, so gaps
(events a station produced but that have not arrived) are visible. Pure.

A station's events are spread over the raw topic's partitions (the key is the record key),
so one worker sees the whole sequence only when it owns every partition; with several
workers each reports the gaps in what it saw, and the stores' ``station_seq`` column is the
authoritative completeness source. Memory is bounded: at most ``max_runs`` runs of
consecutive numbers per station; older runs are merged (their gaps forgotten) when exceeded.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

__all__ = ["SeqTracker", "StationSeq"]


@dataclass
class StationSeq:
    """Runs ``[start, end]`` (inclusive) of seen numbers, sorted and disjoint."""

    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)

    def add(self, seq: int) -> None:
        i = bisect.bisect_right(self.starts, seq) - 1
        if i >= 0 and self.starts[i] <= seq <= self.ends[i]:
            return
        joins_left = i >= 0 and self.ends[i] == seq - 1
        joins_right = i + 1 < len(self.starts) and self.starts[i + 1] == seq + 1
        if joins_left and joins_right:
            self.ends[i] = self.ends[i + 1]
            del self.starts[i + 1], self.ends[i + 1]
        elif joins_left:
            self.ends[i] = seq
        elif joins_right:
            self.starts[i + 1] = seq
        else:
            self.starts.insert(i + 1, seq)
            self.ends.insert(i + 1, seq)

    def missing(self) -> int:
        """How many numbers are missing between the first and the last seen."""
        return sum(self.starts[j + 1] - self.ends[j] - 1 for j in range(len(self.starts) - 1))

    def gaps(self) -> list[tuple[int, int]]:
        """Missing ranges ``(first, last)`` inclusive."""
        return [(self.ends[j] + 1, self.starts[j + 1] - 1) for j in range(len(self.starts) - 1)]

    def compact(self, max_runs: int) -> None:
        while len(self.starts) > max_runs:
            self.ends[0] = self.ends[1]
            del self.starts[1], self.ends[1]


class SeqTracker:
    """Station → :class:`StationSeq`."""

    def __init__(self, max_runs: int = 64) -> None:
        self.max_runs = max_runs
        self.stations: dict[str, StationSeq] = {}

    def add(self, station: str, seq: int) -> None:
        s = self.stations.get(station)
        if s is None:
            s = self.stations[station] = StationSeq()
        s.add(seq)
        if len(s.starts) > self.max_runs:
            s.compact(self.max_runs)

    def report(self) -> dict[str, dict[str, object]]:
        """Stations with gaps: ``{station: {"missing": n, "gaps": [[a, b], ...], "last": k}}``."""
        out: dict[str, dict[str, object]] = {}
        for station, s in self.stations.items():
            n = s.missing()
            if n:
                out[station] = {
                    "missing": n,
                    "gaps": [list(g) for g in s.gaps()[:20]],
                    "last": s.ends[-1],
                }
        return out
