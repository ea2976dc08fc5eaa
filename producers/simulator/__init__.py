"""The synthetic-station simulator: deterministic activity of real stations, with its ground
truth for oracle tests. Pure (no Kafka: see :mod:`producers.writers`)."""

from producers.simulator.engine import choose_stations, event_id, simulate
from producers.simulator.model import (
    EXPECTED_REASON,
    BadKind,
    SimEvent,
    SimulationResult,
    Truth,
    TruthRecord,
    entered_late,
)

__all__ = [
    "EXPECTED_REASON",
    "BadKind",
    "SimEvent",
    "SimulationResult",
    "Truth",
    "TruthRecord",
    "choose_stations",
    "entered_late",
    "event_id",
    "simulate",
]
