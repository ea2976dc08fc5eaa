"""Errors of the `sinks` package (stores, compaction, catalog)."""

from __future__ import annotations

from schemas.exceptions import TuyenError

__all__ = ["CatalogError", "CompactionError", "RootUnreachable", "SinkError", "StoreWriteError"]


class SinkError(TuyenError):
    """Root of the `sinks` package."""


class StoreWriteError(SinkError):
    """A store file could not be written or removed (disk full, object store down)."""

    retryable = True


class CompactionError(SinkError):
    """A compaction step failed; inputs are left in place, so running it again is safe."""

    retryable = True


class CatalogError(SinkError):
    """The catalog could not be built (bad tier name, unreadable store root)."""


class RootUnreachable(SinkError):
    """A store root could not be opened or written (a bucket that does not exist, missing
    credentials, the store down): the message names each such root."""
