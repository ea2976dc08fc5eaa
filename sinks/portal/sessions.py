"""Sessions (server-side, behind a signed cookie) and API tokens (hashed at rest).

A session cookie holds a random session id signed with the service's key (``itsdangerous``);
the server keeps the session's account, CSRF token, creation and last-seen times, so a
session ends on logout, on idle timeout, at its absolute lifetime, or when its account is
disabled. API tokens (``tyn_<id>_<secret>``) are 256-bit random strings shown once; only
their SHA-256 is stored (a fast hash is enough for a secret of that strength, unlike a
password); a revoked or disabled account's token is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from itsdangerous import BadSignature, Signer

from sinks.portal.accounts import AccountError, Accounts
from sinks.portal.db import Database
from sinks.portal.scope import Account

__all__ = ["Session", "Sessions", "TokenRow", "Tokens"]

_TOUCH_EVERY = 30.0  # seconds between last-seen updates of one session


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    account: Account
    csrf: str


class Sessions:
    """Server-side sessions with idle and absolute expiry."""

    def __init__(
        self,
        db: Database,
        accounts: Accounts,
        key: bytes,
        *,
        idle_seconds: float = 1800.0,
        absolute_seconds: float = 12 * 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.accounts = accounts
        self.signer = Signer(key, salt="tuyen-portal-session")
        self.idle = idle_seconds
        self.absolute = absolute_seconds
        self.clock = clock

    def create(self, account: Account) -> tuple[str, Session]:
        """A new session (a new id at every login: no fixation); returns the cookie value."""
        sid = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = self.clock()
        self.db.execute(
            "INSERT INTO sessions (id, user_id, csrf, created, seen) VALUES (?, ?, ?, ?, ?)",
            (sid, account.id, csrf, now, now),
        )
        self.db.execute(
            "DELETE FROM sessions WHERE seen < ? OR created < ?",
            (now - self.idle, now - self.absolute),
        )
        return self.signer.sign(sid).decode(), Session(sid, account, csrf)

    def resolve(self, cookie: str | None) -> Session | None:
        """The live session of a cookie, or ``None`` (bad signature, expired, disabled)."""
        if not cookie:
            return None
        try:
            sid = self.signer.unsign(cookie.encode()).decode()
        except (BadSignature, UnicodeError):
            return None
        rows = self.db.query(
            "SELECT user_id, csrf, created, seen FROM sessions WHERE id = ?", (sid,)
        )
        if not rows:
            return None
        uid, csrf, created, seen = rows[0]
        now = self.clock()
        if now - float(seen) > self.idle or now - float(created) > self.absolute:
            self.end(sid)
            return None
        account = self.accounts.by_id(int(uid))
        if account is None or account.disabled:
            self.end(sid)
            return None
        if now - float(seen) > _TOUCH_EVERY:
            self.db.execute("UPDATE sessions SET seen = ? WHERE id = ?", (now, sid))
        return Session(sid, account, str(csrf))

    def end(self, sid: str) -> None:
        self.db.execute("DELETE FROM sessions WHERE id = ?", (sid,))


@dataclass(frozen=True, slots=True)
class TokenRow:
    id: str
    username: str
    name: str
    created: float
    revoked: bool
    last_used: float | None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class Tokens:
    """API tokens: the same scope and roles as their account, for scripts."""

    def __init__(
        self, db: Database, accounts: Accounts, clock: Callable[[], float] = time.time
    ) -> None:
        self.db = db
        self.accounts = accounts
        self.clock = clock

    def create(self, username: str, name: str) -> tuple[str, str]:
        """``(token id, token)``: the token is shown once and never stored."""
        account = self.accounts.get(username)
        if account is None:
            raise AccountError(f"no user {username}")
        tid = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        self.db.execute(
            "INSERT INTO tokens (id, user_id, name, hash, created) VALUES (?, ?, ?, ?, ?)",
            (tid, account.id, name[:80], _digest(secret), self.clock()),
        )
        return tid, f"tyn_{tid}_{secret}"

    def revoke(self, tid: str) -> None:
        if self.db.execute("UPDATE tokens SET revoked = 1 WHERE id = ?", (tid,)) == 0:
            raise AccountError(f"no token {tid}")

    def list(self, username: str | None = None) -> list[TokenRow]:
        rows = self.db.query(
            "SELECT t.id, u.username, t.name, t.created, t.revoked, t.last_used FROM tokens t "
            "JOIN users u ON u.id = t.user_id WHERE ? IS NULL OR u.username = ? "
            "ORDER BY u.username, t.created",
            (username, username),
        )
        return [
            TokenRow(str(r[0]), str(r[1]), str(r[2]), float(r[3]), bool(r[4]), r[5]) for r in rows
        ]

    def resolve(self, token: str) -> Account | None:
        """The account of a bearer token, or ``None``."""
        prefix, _, rest = token.partition("_")
        tid, _, secret = rest.partition("_")
        if prefix != "tyn" or not tid or not secret:
            return None
        rows = self.db.query("SELECT user_id, hash, revoked FROM tokens WHERE id = ?", (tid[:32],))
        if not rows or rows[0][2] or not hmac.compare_digest(str(rows[0][1]), _digest(secret)):
            return None
        account = self.accounts.by_id(int(rows[0][0]))
        if account is None or account.disabled:
            return None
        self.db.execute("UPDATE tokens SET last_used = ? WHERE id = ?", (self.clock(), tid))
        return Account(
            account.id,
            account.username,
            account.scope,
            account.roles,
            account.facility,
            account.disabled,
            via_token=True,
        )
