"""Errors of the contract layer, and the Kafka coordinates every record error carries."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class KafkaCoordinates:
    """Where a record sits in Kafka; attached to every error that concerns a record."""

    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    event_id: str | None = None

    def __str__(self) -> str:
        return (
            f"topic={self.topic} partition={self.partition} "
            f"offset={self.offset} event_id={self.event_id}"
        )


class TuyenError(Exception):
    """Root of every error raised by tuyen's packages."""

    retryable: bool = False

    def __init__(self, message: str, *, coordinates: KafkaCoordinates | None = None) -> None:
        self.message = message
        self.coordinates = coordinates
        super().__init__(f"{message} [{coordinates}]" if coordinates else message)


class ContractError(TuyenError):
    """Root of the `schemas` package: an event or reference datum breaks the contract."""
