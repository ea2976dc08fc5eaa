"""Errors of the facility hierarchy. Each carries a machine-readable ``reason`` for the DLQ."""

from __future__ import annotations

from datetime import date

from schemas.exceptions import ContractError, KafkaCoordinates


class HierarchyError(ContractError):
    """Root of the hierarchy errors: a code or a date does not fit the reference data."""

    reason: str = "hierarchy_error"
    retryable = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        at: date | None = None,
        coordinates: KafkaCoordinates | None = None,
    ) -> None:
        self.code = code
        self.at = at
        super().__init__(f"{self.reason}: {message}", coordinates=coordinates)


class UnknownStation(HierarchyError):
    """The station code is not a station in the hierarchy at any date."""

    reason = "unknown_station"


class StationClosed(HierarchyError):
    """The station existed, but was closed (merged away) at the given date."""

    reason = "closed_station"


class StationNotYetOpen(HierarchyError):
    """The station exists, but only from a date after the given one."""

    reason = "before_station_opened"


class UnknownUnit(HierarchyError):
    """A code asked about (any tier) is not in the hierarchy, or not valid at that date."""

    reason = "unknown_unit"


class NoPopulation(HierarchyError):
    """No population denominator covers the unit at that date."""

    reason = "no_population"


class InvalidReferenceData(HierarchyError):
    """Hierarchy or population files are inconsistent (overlaps, gaps, wrong tiers, bad rows)."""

    reason = "invalid_reference_data"
