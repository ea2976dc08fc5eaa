"""The event contract: envelope, payload models, JSON Schemas, upcasters, hierarchy, code lists."""
