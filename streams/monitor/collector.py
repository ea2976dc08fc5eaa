"""Consumer lag per group/topic/partition with Burrow status, from the broker itself.

- committed offsets: AdminClient ``list_consumer_group_offsets``;
- end offsets: ``list_offsets`` (latest = the high watermark);
- lag in seconds: now − timestamp of the first unconsumed message, found with ListOffsets
  by timestamp (``KafkaClients.timestamps_at``): the monitor's principal may Describe a
  topic but not Read it, so it never sees a record; 0 when caught up, None when there is lag
  but that message is gone (retention);
- state: ``list_consumer_groups``; not ``describe_consumer_groups`` (members, owners):
  librdkafka 2.x aborts the whole process in that call when a broker connection drops
  (``rd_kafka_enq_once_del_source_return: Assertion eonce->refcnt > 0``, librdkafka #4605),
  which the replication fault tests hit; members come from the group metadata records of
  ``__consumer_offsets`` instead (:mod:`streams.monitor.offsets_log`);
- end-offset history for "recently caught up" (Burrow #290): the end offset of each
  partition at every collection, ``window`` of them, seeded on first sight from message
  timestamps at ``offset_refresh_s`` steps back (so a one-shot `tuyen lag` has one too);
- commit history for the Burrow window: every commit of every group, decoded from
  ``__consumer_offsets`` with its commit timestamp (see :mod:`streams.monitor.burrow` for why
  commits, not samples). The lag at each commit is the partition's end offset at that time
  (the first offset whose message timestamp is later than the commit, from
  ``list_offsets(for_timestamp)``; the current end when no message is later) minus the
  committed offset. Burrow approximates the same quantity with its last broker-offset poll.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import TopicPartition

from schemas.kafka import consumer
from streams.monitor.burrow import Commit, Status, evaluate_partition, group_complete, group_status
from streams.monitor.config import MonitorConfig
from streams.monitor.exceptions import BrokerQueryError
from streams.monitor.kafka_io import TP, KafkaClients, now_ms
from streams.monitor.model import GroupLag, PartitionLag
from streams.monitor.offsets_log import GroupMembers, decode_group_metadata, decode_offset_commit

__all__ = ["CommitLog", "EndHistory", "GroupInfo", "LagCollector"]

logger = logging.getLogger(__name__)

OFFSETS_TOPIC = "__consumer_offsets"
GTP = tuple[str, str, int]
GTP_MS = tuple[str, int, int]  # (topic, partition, ms or offset)


def _rounds(values: dict[TP, set[int]]) -> list[dict[TP, int]]:
    """Split many values per partition into requests that name each partition once."""
    lists = {tp: sorted(v) for tp, v in values.items() if v}
    depth = max((len(v) for v in lists.values()), default=0)
    return [{tp: v[i] for tp, v in lists.items() if i < len(v)} for i in range(depth)]


@dataclass(frozen=True, slots=True)
class _RawCommit:
    offset: int
    timestamp_ms: int


class CommitLog:
    """The last ``window`` commits per (group, topic, partition), tailed from __consumer_offsets.

    The first :meth:`catch_up` reads the (compacted) topic from its beginning, so a group that
    stopped long ago still has its last commit; later calls read only what is new.
    """

    def __init__(self, clients: KafkaClients, window: int, read_seconds: float = 10.0) -> None:
        self._clients = clients
        self._window = window
        self._read_seconds = read_seconds
        self._positions: dict[TP, int] = {}
        self._commits: dict[GTP, deque[_RawCommit]] = {}
        self.members: dict[str, GroupMembers] = {}  # classic groups' latest metadata

    def catch_up(self) -> int:
        """Read new commits up to the current end of the topic; returns how many were read."""
        tps = self._clients.partitions([OFFSETS_TOPIC])
        ends = self._clients.end_offsets(tps)
        missing = [tp for tp in tps if tp not in self._positions]
        self._positions.update(self._clients.start_offsets(missing))
        count = 0
        for msg in self._clients.read(dict(self._positions), ends, self._read_seconds):
            tp = (msg.topic() or "", msg.partition() or 0)
            self._positions[tp] = (msg.offset() or 0) + 1
            try:
                rec = decode_offset_commit(msg.key(), msg.value())
                meta = decode_group_metadata(msg.key(), msg.value()) if rec is None else None
            except ValueError as exc:
                logger.warning("undecodable offsets record partition=%s error=%s", tp[1], exc)
                continue
            if meta is not None:
                self.members[meta.group] = meta
            if rec is None:
                continue
            key = (rec.group, rec.topic, rec.partition)
            if rec.offset is None or rec.commit_timestamp_ms is None:  # tombstone
                self._commits.pop(key, None)
                continue
            window = self._commits.setdefault(key, deque(maxlen=self._window))
            window.append(_RawCommit(rec.offset, rec.commit_timestamp_ms))
            count += 1
        for tp, end in ends.items():  # past transaction markers we are not handed
            self._positions[tp] = max(self._positions.get(tp, 0), end)
        return count

    def commits(self, group: str, topic: str, partition: int) -> list[_RawCommit]:
        return list(self._commits.get((group, topic, partition), ()))

    def partitions_of(self, group: str) -> list[TP]:
        """Every (topic, partition) the group has a live commit for."""
        return sorted((t, p) for g, t, p in self._commits if g == group)


@dataclass(frozen=True, slots=True)
class GroupInfo:
    """What the broker says about a group: state, members, who owns which partition."""

    state: str
    members: int | None = None
    owners: dict[TP, tuple[str, str]] | None = None  # (host, client id)


class EndHistory:
    """The last ``size`` end offsets of each partition (Burrow's broker-offset ring), one per
    :meth:`record` call; a partition seen for the first time is seeded with its end offsets
    at ``step_ms`` intervals back in time, from message timestamps."""

    def __init__(self, clients: KafkaClients, size: int, step_ms: int) -> None:
        self._clients = clients
        self._size = size
        self._step_ms = step_ms
        self._ends: dict[TP, deque[int]] = {}

    def record(self, ends: dict[TP, int], now: int) -> None:
        new = [tp for tp in ends if tp not in self._ends]
        if new and self._size > 1:
            stamps = {tp: {now - k * self._step_ms for k in range(1, self._size)} for tp in new}
            for batch in _rounds(stamps):
                for tp, offset in self._clients.offsets_after(batch).items():
                    ring = self._ends.setdefault(tp, deque(maxlen=self._size))
                    ring.append(offset if offset >= 0 else ends[tp])
        for tp, end in ends.items():
            ring = self._ends.setdefault(tp, deque(maxlen=self._size))
            ring.append(end)

    def of(self, tp: TP) -> list[int]:
        return list(self._ends.get(tp, ()))


class LagCollector:
    """Lag and status of the watched groups. ``clock`` returns ms (inject one in tests)."""

    def __init__(
        self,
        config: MonitorConfig,
        clients: KafkaClients | None = None,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.config = config
        self.clients = clients or KafkaClients(config.kafka, config.request_timeout_s)
        self.clock = clock
        self.log = CommitLog(self.clients, config.window, config.request_timeout_s)
        self.history = EndHistory(self.clients, config.window, int(config.offset_refresh_s * 1000))
        self._end_at: dict[GTP_MS, int] = {}  # (topic, partition, ms) → end offset then

    def close(self) -> None:
        self.clients.close()

    # -- discovery -----------------------------------------------------------------------
    def groups(self) -> dict[str, GroupInfo]:
        """Watched group names → what the broker says about them (every group unless filtered
        by name or prefix). A group named in the config that the broker does not know is
        left out (the caller reports it NOTFOUND)."""
        try:
            listing = self.clients.admin.list_consumer_groups(
                request_timeout=self.config.request_timeout_s
            ).result(timeout=self.config.request_timeout_s)
        except Exception as exc:
            raise BrokerQueryError(f"list_consumer_groups failed: {exc}") from exc
        found: dict[str, GroupInfo] = {}
        for g in listing.valid:
            name = str(g.group_id)
            if self.config.groups and name not in self.config.groups:
                continue
            if not name.startswith(self.config.group_prefix):
                continue
            if name.startswith("_") and not self.config.include_internal:
                continue
            state = g.state.name if g.state is not None else "UNKNOWN"
            meta = self.log.members.get(name)
            if meta is not None and meta.members is not None:
                found[name] = GroupInfo(state, len(meta.members), meta.owners)
            else:
                found[name] = GroupInfo(state)
        return found

    def committed(self, groups: list[str]) -> dict[str, dict[TP, int]]:
        """Committed offsets per group (partitions without a commit are left out).

        The partitions come from the commit log; the offsets from ``Consumer.committed``
        with the group's id (no subscribe, so it never joins the group). Not
        ``AdminClient.list_consumer_group_offsets``: librdkafka 2.16 segfaults there while the
        group coordinator is still loading (a fresh or just restarted broker).
        """
        result: dict[str, dict[TP, int]] = {}
        for g in groups:
            tps = self.log.partitions_of(g)
            if not tps:
                result[g] = {}
                continue
            reader = consumer(self.config.kafka, {"group.id": g, "enable.auto.commit": False})
            try:
                got = reader.committed(
                    [TopicPartition(t, p) for t, p in tps], timeout=self.config.request_timeout_s
                )
            except Exception as exc:
                raise BrokerQueryError(f"committed offsets of {g} failed: {exc}") from exc
            finally:
                reader.close()
            result[g] = {
                (tp.topic, tp.partition): int(tp.offset)
                for tp in got
                if tp.error is None and tp.offset >= 0
            }
        return result

    # -- lag at commit times -------------------------------------------------------------
    def _ends_at(self, wanted: dict[TP, set[int]], ends_now: dict[TP, int]) -> dict[GTP_MS, int]:
        """End offset of each partition at each commit time (ms): one request per round."""
        found: dict[GTP_MS, int] = {}
        todo = {
            tp: {ms for ms in stamps if (tp[0], tp[1], ms) not in self._end_at}
            for tp, stamps in wanted.items()
        }
        for batch in _rounds(todo):
            for (t, p), offset in self.clients.offsets_after(batch).items():
                ms = batch[(t, p)]
                if offset >= 0:  # a later message exists: this end can no longer change
                    self._end_at[(t, p, ms)] = offset
                else:
                    found[(t, p, ms)] = ends_now.get((t, p), 0)
        for tp, stamps in wanted.items():
            for ms in stamps:
                key = (tp[0], tp[1], ms)
                if key in self._end_at:
                    found[key] = self._end_at[key]
        # keep only what the current windows still need (a long-running monitor)
        self._end_at = {k: v for k, v in self._end_at.items() if k[2] in wanted.get(k[:2], ())}
        return found

    def _lag_seconds(self, wanted: dict[TP, set[int]], ends: dict[TP, int]) -> dict[GTP_MS, float]:
        """now − timestamp of the first unconsumed message, per (partition, committed offset);
        positions whose message could not be read in time are left out."""
        out: dict[GTP_MS, float] = {}
        lagging = {tp: {o for o in offs if o < ends.get(tp, 0)} for tp, offs in wanted.items()}
        for batch in _rounds(lagging):
            now = self.clock()
            for tp, ts in self.clients.timestamps_at(batch).items():
                if ts > 0:
                    out[(tp[0], tp[1], batch[tp])] = max(0.0, (now - ts) / 1000)
        return out

    # -- the whole picture ---------------------------------------------------------------
    def collect(self) -> tuple[GroupLag, ...]:
        """Every watched group with its partitions' offsets, lags and statuses; a group named
        in the config that the broker does not know, or one without any committed offset,
        is NOTFOUND (Burrow: "cluster or consumer not found")."""
        self.log.catch_up()
        infos = self.groups()
        committed = self.committed(sorted(infos))
        tps = {tp for offsets in committed.values() for tp in offsets}
        ends = self.clients.end_offsets(tps)
        commit_times: dict[TP, set[int]] = {}
        committed_offsets: dict[TP, set[int]] = {}
        for g, offsets in committed.items():
            for (t, p), off in offsets.items():
                committed_offsets.setdefault((t, p), set()).add(off)
                stamps = commit_times.setdefault((t, p), set())
                stamps.update(c.timestamp_ms for c in self.log.commits(g, t, p))
        ends_then = self._ends_at(commit_times, ends)
        lag_secs = self._lag_seconds(committed_offsets, ends)
        now = self.clock()
        self.history.record(ends, now)

        groups = [
            self._group(g, infos[g], committed.get(g, {}), ends, ends_then, lag_secs, now)
            for g in sorted(infos)
        ]
        for name in self.config.groups:
            if name not in infos:
                groups.append(GroupLag(name, "NOTFOUND", Status.NOTFOUND, ()))
        return tuple(sorted(groups, key=lambda g: g.group))

    def _group(
        self,
        g: str,
        info: GroupInfo,
        committed: dict[TP, int],
        ends: dict[TP, int],
        ends_then: dict[GTP_MS, int],
        lag_secs: dict[GTP_MS, float],
        now: int,
    ) -> GroupLag:
        parts: list[PartitionLag] = []
        owners = info.owners or {}
        for (t, p), off in sorted(committed.items()):
            end = ends.get((t, p), off)
            window = [
                Commit(
                    c.offset,
                    c.timestamp_ms,
                    _lag_then(ends_then.get((t, p, c.timestamp_ms)), c.offset),
                )
                for c in self.log.commits(g, t, p)
            ][-self.config.window :]
            lag = max(0, end - off)
            verdict = evaluate_partition(
                window,
                lag,
                now,
                broker_offsets=self.history.of((t, p)),
                window=self.config.window,
                allowed_lag=self.config.allowed_lag,
                min_complete=self.config.min_complete,
            )
            host, client = owners.get((t, p), ("", ""))
            parts.append(
                PartitionLag(
                    topic=t,
                    partition=p,
                    committed=off,
                    end_offset=end,
                    lag=lag,
                    lag_seconds=lag_secs.get((t, p, off)) if lag else 0.0,
                    status=verdict.status,
                    complete=verdict.complete,
                    commits=len(window),
                    last_commit_ms=window[-1].timestamp_ms if window else None,
                    start=window[0] if window else None,
                    end=window[-1] if window else None,
                    owner=host,
                    client_id=client,
                )
            )
        if not parts:
            return GroupLag(g, info.state, Status.NOTFOUND, (), info.members, 0.0)
        status = group_status(p.status for p in parts)
        complete = group_complete([p.complete for p in parts])
        return GroupLag(g, info.state, status, tuple(parts), info.members, complete)


def _lag_then(end_then: int | None, offset: int) -> int | None:
    """The lag at a commit: end offset then − committed offset (≥ 0; None: end unknown)."""
    return None if end_then is None else max(0, end_then - offset)
