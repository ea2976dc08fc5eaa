"""Does a Kafka broker answer at an address?"""

from __future__ import annotations

from schemas.kafka import KafkaConnection, admin


def broker_answers(kafka: KafkaConnection | str, timeout_s: float = 2.0) -> bool:
    """True when a metadata request returns at least one broker. A plain ``host:port`` is a
    PLAINTEXT connection (the development brokers this package starts)."""
    conn = kafka if isinstance(kafka, KafkaConnection) else KafkaConnection(bootstrap=kafka)
    client = admin(conn, {"log_level": 0, "logger": _Silent()})
    try:
        md = client.list_topics(timeout=timeout_s)
    except Exception:
        return False
    return bool(md.brokers)


class _Silent:
    """A librdkafka logger that drops the connection-refused noise while probing."""

    def log(self, *args: object, **kwargs: object) -> None:
        return None
