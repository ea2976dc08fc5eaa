"""Errors of running tuyen: provisioning brokers, applying topics, configuration."""

from __future__ import annotations

from schemas.exceptions import TuyenError


class DeployError(TuyenError):
    """Root of the `deploy` package."""


class BrokerError(DeployError):
    """A broker could not be provisioned, reached or stopped (terminal unless stated)."""


class BrokerUnavailable(BrokerError):
    """No broker answered in time; trying again later may succeed."""

    retryable = True


class JarResolutionError(BrokerError):
    """The Apache Kafka jars could not be fetched or failed their checksums."""


class TopicError(DeployError):
    """A topic could not be created or reconfigured."""
