"""Does a Kafka broker answer at an address?"""

from __future__ import annotations

from typing import Any

from confluent_kafka.admin import AdminClient


def broker_answers(bootstrap: str, timeout_s: float = 2.0) -> bool:
    """True when a metadata request to ``bootstrap`` returns at least one broker."""
    config: dict[str, Any] = {"bootstrap.servers": bootstrap, "log_level": 0, "logger": _Silent()}
    admin = AdminClient(config)
    try:
        md = admin.list_topics(timeout=timeout_s)
    except Exception:
        return False
    return bool(md.brokers)


class _Silent:
    """A librdkafka logger that drops the connection-refused noise while probing."""

    def log(self, *args: object, **kwargs: object) -> None:
        return None
