"""Errors of the lag monitor."""

from __future__ import annotations

from schemas.exceptions import TuyenError

__all__ = ["BrokerQueryError", "MonitorError"]


class MonitorError(TuyenError):
    """Root of the monitor's errors."""


class BrokerQueryError(MonitorError):
    """The broker did not answer an admin or offset query in time."""

    retryable = True
