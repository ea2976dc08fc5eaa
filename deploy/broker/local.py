"""A single-node Apache Kafka (KRaft, broker + controller) run from the cached jars.

The node listens on two free loopback ports, keeps its data and log in a state folder,
and records its pid there so that ``stop`` ends exactly the process it started.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson

from deploy.broker.config import PLAINTEXT, NodeSpec, server_properties, write_properties
from deploy.broker.jars import KAFKA_VERSION, ensure_jars
from deploy.broker.probe import broker_answers
from deploy.broker.secure import BrokerSecurity
from deploy.exceptions import BrokerError, BrokerUnavailable
from schemas.kafka import KafkaConnection

logger = logging.getLogger(__name__)

_MAIN_CLASS = "kafka.Kafka"
_STATE = "state.json"
_LOG4J = """Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: WARN
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka.server.KafkaRaftServer
        level: INFO
      - name: kafka.server.BrokerServer
        level: INFO
"""


@dataclass(frozen=True, slots=True)
class LocalBrokerState:
    """What a running local broker left in its state folder."""

    pid: int
    bootstrap: str
    controller_port: int
    version: str
    started_at: float
    secured: bool = False


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_free(port: int) -> bool:
    """Free for Kafka, which binds with SO_REUSEADDR: a port in TIME_WAIT counts as free."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Ask Linux to SIGTERM this child when the process that started it dies."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class LocalBroker:
    """One KRaft node whose files live under ``state_dir``."""

    def __init__(
        self,
        state_dir: Path,
        cache_dir: Path,
        *,
        heap: str = "768m",
        security: BrokerSecurity | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.cache_dir = cache_dir
        self.heap = heap
        self.security = security

    def connection(self, bootstrap: str) -> KafkaConnection:
        """How this process reaches the node: PLAINTEXT, or as admin when secured."""
        if self.security is None:
            return KafkaConnection(bootstrap=bootstrap)
        return self.security.connection(bootstrap)

    # -- files ------------------------------------------------------------------------
    @property
    def log_path(self) -> Path:
        return self.state_dir / "broker.log"

    @property
    def _props(self) -> Path:
        return self.state_dir / "server.properties"

    @property
    def _data(self) -> Path:
        return self.state_dir / "data"

    @property
    def _ports_file(self) -> Path:
        return self.state_dir / "ports.json"

    def state(self) -> LocalBrokerState | None:
        """The running broker's state, or None when none of ours is running here."""
        path = self.state_dir / _STATE
        if not path.exists():
            return None
        st = LocalBrokerState(**orjson.loads(path.read_bytes()))
        if _pid_alive(st.pid) and str(self._props) in _cmdline(st.pid):
            return st
        path.unlink(missing_ok=True)  # stale: the process is gone
        return None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no broker log)"

    # -- lifecycle --------------------------------------------------------------------
    def _choose_ports(self) -> tuple[int, int, bool]:
        """Reuse the ports the data was formatted with, if free; else new ports + fresh data."""
        if self._ports_file.exists() and (self._data / "meta.properties").exists():
            saved = orjson.loads(self._ports_file.read_bytes())
            same_security = saved.get("secured", False) == (self.security is not None)
            if same_security and _port_free(saved["broker"]) and _port_free(saved["controller"]):
                return int(saved["broker"]), int(saved["controller"]), False
            logger.warning("saved broker ports busy; formatting fresh storage dir=%s", self._data)
        return free_port(), free_port(), True

    def _write_config(self, port: int, controller_port: int) -> None:
        node = NodeSpec(1, port, controller_port, self._data)
        listeners = self.security.listeners() if self.security else PLAINTEXT
        write_properties(
            self._props, server_properties(node, [node], brokers=1, listeners=listeners)
        )
        write_log_config(self.state_dir)

    def _java(self) -> str:
        return java_executable()

    def _format(self, libs: Path) -> None:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        extra = self.security.format_args() if self.security else []
        cmd = format_command(self._java(), libs, cluster_id, self._props, extra)
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if proc.returncode != 0:
            raise BrokerError(f"formatting KRaft storage failed:\n{proc.stdout}\n{proc.stderr}")

    def start(self, *, deadline_s: float = 90.0, tie_to_parent: bool = False) -> LocalBrokerState:
        """Start the node (or return the running one) and wait until it answers metadata."""
        running = self.state()
        if running is not None:
            return running
        self.state_dir.mkdir(parents=True, exist_ok=True)
        libs = ensure_jars(self.cache_dir)
        port, controller_port, fresh = self._choose_ports()
        if fresh:
            import shutil

            shutil.rmtree(self._data, ignore_errors=True)
        self._write_config(port, controller_port)
        if fresh:
            self._format(libs)
            self._ports_file.write_bytes(
                orjson.dumps(
                    {
                        "broker": port,
                        "controller": controller_port,
                        "secured": self.security is not None,
                    }
                )
            )
        cmd = node_command(self._java(), libs, self.state_dir, self._props, self.heap)
        started = time.monotonic()
        with self.log_path.open("ab") as log:
            proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.state_dir,
                start_new_session=True,
                preexec_fn=_die_with_parent if tie_to_parent else None,
            )
        bootstrap = f"127.0.0.1:{port}"
        state = LocalBrokerState(
            proc.pid,
            bootstrap,
            controller_port,
            KAFKA_VERSION,
            time.time(),
            secured=self.security is not None,
        )
        probe = self.connection(bootstrap)
        (self.state_dir / _STATE).write_bytes(orjson.dumps(asdict(state)))
        while time.monotonic() - started < deadline_s:
            if proc.poll() is not None:
                (self.state_dir / _STATE).unlink(missing_ok=True)
                raise BrokerError(
                    f"local Kafka exited with code {proc.returncode} while starting; "
                    f"log tail ({self.log_path}):\n{self.log_tail()}"
                )
            if broker_answers(probe, timeout_s=1.0):
                logger.info(
                    "local kafka ready bootstrap=%s pid=%s seconds=%.1f",
                    bootstrap,
                    proc.pid,
                    time.monotonic() - started,
                )
                return state
            time.sleep(0.2)  # waiting for an external process: the probe is the condition
        self.stop()
        raise BrokerUnavailable(
            f"local Kafka did not answer within {deadline_s:.0f}s; "
            f"log tail ({self.log_path}):\n{self.log_tail()}"
        )

    def stop(self, *, timeout_s: float = 30.0) -> bool:
        """Stop the node we started (by pid); returns False when none was running."""
        st = self.state()
        if st is None:
            return False
        stop_pid(st.pid, timeout_s)
        (self.state_dir / _STATE).unlink(missing_ok=True)
        return True

    def kill(self) -> None:
        """SIGKILL the node (fault injection); its data stays for a restart."""
        st = self.state()
        if st is None:
            return
        kill_pid(st.pid)
        (self.state_dir / _STATE).unlink(missing_ok=True)


