"""faust-streaming processors (validate, enrich, route, pseudonymise, aggregate) and operators' tools."""
