"""Import from the formats facility software already exports (Decision 130 XML, FHIR R4),
published through the station SDK (see docs/interop.md)."""
