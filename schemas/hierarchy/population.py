"""Population denominators: per-station rows and the deterministic apportionment that made them.

Only stations carry population rows; every other unit's population at a date is the sum over
the stations under it at that date, so children always add up to their parent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from schemas.hierarchy.model import covers

__all__ = ["PopulationRow", "apportion", "hash_weight"]


@dataclass(frozen=True, slots=True)
class PopulationRow:
    """``population`` people live in station ``code``'s commune over ``[valid_from, valid_to)``."""

    code: str
    population: int
    valid_from: date | None = None
    valid_to: date | None = None

    def valid_at(self, day: date) -> bool:
        return covers(self.valid_from, self.valid_to, day)


def hash_weight(code: str, salt: str = "tuyen-population-v1") -> int:
    """A stable integer weight in ``[500, 1500)`` from the code (sha256), for apportionment.

    It spreads a province total unevenly but reproducibly over its communes (ratio ≤ 3:1);
    it is a stand-in for real commune populations, which the public sources do not give.
    """
    digest = hashlib.sha256(f"{salt}:{code}".encode()).digest()
    return 500 + int.from_bytes(digest[:8], "big") % 1000


def apportion(total: int, weights: Mapping[str, int] | Sequence[tuple[str, int]]) -> dict[str, int]:
    """Split ``total`` over keys in proportion to integer ``weights`` (largest remainder).

    Exact integer arithmetic: the parts sum to ``total``; each part is its quota rounded down
    or up; leftover units go to the largest remainders, ties broken by key (deterministic).
    """
    items = sorted(weights.items() if isinstance(weights, Mapping) else weights)
    if total < 0:
        raise ValueError("total must be >= 0")
    if not items:
        if total:
            raise ValueError("cannot apportion a non-zero total over no keys")
        return {}
    if any(w < 0 for _, w in items):
        raise ValueError("weights must be >= 0")
    wsum = sum(w for _, w in items)
    if wsum == 0:
        items = [(k, 1) for k, _ in items]
        wsum = len(items)
    parts: dict[str, int] = {}
    remainders: list[tuple[int, str]] = []
    for key, w in items:
        q, r = divmod(total * w, wsum)
        parts[key] = q
        remainders.append((-r, key))
    leftover = total - sum(parts.values())
    for _, key in sorted(remainders)[:leftover]:
        parts[key] += 1
    return parts
