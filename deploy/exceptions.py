"""Errors of running tuyen: provisioning brokers, applying topics, configuration."""

from __future__ import annotations

from schemas.exceptions import TuyenError


class DeployError(TuyenError):
    """Root of the `deploy` package. ``exit_code``: what the ``tuyen`` command exits with."""

    exit_code = 1


class BrokerError(DeployError):
    """A broker could not be provisioned, reached or stopped (terminal unless stated)."""


class BrokerUnavailable(BrokerError):
    """No broker answered in time; trying again later may succeed."""

    retryable = True


class JarResolutionError(BrokerError):
    """The Apache Kafka jars could not be fetched or failed their checksums."""


class TopicError(DeployError):
    """A topic could not be created or reconfigured."""


class ConfigError(DeployError):
    """A setting is missing, malformed or unsafe (the message names the variable).

    The ``tuyen`` command exits with code 2 on it, as on a usage error."""

    exit_code = 2


class NoBroker(BrokerError):
    """No broker is known: neither ``KAFKA_BOOTSTRAP`` nor one ``tuyen broker up`` started."""

    exit_code = 2


class MissingTrustAnchor(ConfigError):
    """A process that verifies signatures or pseudonymises was started without the key
    registry or the pseudonym key (and not in development mode)."""
