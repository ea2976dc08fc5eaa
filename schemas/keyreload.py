"""A key registry file watched for changes: the stream worker's registry (and each of its
check processes'), reloaded without a restart. See :mod:`schemas.keys` for the format.

Fail closed, at the first load and at every reload: a file that holds no key, or (outside
development mode) a development key, is refused like a file that does not parse
(:func:`schemas.keys.registry_problem`), so a registry swapped in while the worker runs is held
to the same rules as the one it started with (``deploy.anchors.check_key_registry``)."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from schemas.keys import SignerKey, StaticKeyRegistry, registry_problem
from schemas.reasons import ContractViolation, Reason

__all__ = ["ReloadingKeyRegistry"]

logger = logging.getLogger(__name__)


class ReloadingKeyRegistry:
    """The registry in ``path``, reloaded when the file changes (see the module docstring).

    The file is looked at (``stat``: size, mtime, ctime, inode) at most every ``interval_s``
    seconds, when a key is looked up; when it changed, it is read, and a registry whose bytes
    differ is parsed and swapped in whole. The first load must succeed (fail closed); a later
    one that fails logs an error and keeps the registry in force until the file changes again.
    ``development``: development keys are allowed (development mode only). Picklable: a copy
    sent to another process loads the file itself.
    """

    def __init__(
        self,
        path: Path | str,
        interval_s: float = 10.0,
        *,
        development: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self.interval_s = interval_s
        self.development = development
        self._clock = clock
        self._lock = threading.Lock()
        self._stat = self._signature()
        raw = self.path.read_bytes()
        self._current = self._parse(raw)
        self._digest = hashlib.sha256(raw).digest()
        self._next = clock() + interval_s
        self.reloads = 0
        self.failures = 0

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.path, self.interval_s, self.development))

    def _parse(self, raw: bytes) -> StaticKeyRegistry:
        registry = StaticKeyRegistry.from_json(raw)
        problem = registry_problem(registry, development=self.development)
        if problem is not None:
            raise ContractViolation(Reason.SCHEMA_VIOLATION, f"key registry {self.path} {problem}")
        return registry

    def _signature(self) -> tuple[int, ...]:
        st = self.path.stat()
        return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)

    def keys_of(self, signer: str) -> tuple[SignerKey, ...]:
        if self._clock() >= self._next:
            self.check()
        return self._current.keys_of(signer)

    def lookup(self, signer: str) -> SignerKey | None:
        keys = self.keys_of(signer)
        return keys[0] if keys else None

    @property
    def current(self) -> StaticKeyRegistry:
        return self._current

    def check(self) -> bool:
        """Look at the file now; True when a new registry was swapped in."""
        if not self._lock.acquire(blocking=False):
            return False  # another thread is looking
        try:
            self._next = self._clock() + self.interval_s
            try:
                stat = self._signature()
                if stat == self._stat:
                    return False
                raw = self.path.read_bytes()
            except OSError as exc:
                logger.error("key registry unreadable, keeping the previous path=%s error=%s",
                             self.path, exc)  # fmt: skip
                self.failures += 1
                return False
            self._stat = stat
            digest = hashlib.sha256(raw).digest()
            if digest == self._digest:
                return False
            try:
                registry = self._parse(raw)
            except ContractViolation as exc:
                logger.error(
                    "key registry failed to load, keeping the previous path=%s error=%s",
                    self.path,
                    exc.message,
                )
                self.failures += 1
                return False
            self._current, self._digest = registry, digest
            self.reloads += 1
            logger.warning("key registry reloaded path=%s keys=%d", self.path, len(registry))
            return True
        finally:
            self._lock.release()


def _rebuild(path: Path, interval_s: float, development: bool) -> ReloadingKeyRegistry:
    return ReloadingKeyRegistry(path, interval_s, development=development)
