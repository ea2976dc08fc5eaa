"""Station SDK (typed builders, signing, durable outbox, idempotent producer), import, simulator."""
