"""What the app's agents share: the validator, the check pool, the publisher, the stats.
No faust here (the app, :mod:`streams.app`, owns one :class:`StreamsRuntime`)."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import orjson

from schemas import KeyRegistry, Reason
from schemas.hierarchy import Hierarchy
from schemas.topics import AGGREGATES
from streams.aggregate import LiveCounters
from streams.checkpool import CheckPool, hierarchy_of, key_registry
from streams.config import StreamsConfig
from streams.exceptions import OutputError
from streams.output import BatchPublisher, Refused
from streams.pipeline import BatchProcessor, OutMessage
from streams.pseudonymise import Pseudonymiser
from streams.validate import Accepted, RawMessage, Rejected, Validator

__all__ = ["StreamsRuntime"]

logger = logging.getLogger(__name__)


class StreamsRuntime:
    """What the agents share: processor, publisher, counters, stats (one per app)."""

    def __init__(
        self,
        config: StreamsConfig,
        hierarchy: Hierarchy | None = None,
        keys: KeyRegistry | None = None,
    ) -> None:
        self.config = config
        self.validator = Validator(
            hierarchy or hierarchy_of(config),
            keys if keys is not None else key_registry(config),
            config.policy,
            partitions=config.partitions,
        )
        self.pseudonymiser = Pseudonymiser(config.pseudonym_key_bytes())
        self.pool = ThreadPoolExecutor(config.verify_threads, thread_name_prefix="validate")
        # stage 1 in worker processes (0: in this process, on ``pool``), spawned here, on the
        # thread building the app (see streams.checkpool)
        self.check_pool: CheckPool | None = None
        if config.verify_processes > 0:
            self.check_pool = CheckPool(
                config.verify_processes, config, hierarchy=hierarchy, keys=keys
            )
        self.io = ThreadPoolExecutor(1, thread_name_prefix="publish")
        self.publisher: BatchPublisher | None = None
        self.processor: BatchProcessor | None = None
        self.counters: LiveCounters | None = None
        self.stats: Counter[str] = Counter()
        self.aggregates_topic = config.topic(AGGREGATES)

    def publisher_(self) -> BatchPublisher:
        if self.publisher is None:
            self.publisher = BatchPublisher(
                self.config.kafka, client_id=f"{self.config.group_id}-out"
            )
        return self.publisher

    async def check(self, msgs: Sequence[RawMessage], now: datetime) -> list[Accepted | Rejected]:
        """Stage 1 in this process (on the thread pool)."""
        assert self.processor is not None
        loop = asyncio.get_running_loop()
        n = self.config.verify_threads
        if n <= 1 or len(msgs) < 64:
            return await loop.run_in_executor(self.pool, self.processor.check, msgs, now)
        size = -(-len(msgs) // n)
        chunks = [msgs[i : i + size] for i in range(0, len(msgs), size)]
        parts = await asyncio.gather(
            *(loop.run_in_executor(self.pool, self.processor.check, c, now) for c in chunks)
        )
        return [v for part in parts for v in part]

    async def publish(
        self,
        messages: list[OutMessage],
        deltas: list[tuple[int, dict[str, Any]]],
        changelog: str | None = None,
        state: Sequence[tuple[str, bytes, int]] = (),
    ) -> None:
        """Produce ``messages`` and ``deltas``, flush; then write ``state`` (key, JSON value,
        partition) to the table's ``changelog`` topic (faust's JSON layout, explicit partition),
        flush. Two flushes so a crash can never leave the state ahead of the outputs."""
        publisher = self.publisher_()
        deltas_topic = self.config.deltas_topic

        def work() -> None:
            for m in messages:
                publisher.produce(m.topic, m.value, m.key, m.headers)
            for q, payload in deltas:
                publisher.produce(deltas_topic, orjson.dumps(payload), str(q).encode(), None, q)
            refused = publisher.flush()
            if refused:
                self._refusals(publisher, messages, refused)
            if changelog is not None and state:
                dumps = orjson.dumps
                for key, value, partition in state:
                    publisher.produce(changelog, value, dumps(key), None, partition)
                if publisher.flush():
                    raise OutputError("the record-state changelog was refused by the broker")

        await asyncio.get_running_loop().run_in_executor(self.io, work)

    def _refusals(
        self, publisher: BatchPublisher, sent: Sequence[OutMessage], refused: Sequence[Refused]
    ) -> None:
        """Outputs the broker refused for themselves (``streams.output.PER_MESSAGE_ERRORS``):

        1. each is sent again alone (librdkafka refuses a whole batch when one message in it
           is too large: its batch-mates are innocent);
        2. the inputs of those refused alone are dead-lettered ``output_rejected``;
        3. a dead letter refused in turn is sent again reduced (``BatchProcessor.refused``);
        4. anything refused after that raises :class:`OutputError` (the batch is not
           committed and is processed again)."""
        assert self.processor is not None
        alone: list[tuple[OutMessage, str]] = []
        for m, _error in _match(sent, refused):
            publisher.produce(m.topic, m.value, m.key, m.headers)
            again = publisher.flush()
            if again:
                alone.append((m, again[0].error))
                self.stats[f"rejected.{Reason.OUTPUT_REJECTED.value}"] += 1
        letters = self.processor.refused(alone, datetime.now(UTC))
        for _round in range(2):
            for m in letters:
                publisher.produce(m.topic, m.value, m.key, m.headers)
            refused = publisher.flush()
            if not refused:
                return
            letters = self.processor.refused(_match(letters, refused), datetime.now(UTC))
        raise OutputError(f"dead letters refused by the broker: {refused[0].error}")

    def close(self) -> None:
        if self.publisher is not None:
            self.publisher.close()
        if self.check_pool is not None:
            self.check_pool.close()
        self.pool.shutdown(wait=False)
        self.io.shutdown(wait=False)


def _match(sent: Sequence[OutMessage], refused: Sequence[Refused]) -> list[tuple[OutMessage, str]]:
    """The messages of ``sent`` that were ``refused``, with why."""
    out = []
    for r in refused:
        m = next((m for m in sent if (m.topic, m.key, m.value) == (r.topic, r.key, r.value)), None)
        if m is None:
            raise OutputError(f"a message to {r.topic} was refused: {r.error}")
        out.append((m, r.error))
    return out
