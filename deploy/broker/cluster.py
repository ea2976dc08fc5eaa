"""A local multi-node Apache Kafka cluster (KRaft) on loopback, from the same cached jars.

Default layout: ``size`` combined broker+controller nodes (the controller quorum is every
node), each with its own broker, controller and JMX exporter port and its own data folder.
``dedicated_controllers=True`` runs 3 controller-only nodes beside ``size`` broker-only
nodes instead (what production does; measured in docs/operators.md).

State (``cluster.json`` in the state folder) records each node's pid and ports, so `tuyen
broker down` stops exactly the processes it started and a restart reuses the ports the data
was formatted with. Node-level operations (:meth:`kill`, :meth:`stop_node`, :meth:`pause`,
:meth:`resume`, :meth:`start_node`) are what the replication fault tests use.
"""

from __future__ import annotations

import base64
import logging
import os
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import orjson

from deploy.broker.config import (
    PLAINTEXT,
    ListenerSettings,
    NodeSpec,
    server_properties,
    write_properties,
)
from deploy.broker.jars import KAFKA_VERSION, ensure_jars, ensure_jmx_agent
from deploy.broker.local import (
    _die_with_parent,
    _port_free,
    format_command,
    free_port,
    java_executable,
    kill_pid,
    node_command,
    pid_alive,
    stop_pid,
    write_log_config,
)
from deploy.broker.secure import BrokerSecurity
from deploy.exceptions import BrokerError, BrokerUnavailable
from schemas.kafka import KafkaConnection, admin

__all__ = ["ClusterNode", "ClusterState", "LocalCluster"]

logger = logging.getLogger(__name__)

_STATE = "cluster.json"


@dataclass(frozen=True, slots=True)
class ClusterNode:
    """One node of the cluster as started: ports (None where the role is absent) and pid."""

    node_id: int
    broker_port: int | None
    controller_port: int | None
    jmx_port: int
    pid: int = 0

    @property
    def is_broker(self) -> bool:
        return self.broker_port is not None

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.jmx_port}/metrics"


@dataclass(frozen=True, slots=True)
class ClusterState:
    """What a started cluster left in its state folder."""

    cluster_id: str
    nodes: tuple[ClusterNode, ...]
    version: str
    started_at: float
    secured: bool = False

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{n.broker_port}" for n in self.nodes if n.is_broker)

    @property
    def kafka(self) -> KafkaConnection:
        """The connection to a PLAINTEXT cluster (a secured one: ``LocalCluster.kafka``)."""
        if self.secured:
            raise BrokerError("a secured cluster: connect through LocalCluster.kafka")
        return KafkaConnection(bootstrap=self.bootstrap)

    @property
    def brokers(self) -> int:
        return sum(1 for n in self.nodes if n.is_broker)

    def node(self, node_id: int) -> ClusterNode:
        for n in self.nodes:
            if n.node_id == node_id:
                return n
        raise KeyError(node_id)

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: bytes) -> ClusterState:
        doc = orjson.loads(raw)
        nodes = tuple(ClusterNode(**n) for n in doc.pop("nodes"))
        return cls(nodes=nodes, **doc)


