"""A real Apache Kafka broker for development and tests (never a look-alike)."""

from deploy.broker.jars import KAFKA_VERSION, ensure_jars
from deploy.broker.local import LocalBroker, LocalBrokerState
from deploy.broker.probe import broker_answers
from deploy.broker.provision import BrokerHandle, provision
from deploy.broker.state import current_connection, require_connection

__all__ = [
    "KAFKA_VERSION",
    "BrokerHandle",
    "LocalBroker",
    "LocalBrokerState",
    "broker_answers",
    "current_connection",
    "ensure_jars",
    "provision",
    "require_connection",
]
