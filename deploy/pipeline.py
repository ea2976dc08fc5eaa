"""Run the pipeline's processes together: stream workers and sinks, each a real OS process.

The demo and the fault-injection tests use this: start every service with the same
environment (bootstrap, topic prefix, store root), SIGKILL or SIGTERM any of them, and wait
until every consumer group of the pipeline has committed up to the end of its input.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import Consumer, KafkaException, TopicPartition

from deploy.anchors import erasure_key_text
from deploy.exceptions import ConfigError, DeployError
from deploy.principals import STREAMS, province_sink, sink_principal
from deploy.settings import (
    SECRET_FIELDS,
    SINK_SECRET_FIELDS,
    WORKER_SECRET_FIELDS,
    env_name,
    kafka_env,
    secret_file_text,
)
from schemas.kafka import KafkaConnection, consumer
from schemas.process import die_with_parent
from schemas.topics import (
    AGGREGATES,
    DLQ,
    RAW,
    SIGNOFF,
    TIER_DISTRICT,
    TIER_NATIONAL,
    TIER_PROVINCE,
    RecordTopics,
    province_topic,
    topic_name,
)
from sinks.config import RECORD_SINKS, sink_group
from streams.config import APP_ID
from streams.pseudonym_key import WeakPseudonymKey

logger = logging.getLogger(__name__)

SINK_NAMES = ("district", "province", "national", "aggregates", "dlq", "signoff")
_SINK_TOPIC = {
    "district": TIER_DISTRICT,
    "province": TIER_PROVINCE,
    "national": TIER_NATIONAL,
    "aggregates": AGGREGATES,
    "dlq": DLQ,
    "signoff": SIGNOFF,
}


def _secret_text(env: Mapping[str, str], var: str) -> str | None:
    """A secret of ``env`` given inline (``var``) or as a file (``var_FILE``, read as
    deploy.settings reads it); ``None`` when unset, unreadable or empty."""
    if env.get(var):
        return env[var]
    with contextlib.suppress(ConfigError):
        return secret_file_text(env, var)
    return None


def _keep_secrets(env: dict[str, str], keep: Sequence[str]) -> None:
    """Take out of ``env`` every secret of ``SECRET_FIELDS`` not in ``keep``, in both forms
    (``X`` and ``X_FILE``)."""
    for name in SECRET_FIELDS:
        if name not in keep:
            env.pop(env_name(name), None)
            env.pop(env_name(name) + "_FILE", None)


def _child_setup(nice: int) -> None:
    """In the child, before the exec: never outlive the process that started it; ``nice``."""
    die_with_parent()
    if nice:
        os.nice(nice)


def tuyen_executable() -> str:
    """The `tuyen` console script of this interpreter's environment."""
    exe = Path(sys.executable).with_name("tuyen")
    return str(exe) if exe.exists() else "tuyen"