class LocalCluster:
    """A KRaft cluster whose files live under ``state_dir``."""

    def __init__(
        self,
        state_dir: Path,
        cache_dir: Path,
        *,
        size: int = 3,
        dedicated_controllers: bool = False,
        heap: str = "512m",
        listeners: ListenerSettings = PLAINTEXT,
        security: BrokerSecurity | None = None,
    ) -> None:
        if size < 1:
            raise BrokerError("a cluster needs at least one broker")
        self.state_dir = state_dir
        self.cache_dir = cache_dir
        self.size = size
        self.dedicated_controllers = dedicated_controllers
        self.heap = heap
        self.security = security
        self.listeners = security.listeners() if security is not None else listeners
        self._procs: dict[int, subprocess.Popen[bytes]] = {}
        self._tie = False

    # -- files ------------------------------------------------------------------------
    def _node_dir(self, node_id: int) -> Path:
        return self.state_dir / f"node-{node_id}"

    def log_path(self, node_id: int) -> Path:
        return self._node_dir(node_id) / "broker.log"

    def _read_state(self) -> ClusterState | None:
        path = self.state_dir / _STATE
        return ClusterState.from_json(path.read_bytes()) if path.exists() else None

    def _write_state(self, state: ClusterState) -> None:
        (self.state_dir / _STATE).write_bytes(state.to_json())

    def state(self) -> ClusterState | None:
        """The cluster's state when at least one of its nodes runs, else None."""
        st = self._read_state()
        if st is None:
            return None
        if any(self._running(n) for n in st.nodes):
            return st
        return None

    @property
    def kafka(self) -> KafkaConnection:
        """The connection to the running cluster (:class:`BrokerError` when none runs): as
        admin when it is secured."""
        st = self.state()
        if st is None:
            raise BrokerError(f"no local cluster runs in {self.state_dir}")
        return self._connection(st)

    def _connection(self, st: ClusterState) -> KafkaConnection:
        if self.security is None:
            return KafkaConnection(bootstrap=st.bootstrap)
        return self.security.connection(st.bootstrap)

    def _running(self, node: ClusterNode) -> bool:
        props = str(self._node_dir(node.node_id) / "server.properties")
        if not node.pid or not pid_alive(node.pid):
            return False
        try:
            cmdline = Path(f"/proc/{node.pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return False
        return props in cmdline

    def log_tail(self, node_id: int, lines: int = 30) -> str:
        try:
            text = self.log_path(node_id).read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    # -- layout -----------------------------------------------------------------------
    def _layout(self) -> tuple[ClusterNode, ...]:
        """Fresh ports for every node (ids 1..n; dedicated controllers first)."""
        nodes: list[ClusterNode] = []
        if self.dedicated_controllers:
            for i in range(3):
                nodes.append(ClusterNode(i + 1, None, free_port(), free_port()))
            for i in range(self.size):
                nodes.append(ClusterNode(i + 4, free_port(), None, free_port()))
        else:
            for i in range(self.size):
                nodes.append(ClusterNode(i + 1, free_port(), free_port(), free_port()))
        return tuple(nodes)

    def _spec(self, n: ClusterNode) -> NodeSpec:
        return NodeSpec(
            n.node_id, n.broker_port, n.controller_port, self._node_dir(n.node_id) / "data"
        )

    def _write_configs(self, nodes: tuple[ClusterNode, ...]) -> None:
        controllers = [self._spec(n) for n in nodes if n.controller_port is not None]
        brokers = sum(1 for n in nodes if n.is_broker)
        for n in nodes:
            folder = self._node_dir(n.node_id)
            folder.mkdir(parents=True, exist_ok=True)
            props = server_properties(
                self._spec(n), controllers, brokers=brokers, listeners=self.listeners
            )
            write_properties(folder / "server.properties", props)
            write_log_config(folder)

    def _reusable(self, st: ClusterState | None) -> bool:
        if st is None:
            return False
        ports = [p for n in st.nodes for p in (n.broker_port, n.controller_port, n.jmx_port) if p]
        formatted = all(
            (self._node_dir(n.node_id) / "data" / "meta.properties").exists() for n in st.nodes
        )
        same = st.secured == (self.security is not None)
        return same and formatted and all(_port_free(p) for p in ports)

    # -- lifecycle --------------------------------------------------------------------
    def start(self, *, deadline_s: float = 120.0, tie_to_parent: bool = False) -> ClusterState:
        """Start every node (or return the running cluster) and wait until every broker is in
        the metadata."""
        running = self.state()
        if running is not None:
            return running
        self._tie = tie_to_parent
        self.state_dir.mkdir(parents=True, exist_ok=True)
        libs = ensure_jars(self.cache_dir)
        ensure_jmx_agent(self.cache_dir)
        previous = self._read_state()
        if self._reusable(previous) and previous is not None:
            nodes, cluster_id = previous.nodes, previous.cluster_id
            self._write_configs(nodes)
        else:
            for child in self.state_dir.glob("node-*"):
                shutil.rmtree(child, ignore_errors=True)
            nodes = self._layout()
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            self._write_configs(nodes)
            for n in nodes:
                self._format(libs, cluster_id, n.node_id)
        state = ClusterState(
            cluster_id, nodes, KAFKA_VERSION, time.time(), secured=self.security is not None
        )
        self._write_state(state)
        started = time.monotonic()
        for n in nodes:
            self.start_node(n.node_id, wait=False)
        state = self._read_state() or state
        self.wait_brokers(state.brokers, deadline_s - (time.monotonic() - started))
        logger.info(
            "local kafka cluster ready bootstrap=%s nodes=%d seconds=%.1f",
            state.bootstrap,
            len(nodes),
            time.monotonic() - started,
        )
        return state

    def _format(self, libs: Path, cluster_id: str, node_id: int) -> None:
        props = self._node_dir(node_id) / "server.properties"
        extra = self.security.format_args() if self.security else []
        cmd = format_command(java_executable(), libs, cluster_id, props, extra)
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if proc.returncode != 0:
            raise BrokerError(f"formatting node {node_id} failed:\n{proc.stdout}\n{proc.stderr}")

    def start_node(self, node_id: int, *, wait: bool = True, deadline_s: float = 90.0) -> None:
        """Start one node of the cluster (after a kill or a stop) with its data and ports."""
        st = self._read_state()
        if st is None:
            raise BrokerError("the cluster was never started here")
        n = st.node(node_id)
        if self._running(n):
            return
        folder = self._node_dir(node_id)
        cmd = node_command(
            java_executable(),
            ensure_jars(self.cache_dir),
            folder,
            folder / "server.properties",
            self.heap,
            jmx_agent=ensure_jmx_agent(self.cache_dir),
            jmx_port=n.jmx_port,
        )
        with self.log_path(node_id).open("ab") as log:
            proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=folder,
                start_new_session=True,
                preexec_fn=_die_with_parent if self._tie else None,
            )
        self._procs[node_id] = proc
        nodes = tuple(replace(x, pid=proc.pid) if x.node_id == node_id else x for x in st.nodes)
        self._write_state(replace(st, nodes=nodes))
        if wait:
            self.wait_brokers(st.brokers, deadline_s)

    def wait_brokers(self, count: int, deadline_s: float = 90.0) -> None:
        """Wait until ``count`` brokers are in the cluster metadata (a node that died while
        starting fails the wait with its log tail)."""
        st = self._read_state()
        assert st is not None
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            for node_id, proc in self._procs.items():
                if proc.poll() is not None and proc.returncode not in (0, -9, -15):
                    raise BrokerError(
                        f"kafka node {node_id} exited with {proc.returncode}; log tail:\n"
                        f"{self.log_tail(node_id)}"
                    )
            if self.live_brokers(self._connection(st)) >= count:
                return
            time.sleep(0.2)  # waiting for external processes: the metadata is the condition
        raise BrokerUnavailable(
            f"local Kafka cluster: fewer than {count} brokers within {deadline_s:.0f}s; "
            + "; ".join(f"node {n.node_id}: {self.log_tail(n.node_id, 5)}" for n in st.nodes)
        )

    @staticmethod
    def live_brokers(kafka: KafkaConnection, timeout_s: float = 1.0) -> int:
        """How many brokers the metadata lists (0 when no broker answers)."""
        client = admin(kafka, {"log_level": 0})
        try:
            return len(client.list_topics(timeout=timeout_s).brokers)
        except Exception:
            return 0

    def _pid(self, node_id: int) -> int:
        st = self._read_state()
        if st is None:
            raise BrokerError("no cluster here")
        n = st.node(node_id)
        if not self._running(n):
            raise BrokerError(f"node {node_id} is not running")
        return n.pid

    # -- faults -----------------------------------------------------------------------
    def kill(self, node_id: int) -> None:
        """SIGKILL one node (its data stays for :meth:`start_node`)."""
        kill_pid(self._pid(node_id))

    def stop_node(self, node_id: int, timeout_s: float = 60.0) -> None:
        """SIGTERM one node and wait for its controlled shutdown."""
        stop_pid(self._pid(node_id), timeout_s)

    def pause(self, node_id: int) -> None:
        """SIGSTOP one node: alive but silent (a long GC pause, a frozen VM)."""
        os.kill(self._pid(node_id), signal.SIGSTOP)

    def resume(self, node_id: int) -> None:
        """SIGCONT a paused node."""
        os.kill(self._pid(node_id), signal.SIGCONT)

    def stop(self, *, timeout_s: float = 20.0) -> bool:
        """Stop every node we started (SIGTERM to all at once: a node stopping alone after
        the others would wait for a quorum that is gone; SIGKILL after ``timeout_s``);
        returns False when none was running."""
        st = self._read_state()
        if st is None:
            return False
        running = [n for n in st.nodes if self._running(n)]
        broker_only = [n for n in running if n.controller_port is None]
        for wave in (broker_only, [n for n in running if n not in broker_only]):
            for n in wave:  # a paused node must run again to stop
                os.kill(n.pid, signal.SIGCONT)
                os.kill(n.pid, signal.SIGTERM)
            end = time.monotonic() + timeout_s
            while any(pid_alive(n.pid) for n in wave) and time.monotonic() < end:
                time.sleep(0.1)
            for n in wave:
                if pid_alive(n.pid):
                    logger.warning("kafka node ignored SIGTERM; killing node=%s", n.node_id)
                    kill_pid(n.pid)
        return bool(running)
