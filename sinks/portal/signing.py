"""The approvers' signing keys, held by the portal.

An approver approves or sends back a station's month in the browser; the decision must be
signed with the approver's Ed25519 key (``schemas.signoff``). The portal keeps one key per
approver account in its database (generated on first need, never shown; the database is 0600
in a 0700 state dir, so whoever can read it can sign as the portal's approvers: keep the state
volume like a secret). The approver id in a signed decision is the account's user name.

The ``signoff`` sink (and the portal itself, before it sends a decision) accepts a decision
only when the approver's public key is in the approvers' registry (``TUYEN_APPROVER_KEYS``):
``tuyen portal approvers`` prints the registry entries of the portal's approver accounts
(province accounts approve and lock, district / regional-centre accounts approve; national
and station accounts decide nothing).
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any

from nacl.signing import SigningKey

from schemas.hierarchy import Tier
from schemas.signoff import APPROVE_ROLE, LOCK_ROLE
from sinks.portal.db import Database
from sinks.portal.scope import Account, Role

__all__ = ["ApproverKeys", "approver_roles"]


def approver_roles(account: Account) -> tuple[str, ...]:
    """What ``account`` may decide in the sign-off: ``()`` unless it is an approver of a
    province (approve, lock) or of a district / regional centre (approve)."""
    if not account.has(Role.APPROVER) or account.disabled:
        return ()
    if account.scope.tier is Tier.PROVINCE:
        return (APPROVE_ROLE, LOCK_ROLE)
    if account.scope.tier is Tier.DISTRICT:
        return (APPROVE_ROLE,)
    return ()


class ApproverKeys:
    """One signing key per approver account, in the portal's database."""

    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock

    def signing_key(self, username: str) -> SigningKey:
        """The account's key (made on first need)."""
        rows = self.db.query("SELECT seed FROM approver_keys WHERE username = ?", (username,))
        if rows:
            return SigningKey(bytes(rows[0][0]))
        self.db.execute(
            "INSERT OR IGNORE INTO approver_keys (username, seed, created) VALUES (?, ?, ?)",
            (username, secrets.token_bytes(32), self.clock()),
        )
        rows = self.db.query("SELECT seed FROM approver_keys WHERE username = ?", (username,))
        return SigningKey(bytes(rows[0][0]))

    def registry(self, accounts: Iterable[Account]) -> dict[str, Any]:
        """The approvers' registry entries (``schemas.signoff`` JSON) of ``accounts`` that may
        decide something, keys made where missing."""
        entries = []
        for account in sorted(accounts, key=lambda a: a.username):
            roles = approver_roles(account)
            if not roles:
                continue
            public = bytes(self.signing_key(account.username).verify_key)
            entries.append(
                {
                    "approver": account.username,
                    "unit": account.scope.code,
                    "roles": list(roles),
                    "public_key": base64.b64encode(public).decode(),
                }
            )
        return {"approvers": entries}
