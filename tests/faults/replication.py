"""Replication fault runs on the shared three-broker cluster: a `tuyen monitor serve` process
watching the run (its /api/status polled every second into a timeline), how to find the
node to hit (leader of the busiest partitions, the active controller), and one run shape:
publish, caught up → fault, publish through it → recover → publish → caught up → the
monitor clears.

The monitor runs as its own process, as operators run it, so what the tests read is what an
operator would have seen; it also keeps a crash of a client library out of pytest.
"""

from __future__ import annotations

import itertools
import logging
import os
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import TopicPartition

from deploy.broker.cluster import LocalCluster
from deploy.broker.local import free_port
from deploy.pipeline import tuyen_executable
from schemas.kafka import KafkaConnection, admin, consumer
from schemas.topics import TIER_DISTRICT, topic_name
from streams.monitor.brokers import ACTIVE_CONTROLLER, parse_exporter
from tests.faults.checks import FaultResult, finish
from tests.faults.pipeline import FaultPipeline, start_run
from tests.faults.traffic import Expectation, Outgoing, from_sim, phases, simulated
from tests.helpers import wait_until

__all__ = [
    "Fault",
    "MonitorWatch",
    "active_controller",
    "busiest_leader",
    "cluster_whole",
    "nothing_to_recover",
    "rolling_restart",
]

logger = logging.getLogger(__name__)


