"""Errors of the stream layer (root: :class:`StreamsError`)."""

from __future__ import annotations

from schemas.exceptions import TuyenError

__all__ = ["OutputError", "StreamsError"]


class StreamsError(TuyenError):
    """Root of the ``streams`` package."""


class OutputError(StreamsError):
    """Publishing to an output topic failed (the batch is not committed; it is retried)."""

    retryable = True
