"""Does a Kafka broker answer at an address?"""

from __future__ import annotations

from schemas.kafka import KafkaConnection, KafkaUnreachable, check_connection


def broker_answers(kafka: KafkaConnection | str, timeout_s: float = 2.0) -> bool:
    """True when a metadata request succeeds. A plain ``host:port`` is a PLAINTEXT
    connection (the development brokers this package starts)."""
    conn = kafka if isinstance(kafka, KafkaConnection) else KafkaConnection(bootstrap=kafka)
    try:
        check_connection(conn, timeout_s)
    except KafkaUnreachable:
        return False
    return True
