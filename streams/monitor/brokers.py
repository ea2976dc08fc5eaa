"""Broker health: replication state from the cluster metadata, and the brokers' own metrics.

- metadata (any broker answers): live brokers, each partition's leader, replicas and ISR:
  under-replicated partitions (ISR smaller than the replica set) and offline partitions
  (no leader); a broker that holds replicas but is not in the metadata is down;
- the brokers' JMX exporter endpoints (the Prometheus JMX exporter java agent that the local
  cluster, compose and Strimzi run, see ``deploy/broker/jmx-exporter.yaml``), when given:
  each broker's under-replicated, under-min-ISR and offline partition counts, ISR shrinks and
  whether it is the active controller (KRaft's clients cannot ask which node that is).

``parse_exporter`` is pure; :class:`BrokerWatcher` does the I/O.
"""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Iterable

from prometheus_client.parser import text_string_to_metric_families

from streams.monitor.kafka_io import KafkaClients
from streams.monitor.model import BrokerHealth, ClusterHealth

__all__ = ["JMX_METRICS", "BrokerWatcher", "parse_exporter", "parse_target"]

logger = logging.getLogger(__name__)

#: What the monitor keeps from each broker's exporter (names as the shipped rules make them).
JMX_METRICS = (
    "kafka_server_replicamanager_underreplicatedpartitions",
    "kafka_server_replicamanager_underminisrpartitioncount",
    "kafka_server_replicamanager_isrshrinks_total",
    "kafka_server_replicamanager_isrexpands_total",
    "kafka_server_replicamanager_leadercount",
    "kafka_controller_kafkacontroller_activecontrollercount",
    "kafka_controller_kafkacontroller_offlinepartitionscount",
)
ACTIVE_CONTROLLER = "kafka_controller_kafkacontroller_activecontrollercount"


def parse_exporter(text: str, wanted: Iterable[str] = JMX_METRICS) -> dict[str, float]:
    """The wanted unlabelled samples of one exporter's text output (sums over label sets)."""
    keep = set(wanted)
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in keep:
                out[sample.name] = out.get(sample.name, 0.0) + float(sample.value)
    return out


def parse_target(target: str, position: int) -> tuple[int, str]:
    """``"<node id>=<url>"`` or a bare URL (the node id is then its 1-based position)."""
    head, sep, url = target.partition("=")
    if sep and head.isdigit():
        return int(head), url
    return position + 1, target


class BrokerWatcher:
    """Collects :class:`ClusterHealth`; remembers every broker id it has seen (so a broker
    that went down is reported as down, not forgotten)."""

    def __init__(
        self, clients: KafkaClients, targets: Iterable[str] = (), timeout_s: float = 2.0
    ) -> None:
        self.clients = clients
        self.targets = dict(parse_target(t, i) for i, t in enumerate(targets))
        self.timeout_s = timeout_s
        self._known: set[int] = set(self.targets)

    def _scrape(self, url: str) -> dict[str, float] | None:
        try:
            with urllib.request.urlopen(url, timeout=self.timeout_s) as resp:
                return parse_exporter(resp.read().decode("utf-8", "replace"))
        except (OSError, ValueError) as exc:
            logger.info("broker metrics unreachable url=%s error=%s", url, exc)
            return None

    def collect(self) -> ClusterHealth:
        md = self.clients.metadata()
        alive = {int(b.id): f"{b.host}:{b.port}" for b in md.brokers.values()}
        leaders: dict[int, int] = {}
        replicas: dict[int, int] = {}
        total = under = offline = 0
        urp: list[str] = []
        for name, topic in sorted(md.topics.items()):
            if topic.error is not None:
                continue
            for pid, p in sorted(topic.partitions.items()):
                total += 1
                for r in p.replicas:
                    replicas[r] = replicas.get(r, 0) + 1
                if p.leader < 0:
                    offline += 1
                else:
                    leaders[p.leader] = leaders.get(p.leader, 0) + 1
                if len(p.isrs) < len(p.replicas):
                    under += 1
                    if len(urp) < 50:
                        urp.append(f"{name}[{pid}]")
        self._known |= set(alive) | set(replicas)
        scraped = {node: self._scrape(url) for node, url in self.targets.items()}
        brokers = tuple(
            BrokerHealth(
                node_id=node,
                address=alive.get(node, ""),
                alive=node in alive,
                leaders=leaders.get(node, 0),
                replicas=replicas.get(node, 0),
                jmx=scraped.get(node) or {},
                exporter_up=None if node not in scraped else scraped[node] is not None,
            )
            for node in sorted(self._known)
        )
        controllers = [b.node_id for b in brokers if b.jmx.get(ACTIVE_CONTROLLER) == 1.0]
        return ClusterHealth(
            brokers=brokers,
            partitions=total,
            under_replicated=under,
            offline=offline,
            active_controller=controllers[0] if len(controllers) == 1 else None,
            under_replicated_partitions=tuple(urp),
        )