def java_executable() -> str:
    """``$JAVA_HOME/bin/java`` or ``java`` on the PATH (Java 17+)."""
    java_home = os.environ.get("JAVA_HOME")
    java = Path(java_home) / "bin" / "java" if java_home else None
    if java and java.exists():
        return str(java)
    from shutil import which

    found = which("java")
    if found is None:
        raise BrokerError("Java 17+ is needed to run the local Kafka broker (`java` not found)")
    return found


JMX_CONFIG = Path(__file__).with_name("jmx-exporter.yaml")


def node_command(
    java: str,
    libs: Path,
    state_dir: Path,
    props: Path,
    heap: str,
    *,
    jmx_agent: Path | None = None,
    jmx_port: int | None = None,
) -> list[str]:
    """The command that runs one KRaft node (with the JMX exporter agent when given)."""
    agent = []
    if jmx_agent is not None and jmx_port is not None:
        agent = [f"-javaagent:{jmx_agent}=127.0.0.1:{jmx_port}:{JMX_CONFIG}"]
    return [
        java,
        f"-Xmx{heap}",
        "-Xms128m",
        "-XX:+UseG1GC",
        "-XX:ParallelGCThreads=1",
        "-XX:ConcGCThreads=1",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={state_dir / 'log4j2.yaml'}",
        *agent,
        "-cp",
        f"{libs}/*",
        _MAIN_CLASS,
        str(props),
    ]


def write_log_config(state_dir: Path) -> None:
    """The nodes' log4j2 configuration (warnings, plus start-up lines)."""
    (state_dir / "log4j2.yaml").write_text(_LOG4J, encoding="utf-8")


def stop_pid(pid: int, timeout_s: float = 30.0) -> None:
    """SIGTERM ``pid``, wait for it to exit, SIGKILL after ``timeout_s``."""
    os.kill(pid, signal.SIGTERM)
    end = time.monotonic() + timeout_s
    while _pid_alive(pid) and time.monotonic() < end:
        _reap(pid)
        time.sleep(0.1)
    if _pid_alive(pid):
        logger.warning("kafka did not stop on SIGTERM; killing pid=%s", pid)
        kill_pid(pid)


def kill_pid(pid: int) -> None:
    """SIGKILL ``pid`` and wait until it is gone."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    while _pid_alive(pid):
        _reap(pid)
        time.sleep(0.05)


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists (a zombie child is reaped first)."""
    _reap(pid)
    return _pid_alive(pid)


def _reap(pid: int) -> None:
    """Collect the exit status if the broker is our child, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def format_command(
    java: str, libs: Path, cluster_id: str, props: Path, extra: list[str] | None = None
) -> list[str]:
    """The KRaft storage format command (``extra``: e.g. ``--add-scram=…``). The cluster id
    is random URL-safe base64, so 1 in 64 starts with ``-``: it goes in the same argument as
    its option, or the tool reads it as an option of its own and fails."""
    return [
        java,
        "-cp",
        f"{libs}/*",
        "kafka.tools.StorageTool",
        "format",
        f"--cluster-id={cluster_id}",
        "-c",
        str(props),
        *(extra or []),
    ]
