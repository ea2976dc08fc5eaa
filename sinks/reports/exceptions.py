"""Errors of the reports: a bad request (period, unit, principal) or a refused one."""

from __future__ import annotations

from sinks.exceptions import SinkError

__all__ = ["AccessDenied", "BadRequest", "ReportError"]


class ReportError(SinkError):
    """Root of ``sinks.reports`` errors. Never retryable: the request itself is wrong.
    ``exit_code`` and ``label`` are what the CLI shows and exits with."""

    retryable = False
    exit_code = 2
    label = "error:"


class BadRequest(ReportError):
    """A malformed or impossible request: unknown period syntax, unit, tier or principal."""


class AccessDenied(ReportError):
    """The principal may not read the requested unit (outside its subtree)."""

    exit_code = 3
    label = ""
