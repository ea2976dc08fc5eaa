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
)

__all__ = [
    "EXPECTED_REASON",
    "BadKind",
    "SimEvent",
    "SimulationResult",
    "Truth",
    "TruthRecord",
    "choose_stations",
    "event_id",
    "simulate",
]
