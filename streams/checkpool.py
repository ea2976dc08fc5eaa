"""Stage 1 (:meth:`streams.validate.Validator.check`) in worker processes. No Kafka imports.

Stage 1 is stateless and CPU-bound in Python (decode, payload validation, Ed25519), so a
thread pool cannot run it beside the event loop (the GIL) except for Ed25519 (libsodium releases
it); a process pool can. It is off by default (``verify_processes=0``): pickling items and
verdicts and the second process's own overhead cost more than a second core gives on a busy
2-core machine (figures in docs/streams.md); use it where a worker has a core to spare
(``--verify-processes N``). Each worker process builds its own :class:`Validator` once
(initializer: the config's hierarchy, :func:`hierarchy_of`, or a pickled one, the key registry
from the config or a pickled one; a registry file is watched for changes in each process,
:class:`schemas.ReloadingKeyRegistry`); batches travel as compact tuples ``(key, value,
headers, partition, timestamp)`` in one chunk per process, and verdicts come back as tuples
(``(record, signature)`` or ``(reason, message)``), rebuilt into :class:`Accepted` /
:class:`Rejected` here, in the input order. Only stage 1 runs there: the accepted events'
encoded outputs cost more to send back than the record dicts.

The processes are spawned (not forked: the parent runs Kafka client threads), from the thread
that builds the pool (build it on the main thread: Linux's parent-death signal, which ends the
processes when the worker dies, follows the spawning thread). If one dies, the pool is
rebuilt once and the rest of the batch checked again; a second failure raises.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime
from typing import Any

from schemas import DevKeyRegistry, KeyRegistry, Reason, ReloadingKeyRegistry
from schemas.hierarchy import Hierarchy
from schemas.process import die_with_parent
from streams.collector import tune_collector
from streams.config import StreamsConfig
from streams.validate import Accepted, RawMessage, Rejected, Validator

__all__ = ["CheckPool", "key_registry"]

logger = logging.getLogger(__name__)

# (key, value, headers, partition, kafka timestamp)
Item = tuple[bytes | None, bytes | None, Sequence[tuple[str, bytes | None]], int, datetime]
# (record, signature) for an accepted event, (reason value, message) for a rejected one
Verdict = tuple[Any, str]

_validator: Validator | None = None


def key_registry(config: StreamsConfig) -> KeyRegistry:
    """The key registry the config names: its JSON file, watched for changes every
    ``key_registry_reload_s`` (refused at load and at every reload when it holds a development
    key outside development mode); else (development mode only) the development registry."""
    if config.key_registry_path:
        return ReloadingKeyRegistry(
            config.key_registry_path,
            config.key_registry_reload_s,
            development=config.development,
        )
    if not config.development:  # StreamsConfig refuses this already; never fall back
        raise ValueError("no key registry configured outside development mode")
    return DevKeyRegistry(
        config.key_registry_seed.get_secret_value().encode(),
        signers_per_station=config.signers_per_station,
    )


def hierarchy_of(config: StreamsConfig) -> Hierarchy:
    """The default hierarchy plus the registered facilities the config names (if any)."""
    from schemas.facilities import load_hierarchy

    return load_hierarchy(config.facilities_path)


def _init(
    config: StreamsConfig, hierarchy: Hierarchy | None, keys: KeyRegistry | None, parent: int
) -> None:
    """Per worker process: build the validator once."""
    global _validator
    die_with_parent(parent)
    _validator = Validator(
        hierarchy if hierarchy is not None else hierarchy_of(config),
        keys if keys is not None else key_registry(config),
        config.policy,
        partitions=config.partitions,
    )
    tune_collector()


def _check(items: Sequence[Item], now: datetime) -> list[Verdict]:
    """Check a chunk in a worker process (compact verdicts, input order)."""
    validator = _validator
    assert validator is not None, "worker process not initialised"
    out: list[Verdict] = []
    append = out.append
    for key, value, headers, partition, timestamp in items:
        v = validator.check(RawMessage(key, value, headers, "", partition, 0, timestamp), now)
        if isinstance(v, Accepted):
            append((v.record, v.signature))
        else:
            append((v.reason.value, v.message))
    return out


def _verdict(v: Verdict) -> Accepted | Rejected:
    first, second = v
    if isinstance(first, dict):
        return Accepted(first, second)
    return Rejected(Reason(first), second)


class CheckPool:
    """``processes`` worker processes running stage 1."""

    def __init__(
        self,
        processes: int,
        config: StreamsConfig,
        *,
        hierarchy: Hierarchy | None = None,
        keys: KeyRegistry | None = None,
    ) -> None:
        if processes < 1:
            raise ValueError("a check pool needs at least one process")
        self.processes = processes
        self._initargs = (config, hierarchy, keys)
        self._executor = self._start()

    def _start(self) -> ProcessPoolExecutor:
        executor = ProcessPoolExecutor(
            self.processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init,
            initargs=(*self._initargs, os.getpid()),
        )
        # start the processes now (spawn + reference data take ~1 s), not on the first batch
        for f in [executor.submit(_check, [], datetime.now()) for _ in range(self.processes)]:
            f.result()
        return executor

    async def chunks(
        self, msgs: Sequence[RawMessage], now: datetime, size: int
    ) -> AsyncIterator[tuple[Sequence[RawMessage], list[Accepted | Rejected]]]:
        """Stage 1 of ``msgs`` in chunks of ``size``, all submitted at once, yielded in input
        order as each completes (the caller finishes chunk k while k+1 is being checked). If a
        process dies, the pool is rebuilt once and the chunks not yet returned are checked
        again; a second failure raises."""
        parts = [msgs[i : i + size] for i in range(0, len(msgs), size)]
        futures = [self._submit(p, now) for p in parts]
        restarted = False
        k = 0
        try:
            while k < len(parts):
                try:
                    verdicts = await futures[k]
                except BrokenProcessPool:
                    if restarted:
                        raise
                    restarted = True
                    for future in futures[k:]:
                        future.cancel()
                    await self._restart()
                    futures[k:] = [self._submit(p, now) for p in parts[k:]]
                    continue
                yield parts[k], [_verdict(v) for v in verdicts]
                k += 1
        finally:
            for future in futures:
                if not future.done():
                    future.cancel()

    def _submit(self, part: Sequence[RawMessage], now: datetime) -> asyncio.Future[list[Verdict]]:
        items = [(m.key, m.value, m.headers, m.partition, m.timestamp) for m in part]
        loop = asyncio.get_running_loop()
        try:
            return loop.run_in_executor(self._executor, _check, items, now)
        except BrokenProcessPool as exc:  # a process died before this submit: fail the future
            failed: asyncio.Future[list[Verdict]] = loop.create_future()
            failed.set_exception(exc)
            return failed

    async def _restart(self) -> None:
        logger.error("check pool broken (a worker process died): restarting it")
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._executor = await asyncio.get_running_loop().run_in_executor(None, self._start)

    def check_sync(self, msgs: Sequence[RawMessage], now: datetime) -> list[Accepted | Rejected]:
        """:meth:`check` without an event loop (tests, benchmarks)."""
        items = [(m.key, m.value, m.headers, m.partition, m.timestamp) for m in msgs]
        return [_verdict(v) for v in self._executor.submit(_check, items, now).result()]

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