@dataclass
class Service:
    """One long-running `tuyen` process with its own log file."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    #: added to the process's niceness (``os.nice``) before it runs: a lower priority
    nice: int = 0
    #: the process already sent SIGTERM (a second one could cut a worker's drain short)
    terminated: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self.alive:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=functools.partial(_child_setup, self.nice),
            )
        logger.info("service started name=%s pid=%s", self.name, self.proc.pid)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash would (fault injection)."""
        if self.proc is not None and self.alive:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            logger.info("service killed name=%s", self.name)

    def terminate(self) -> None:
        """SIGTERM once (a clean drain follows); :meth:`stop` waits for it."""
        if self.proc is not None and self.alive and self.terminated is not self.proc:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.terminated = self.proc

    def stop(self, timeout_s: float = 60.0) -> int | None:
        """SIGTERM, wait for a clean drain, SIGKILL after ``timeout_s``."""
        if self.proc is None:
            return None
        if self.alive:
            self.terminate()
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                logger.warning("service ignored SIGTERM; killing name=%s", self.name)
                self.kill()
        return self.proc.returncode

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Pipeline:
    """The stream workers and sinks of one deployment (one topic prefix, one store).

    ``development``: the services run in development mode (``TUYEN_DEV=1``: development key
    registry and pseudonym key); otherwise they inherit this process's environment, trust
    anchors included.

    ``record_topics``: ``single`` (every record-level sink reads the single topics and writes
    ``store_root`` alone) or ``province`` (a record-level sink per province of
    ``provinces``, each writing its own root under ``store_root``, as deployed).
    ``credentials``: each service connects as its own principal (a secured broker); the
    services then run one process per principal. ``sink_split``: without credentials, these
    groups of sinks each run in a process of their own, apart from the other sinks' (each its
    own interpreter and GIL, not threads beside the others: docs/scale.md §5). ``sink_nice``:
    the sink processes' niceness, so that on cores they share with the stream worker the
    worker goes first."""

    kafka: KafkaConnection
    prefix: str
    store_root: Path
    log_dir: Path
    home: Path
    workers: int = 1
    sink_names: Sequence[str] = SINK_NAMES
    worker_args: Sequence[str] = ()
    sink_args: Sequence[str] = ()
    extra_env: Mapping[str, str] = field(default_factory=dict)
    development: bool = False
    record_topics: RecordTopics = "single"
    provinces: Sequence[str] = ()
    credentials: Callable[[str], KafkaConnection] | None = None
    sink_split: Sequence[Sequence[str]] = ()
    sink_nice: int = 0
    #: how many times :meth:`check_alive` restarts a service that exited on its own with a
    #: failure, as a supervisor (systemd ``Restart=on-failure``, a Kubernetes pod) would;
    #: 0: any such exit is an error. ``restarted`` counts them per service.
    restarts: int = 0
    restarted: dict[str, int] = field(default_factory=dict)
    services: dict[str, Service] = field(default_factory=dict)

    def env(self, principal: str = STREAMS) -> dict[str, str]:
        # the connection replaces whatever Kafka settings this process was started with
        kafka = self.credentials(principal) if self.credentials else self.kafka
        env = kafka_env(kafka, os.environ)
        if self.development:
            env["TUYEN_DEV"] = "1"
        env.update(
            {
                "TUYEN_TOPIC_PREFIX": self.prefix,
                "TUYEN_STORE_ROOT": str(self.store_root),
                "TUYEN_HOME": str(self.home),
                "TUYEN_RECORD_TOPICS": self.record_topics,
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.extra_env)
        return env

    def sink_env(self, principal: str) -> dict[str, str]:
        """A sink's environment: no secret but its own (``SINK_SECRET_FIELDS``: its Kafka
        credentials, the erasure key), neither ``X`` nor ``X_FILE`` — never the pseudonym
        key; the erasure key derived from it instead when the run has one (what an operator
        gives the sinks, `tuyen keys erasure-key`), unless the run sets its own."""
        env = self.env(principal)
        key = _secret_text(env, env_name("pseudonym_key"))
        _keep_secrets(env, SINK_SECRET_FIELDS)
        erasure = env_name("erasure_key")
        if key is not None and erasure not in env and erasure + "_FILE" not in env:
            # a weak key: the sinks get none (and refuse to start outside development mode)
            with contextlib.suppress(WeakPseudonymKey):
                env[erasure] = erasure_key_text(key, development=True)
        return env

    def worker_env(self) -> dict[str, str]:
        """A stream worker's environment: no secret but its own (``WORKER_SECRET_FIELDS``: its
        Kafka credentials, the pseudonym key), neither ``X`` nor ``X_FILE`` — never the
        erasure key, the access log's or the portal's keys, the monitor's token."""
        env = self.env(self.prefix + STREAMS)
        _keep_secrets(env, WORKER_SECRET_FIELDS)
        return env

    def build(self) -> None:
        exe = tuyen_executable()
        env = self.worker_env()
        for i in range(self.workers):
            name = f"worker-{i + 1}"
            argv = [exe, "streams", "worker", "--web-port", "0", "--no-create-topics"]
            data_dir = self.worker_data_dir(name)
            data_dir.parent.mkdir(parents=True, exist_ok=True)
            argv += ["--data-dir", str(data_dir)]
            self.services[name] = Service(
                name, [*argv, *self.worker_args], env, self.log_dir / f"{name}.log"
            )
        for name, (principal, sinks) in self.sink_processes().items():
            argv = [exe, "sink", *sinks, *self.sink_args]
            if self.record_topics == "single":
                argv += ["--root", str(self.store_root)]
            self.services[name] = Service(
                name,
                argv,
                self.sink_env(principal),
                self.log_dir / f"{name}.log",
                nice=self.sink_nice,
            )

    def worker_data_dir(self, name: str) -> Path:
        """A worker's local table state (faust's data dir), kept across restarts."""
        return self.home / "streams" / f"{self.prefix}{name}"

    def forget_local_state(self) -> None:
        """Remove the workers' local table state: for a broker that is new (its changelogs
        are empty, so state from an earlier broker would not match them and the worker
        would refuse to start)."""
        for i in range(self.workers):
            shutil.rmtree(self.worker_data_dir(f"worker-{i + 1}"), ignore_errors=True)

    def sink_processes(self) -> dict[str, tuple[str, list[str]]]:
        """Service name → (principal, `tuyen sink` arguments): one process for every sink
        unless each runs as its own principal (``credentials``) or in a group of
        ``sink_split``; one per province for the record-level sinks of the per-province
        shape."""
        shared = [
            n for n in self.sink_names if self.record_topics == "single" or n not in RECORD_SINKS
        ]
        records = [n for n in self.sink_names if n in RECORD_SINKS]
        out: dict[str, tuple[str, list[str]]] = {}
        if self.credentials is None:
            principal = sink_principal("national", self.prefix)
            for group in self.sink_split:
                mine = [n for n in shared if n in group]
                out["sinks-" + "-".join(mine)] = (principal, mine)
            split = {n for group in self.sink_split for n in group}
            out["sinks"] = (principal, [n for n in shared if n not in split])
        else:
            for n in shared:
                out[f"sink-{n}"] = (sink_principal(n, self.prefix), [n])
        if self.record_topics == "province" and records:
            for code in self.provinces:
                out[f"sink-province-{code}"] = (
                    province_sink(code, self.prefix),
                    [*records, "--province", code],
                )
        return {k: v for k, v in out.items() if v[1]}

    def start(self) -> None:
        if not self.services:
            self.build()
        for svc in self.services.values():
            svc.start()

    def stop(self) -> None:
        """SIGTERM every service at once, then wait for each to drain (a service ignoring
        SIGTERM is killed after 60 s): the services drain in parallel, not one after
        another."""
        for svc in self.services.values():
            svc.terminate()
        for svc in self.services.values():
            svc.stop()

    def check_alive(self) -> None:
        """Raise with the log tail when a service died on its own (after ``restarts``
        supervised restarts of it)."""
        for svc in self.services.values():
            if svc.proc is None or svc.alive or svc.proc.returncode in (0, None):
                continue
            code = svc.proc.returncode
            if self.restarted.get(svc.name, 0) >= self.restarts:
                raise DeployError(
                    f"service {svc.name} exited with {code}; "
                    f"log tail ({svc.log_path}):\n{svc.log_tail()}"
                )
            self.restarted[svc.name] = self.restarted.get(svc.name, 0) + 1
            logger.warning(
                "service exited, restarting name=%s code=%s restart=%d",
                svc.name,
                code,
                self.restarted[svc.name],
            )
            svc.start()

    # -- progress -----------------------------------------------------------------------
    def groups(self, sinks: Collection[str] | None = None) -> dict[str, list[str]]:
        """Each consumer group of the pipeline (the stream worker's, and the sinks' of
        ``sinks`` if given) and the topics it must have consumed."""
        groups = {self.prefix + APP_ID: [topic_name(RAW, self.prefix)]}
        for name in self.sink_names:
            if sinks is not None and name not in sinks:
                continue
            if self.record_topics == "province" and name in RECORD_SINKS:
                for code in self.provinces:
                    groups[sink_group(name, self.prefix, code)] = [
                        province_topic(code, self.prefix)
                    ]
                continue
            groups[sink_group(name, self.prefix)] = [topic_name(_SINK_TOPIC[name], self.prefix)]
        return groups

    def remaining(self) -> dict[str, int]:
        """Messages each group still has to commit past (its required topics only)."""
        return remaining_lag(self.kafka, self.groups())

    def wait_caught_up(
        self,
        timeout_s: float,
        *,
        settle_s: float = 3.0,
        on_progress: Callable[[dict[str, int]], None] | None = None,
        sinks: Collection[str] | None = None,
    ) -> None:
        """Wait until every group (the worker's and those of ``sinks`` if given) has
        committed to the end of its topics, and the end offsets did not move for
        ``settle_s`` (stages feed each other)."""
        deadline = time.monotonic() + timeout_s
        settled_since: float | None = None
        last_ends: dict[str, int] | None = None
        groups = self.groups(sinks)
        topics = sorted({t for ts in groups.values() for t in ts})
        probe = LagProbe(self.kafka)
        try:
            while time.monotonic() < deadline:
                self.check_alive()
                try:
                    rem = probe.remaining(groups)
                    ends = probe.ends(topics)
                except KafkaException as exc:  # e.g. NOT_COORDINATOR while a broker restarts
                    logger.info("lag query failed, retrying error=%s", exc)
                    probe.close()  # new clients next time
                    time.sleep(0.5)
                    continue
                if on_progress is not None:
                    on_progress(rem)
                if all(v == 0 for v in rem.values()) and ends == last_ends:
                    settled_since = settled_since or time.monotonic()
                    if time.monotonic() - settled_since >= settle_s:
                        return
                else:
                    settled_since = None
                last_ends = ends
                time.sleep(0.5)  # polling interval while processes work
        finally:
            probe.close()
        raise DeployError(f"pipeline not caught up within {timeout_s:.0f}s: {self.remaining()}")


def topic_ends(kafka: KafkaConnection, topics: Sequence[str]) -> dict[str, int]:
    """Sum of end offsets per topic."""
    with LagProbe(kafka) as probe:
        return probe.ends(topics)


def remaining_lag(kafka: KafkaConnection, groups: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """For each group: end offsets minus committed offsets over its required topics."""
    with LagProbe(kafka) as probe:
        return probe.remaining(groups)


class LagProbe:
    """The clients of repeated lag queries, kept open between them: a new client per group
    per query costs this process and the broker a connection (TLS and SCRAM on a secured
    broker) each time, several a second while :meth:`Pipeline.wait_caught_up` polls.

    Committed offsets come from ``Consumer.committed`` with the group's id (no subscribe, so
    it never joins the group), not ``AdminClient.list_consumer_group_offsets``: librdkafka
    2.16 segfaults in the latter while the group coordinator is loading (a fresh or just
    restarted broker); the consumer retries that state itself.
    """

    def __init__(self, kafka: KafkaConnection) -> None:
        self.kafka = kafka
        self._probe: Consumer | None = None
        self._readers: dict[str, Consumer] = {}

    def __enter__(self) -> LagProbe:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        for c in [*self._readers.values(), *([self._probe] if self._probe else [])]:
            c.close()
        self._readers.clear()
        self._probe = None

    @property
    def probe(self) -> Consumer:
        if self._probe is None:
            self._probe = consumer(self.kafka, {"group.id": "tuyen-probe"})
        return self._probe

    def _reader(self, group: str) -> Consumer:
        if group not in self._readers:
            self._readers[group] = consumer(
                self.kafka, {"group.id": group, "enable.auto.commit": False}
            )
        return self._readers[group]

    def ends(self, topics: Sequence[str]) -> dict[str, int]:
        """Sum of end offsets per topic."""
        md = self.probe.list_topics(timeout=10)
        out: dict[str, int] = {}
        for t in topics:
            parts = md.topics[t].partitions if t in md.topics else {}
            out[t] = sum(
                self.probe.get_watermark_offsets(TopicPartition(t, p), timeout=10)[1] for p in parts
            )
        return out

    def remaining(self, groups: Mapping[str, Sequence[str]]) -> dict[str, int]:
        """For each group: end offsets minus committed offsets over its required topics."""
        md = self.probe.list_topics(timeout=10)
        out: dict[str, int] = {}
        for group, topics in groups.items():
            tps = [
                TopicPartition(t, p)
                for t in topics
                if t in md.topics
                for p in md.topics[t].partitions
            ]
            committed: dict[tuple[str, int], int] = {}
            if tps:
                for tp in self._reader(group).committed(tps, timeout=10):
                    committed[(tp.topic, tp.partition)] = tp.offset
            total = 0
            for tp in tps:
                end = self.probe.get_watermark_offsets(tp, timeout=10)[1]
                done = committed.get((tp.topic, tp.partition), -1)
                total += end - max(done, 0) if end > 0 else 0
            out[group] = total
        return out
