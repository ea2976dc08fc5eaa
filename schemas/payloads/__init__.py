"""Payload models, one module per group. Class names carry the major version (``EncounterV2``)."""
