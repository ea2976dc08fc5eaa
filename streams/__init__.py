"""The stream layer: validate, enrich, route, pseudonymise, aggregate (and operators' tools).

Public API::

    from streams import StreamsConfig, build_app
    app = build_app(StreamsConfig(kafka=KafkaConnection(bootstrap="127.0.0.1:9092"),
                                  key_registry_path="keys.json", pseudonym_key="<base64>"))

The pure parts (no Kafka client imports) are ``streams.validate``, ``streams.pseudonymise``,
``streams.route``, ``streams.aggregate``, ``streams.pipeline``; see docs/streams.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from streams.config import StreamsConfig, ValidationPolicy

if TYPE_CHECKING:
    import faust

__all__ = ["StreamsConfig", "ValidationPolicy", "build_app"]


def build_app(config: StreamsConfig, **kwargs: Any) -> faust.App:
    """Build the faust app (imports faust lazily; see ``streams.app.build_app``)."""
    from streams.app import build_app as _build

    return _build(config, **kwargs)