@dataclass
class MonitorWatch:
    """`tuyen monitor serve` for one run's prefix, and the timeline of what it showed."""

    cluster: LocalCluster
    prefix: str
    log: Path
    timeline: list[dict[str, Any]] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    port: int = 0

    def start(self) -> None:
        state = self.cluster.state()
        assert state is not None
        self.port = free_port()
        metrics = [
            a for n in state.nodes for a in ("--broker-metrics", f"{n.node_id}={n.metrics_url}")
        ]
        env = {**os.environ, "TUYEN_TOPIC_PREFIX": self.prefix, "TUYEN_LOG_LEVEL": "WARNING"}
        argv = [
            tuyen_executable(),
            "monitor",
            "serve",
            "--port",
            str(self.port),
            "--interval",
            "1",
            "--bootstrap",
            state.bootstrap,
            *metrics,
        ]
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._thread = threading.Thread(target=self._poll, name="monitor-watch", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        url = f"http://127.0.0.1:{self.port}/api/status"
        last = None
        while not self._stop.wait(1.0):
            try:
                with urllib.request.urlopen(url, timeout=3) as resp:
                    doc = orjson.loads(resp.read())
            except (OSError, ValueError):
                continue
            if doc.get("taken_ms") in (None, last):
                continue
            last = doc["taken_ms"]
            self.timeline.append(summarise(doc, time.monotonic()))

    def latest(self) -> dict[str, Any] | None:
        return self.timeline[-1] if self.timeline else None

    def since(self, t: float) -> list[dict[str, Any]]:
        return [s for s in self.timeline if s["t"] >= t]

    def between(self, t0: float, t1: float) -> list[dict[str, Any]]:
        return [s for s in self.timeline if t0 <= s["t"] <= t1]

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def summarise(doc: dict[str, Any], t: float) -> dict[str, Any]:
    """What one /api/status said, in the terms the fault report uses."""
    groups = doc.get("groups", [])
    cluster = doc.get("cluster") or {}
    brokers = cluster.get("brokers", [])
    ages = [g["max_lag_seconds"] for g in groups if g.get("max_lag_seconds") is not None]
    fresh = (doc.get("health") or {}).get("freshness", {})
    return {
        "t": t,
        "urp": cluster.get("under_replicated", 0),
        "offline": cluster.get("offline", 0),
        "alive": sum(1 for b in brokers if b.get("alive")),
        "jmx_urp": sum(
            b["jmx"].get("kafka_server_replicamanager_underreplicatedpartitions", 0)
            for b in brokers
        ),
        "isr_shrinks": sum(
            b["jmx"].get("kafka_server_replicamanager_isrshrinks_total", 0) for b in brokers
        ),
        "controller": cluster.get("active_controller"),
        "lag": sum(g.get("total_lag", 0) for g in groups),
        "lag_s": max(ages, default=0.0),
        "statuses": {g["group"]: g["status"] for g in groups},
        "fresh_p95": {k: v["p95"] for k, v in fresh.items() if v.get("count")},
    }


def tier_delays(kafka: KafkaConnection, topic: str, sent_ms: dict[str, int]) -> dict[str, float]:
    """Event id → seconds from the station's publish (raw message timestamp) to the record
    on ``topic`` (its message timestamp): what a fault adds to freshness, independent of how
    old the simulated events' own times are."""
    c = consumer(kafka, {"group.id": "tuyen-probe"})
    out: dict[str, float] = {}
    try:
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
        c.assign([TopicPartition(topic, p, 0) for p in parts])
        left = {p for p, e in ends.items() if e > 0}
        deadline = time.monotonic() + 60
        while left and time.monotonic() < deadline:
            for msg in c.consume(500, timeout=0.5):
                if msg.error() is not None:
                    continue
                p = msg.partition() or 0
                if (msg.offset() or 0) + 1 >= ends[p]:
                    left.discard(p)
                raw = dict(msg.headers() or []).get("ce_id")
                eid = raw.decode() if isinstance(raw, bytes) else None
                sent = sent_ms.get(eid) if eid is not None else None
                if eid is not None and sent is not None:
                    out[eid] = max(0.0, (msg.timestamp()[1] - sent) / 1000)
    finally:
        c.close()
    return out


def delay_summary(delays: list[float]) -> dict[str, float | int]:
    s = sorted(delays)
    if not s:
        return {"n": 0}
    return {
        "n": len(s),
        "p50": round(s[len(s) // 2], 2),
        "p95": round(s[min(len(s) - 1, int(len(s) * 0.95))], 2),
        "max": round(s[-1], 2),
    }


def busiest_leader(kafka: KafkaConnection, topic: str) -> tuple[int, list[int]]:
    """The broker leading the most-written partitions of ``topic`` (by end offset) and those
    partitions."""
    md = admin(kafka).list_topics(topic, timeout=10).topics[topic]
    c = consumer(kafka, {"group.id": "tuyen-probe"})
    try:
        ends = {
            p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in md.partitions
        }
    finally:
        c.close()
    top = max(ends.values())
    busiest = sorted(p for p, e in ends.items() if e == top)
    return md.partitions[busiest[0]].leader, busiest


def active_controller(cluster: LocalCluster) -> int:
    """The node whose JMX exporter says it is the active controller (KRaft's clients cannot
    ask which node that is)."""
    state = cluster.state()
    assert state is not None

    def find() -> int | None:
        for n in state.nodes:
            try:
                with urllib.request.urlopen(n.metrics_url, timeout=3) as resp:
                    values = parse_exporter(resp.read().decode())
            except OSError:
                continue
            if values.get(ACTIVE_CONTROLLER) == 1.0:
                return n.node_id
        return None

    return wait_until(find, timeout=30, interval=0.5, message="an active controller")


def cluster_whole(cluster: LocalCluster, timeout_s: float = 90.0) -> None:
    """Wait until every node runs and no partition is under-replicated (metadata)."""
    state = cluster.state()
    assert state is not None
    for n in state.nodes:
        cluster.start_node(n.node_id, wait=False)
    client = admin(state.kafka)

    def whole() -> bool:
        try:
            md = client.list_topics(timeout=5)
        except Exception:
            return False
        if len(md.brokers) < state.brokers:
            return False
        return all(
            len(p.isrs) == len(p.replicas) and p.leader >= 0
            for t in md.topics.values()
            for p in t.partitions.values()
        )

    wait_until(whole, timeout=timeout_s, interval=0.5, message="cluster whole again")


@dataclass
class Fault:
    """One fault: ``inject`` (returns what it hit), ``until`` (the condition, on the monitor's
    timeline, that shows the fault took effect) and ``recover``."""

    name: str
    inject: Callable[[LocalCluster, FaultPipeline], dict[str, Any]]
    recover: Callable[[LocalCluster, dict[str, Any]], None]
    shown: Callable[[dict[str, Any]], bool] = lambda s: s["urp"] > 0 or s["jmx_urp"] > 0


class ReplicationRun:
    """One pipeline (stream worker, five sinks, a monitor process) on the shared cluster that
    goes through several faults in turn, so the pipeline starts once. The traffic is one
    simulation cut into three phases per fault; the stores are checked after each fault
    against everything published so far."""

    def __init__(
        self, cluster: LocalCluster, factory: Any, artifacts: Path, faults: int, seed: int = 21
    ) -> None:
        state = cluster.state()
        assert state is not None
        self.cluster = cluster
        self.kafka = state.kafka
        self.brokers = state.brokers
        self.artifacts = artifacts
        start = date.today() - timedelta(days=6)
        events, _ = simulated(seed, start=start, days=5, n_stations=5, bad_fraction=0.02)
        cut = phases([from_sim(e) for e in events], *([1 / (3 * faults)] * (3 * faults - 1)))
        self._phases = [cut[3 * k : 3 * k + 3] for k in range(faults)]
        self.exp = Expectation()
        # a worker whose output flush times out while a broker is frozen exits and is
        # restarted by its supervisor in production: so here (counted, and reported)
        self.fp = start_run(self.kafka, factory, "replication", restarts=3)
        self.watch = MonitorWatch(cluster, self.fp.prefix, self.fp.tmp / "logs" / "monitor.log")
        self.done = 0
        self.broken: str | None = None

    def start(self) -> None:
        cluster_whole(self.cluster)
        self.watch.start()
        self.fp.start()

    def stop(self) -> None:
        self.watch.stop()
        self.fp.stop()
        cluster_whole(self.cluster)

    def run(self, fault: Fault) -> FaultResult:
        """The next fault: its traffic in three phases around it; the checked result with
        what the monitor showed (docs/operators.md, "Replication faults, measured")."""
        assert self.broken is None, f"an earlier fault broke the run: {self.broken}"
        before, during, after = self._phases[self.done]
        self.done += 1
        try:
            return self._run(fault, before, during, after)
        except BaseException as exc:
            self.broken = f"{fault.name}: {exc!r}"[:500]
            raise

    def _run(
        self,
        fault: Fault,
        before: list[Outgoing],
        during: list[Outgoing],
        after: list[Outgoing],
    ) -> FaultResult:
        cluster, fp, watch = self.cluster, self.fp, self.watch
        for part in (before, during, after):
            self.exp.add(part)
        cluster_whole(cluster)
        fp.publisher.send(before)
        fp.publisher.flush()
        fp.wait_caught_up(timeout_s=240)  # steady state: what follows is the fault's doing
        baseline = watch.latest() or {}
        # a group without any committed offset is NOTFOUND (Burrow) and stays so; a tuyen
        # sink commits its start when assigned (sinks.consumer), so even an idle one (the
        # signoff sink before any decision) is OK: this set is for other consumers
        idle = {g for g, v in baseline.get("statuses", {}).items() if v == "NOTFOUND"}
        injected_at = time.monotonic()
        # stations publish through the fault (acks=all: written, or queued until writable)
        sender = threading.Thread(target=fp.publisher.send, args=(during,), daemon=True)
        sender.start()
        hit = fault.inject(cluster, fp)
        sender.join(300)
        shown = wait_until(
            lambda: next((s for s in watch.since(injected_at) if fault.shown(s)), None),
            timeout=90,
            interval=0.5,
            message=lambda: f"the monitor showing {fault.name}: {watch.timeline[-3:]}",
        )
        fault.recover(cluster, hit)
        recovered_at = time.monotonic()
        fp.publisher.send(after)
        fp.publisher.flush()
        fp.wait_caught_up(timeout_s=240)
        caught_up_at = time.monotonic()
        cluster_whole(cluster)

        def clear() -> dict[str, Any] | None:
            s = watch.latest()
            ok = (
                s is not None
                and s["t"] > caught_up_at
                and s["urp"] == 0
                and s["offline"] == 0
                and s["jmx_urp"] == 0
                and s["alive"] == self.brokers
                and all(v == "OK" or g in idle for g, v in s["statuses"].items())
            )
            return s if ok else None

        cleared = wait_until(
            clear, timeout=90, interval=0.5, message=lambda: f"monitor clear: {watch.latest()}"
        )
        during_fault = watch.between(injected_at, recovered_at + 1)
        window = watch.between(injected_at, caught_up_at)
        delays = tier_delays(self.kafka, topic_name(TIER_DISTRICT, fp.prefix), fp.publisher.sent_ms)
        measured = {
            "fault": fault.name,
            "hit": hit,
            "published": {"before": len(before), "during": len(during), "after": len(after)},
            "baseline": {k: baseline.get(k) for k in ("lag", "lag_s", "fresh_p95")},
            "shown_after_s": round(shown["t"] - injected_at, 1),
            "fault_s": round(recovered_at - injected_at, 1),
            "caught_up_after_recovery_s": round(caught_up_at - recovered_at, 1),
            "cleared_after_recovery_s": round(cleared["t"] - recovered_at, 1),
            "urp_max": max((s["urp"] for s in during_fault), default=0),
            "jmx_urp_max": max((s["jmx_urp"] for s in during_fault), default=0),
            "offline_max": max((s["offline"] for s in window), default=0),
            # counters restart with their broker: add up the increases between snapshots
            "isr_shrinks": sum(
                max(0.0, b["isr_shrinks"] - a["isr_shrinks"])
                for a, b in itertools.pairwise(watch.between(injected_at, cleared["t"]))
            ),
            "lag_max": max((s["lag"] for s in window), default=0),
            "lag_seconds_max": round(max((s["lag_s"] for s in window), default=0.0), 1),
            "statuses_seen": sorted({v for s in window for v in s["statuses"].values()}),
            "monitor_snapshots": len(watch.timeline),
            "monitor_exit": watch.proc.poll() if watch.proc is not None else None,
            "supervised_restarts": dict(fp.pipeline.restarted),
            "publish_to_tier_s": {
                phase: delay_summary([delays[o.label] for o in items if o.label in delays])
                for phase, items in (("before", before), ("during", during), ("after", after))
            },
        }
        return finish(fp, self.exp, self.artifacts, f"replication_{fault.name}", measured)


def rolling_restart(cluster: LocalCluster, fp: FaultPipeline) -> dict[str, Any]:
    """SIGTERM each node in turn (controlled shutdown), start it again, wait until the cluster
    is whole, then the next, as an upgrade does it (stations publish meanwhile: the run sends
    the fault phase's traffic from another thread). Runs in the test's main thread: the nodes
    are tied to the thread that starts them (PR_SET_PDEATHSIG)."""
    state = cluster.state()
    assert state is not None
    order = [n.node_id for n in state.nodes]
    for node in order:
        cluster.stop_node(node)
        cluster.start_node(node)
        cluster_whole(cluster)
    return {"nodes": order}


def nothing_to_recover(cluster: LocalCluster, hit: dict[str, Any]) -> None:
    """The fault recovered by itself (a rolling restart ends whole)."""
