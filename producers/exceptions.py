"""Errors of the producers package (root: :class:`ProducerError`)."""

from __future__ import annotations

from schemas.exceptions import TuyenError


class ProducerError(TuyenError):
    """Root of the producers package."""


class OutboxError(ProducerError):
    """The local outbox cannot be opened or written (disk full, locked by another process)."""

    retryable = True


class OutboxLocked(OutboxError):
    """Another process holds this outbox: one StationClient per outbox file."""

    retryable = False


class SequenceError(ProducerError):
    """A pre-built change does not fit the outbox (wrong station, station_seq not increasing)."""

    retryable = False


class DeliveryError(ProducerError):
    """The Kafka producer reported a fatal error; the client must be reopened (nothing lost)."""

    retryable = True


class SimulationError(ProducerError):
    """The simulation cannot run with these options (no stations, dates in the future...)."""

    retryable = False
