"""Errors of the reports: a bad request (period, unit, principal) or a refused one."""

from __future__ import annotations

from schemas.exceptions import TuyenError

__all__ = ["AccessDenied", "BadRequest", "ReportError"]


class ReportError(TuyenError):
    """Root of ``sinks.reports`` errors. Never retryable: the request itself is wrong."""

    retryable = False


class BadRequest(ReportError):
    """A malformed or impossible request: unknown period syntax, unit, tier or principal."""


class AccessDenied(ReportError):
    """The principal may not read the requested unit (outside its subtree)."""
