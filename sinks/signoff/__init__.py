"""The sign-off ledger: station submissions, approvals by the unit above, province locks.

- :mod:`sinks.signoff.encode`: the ``signoff`` sink's encoder (verifies every decision);
- :mod:`sinks.signoff.ledger`: what the ledger says for a set of station-months (pure SQL
  over the catalog's ``signoff`` view);
- :mod:`sinks.signoff.service`: the API the CLI and the portal call (submit, approve, send
  back, lock, status).
"""
