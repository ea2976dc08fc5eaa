"""Accounts: Argon2 password hashes, scopes and roles, login throttling and lockout.

Failed logins are counted per user name (whether the account exists or not, so lockout
tells nothing about which names exist): the n-th consecutive failure is answered after a
delay that doubles each time (``delay_base`` seconds, at most ``delay_max``), and after
``max_failures`` the name is locked for ``lock_seconds``; a success resets the count, and an
administrator can unlock early.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from schemas.hierarchy import Hierarchy, HierarchyError, Tier
from sinks.portal.db import Database
from sinks.portal.scope import Account, Role, parse_scope

__all__ = ["AccountError", "Accounts", "LoginPolicy", "LoginResult", "UserRow"]

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
MIN_PASSWORD = 12


class AccountError(ValueError):
    """A bad account request (name taken, weak password, unknown role or scope)."""


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    max_failures: int = 5
    lock_seconds: float = 900.0
    delay_base: float = 0.25
    delay_max: float = 4.0

    def delay(self, failures: int) -> float:
        """Seconds to wait before answering the ``failures``-th consecutive failure."""
        if failures <= 0:
            return 0.0
        return min(self.delay_max, self.delay_base * 2 ** (failures - 1))


@dataclass(frozen=True, slots=True)
class LoginResult:
    account: Account | None
    failures: int = 0
    locked_until: float | None = None

    @property
    def locked(self) -> bool:
        return self.locked_until is not None


@dataclass(frozen=True, slots=True)
class UserRow:
    account: Account
    created: float
    locked_until: float | None


def _row_account(row: tuple[object, ...]) -> Account:
    uid, username, scope, roles, facility, disabled = row[:6]
    return Account(
        id=int(str(uid)),
        username=str(username),
        scope=parse_scope(str(scope)),
        roles=frozenset(Role(r) for r in str(roles).split(",") if r),
        facility=str(facility) if facility else None,
        disabled=bool(disabled),
    )


_COLS = "id, username, scope, roles, facility, disabled"


class Accounts:
    """The accounts table and the login check."""

    def __init__(
        self,
        db: Database,
        hierarchy: Hierarchy,
        *,
        policy: LoginPolicy | None = None,
        hasher: PasswordHasher | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.h = hierarchy
        self.policy = policy or LoginPolicy()
        self.hasher = hasher or PasswordHasher()
        self.clock = clock
        self._dummy = self.hasher.hash("not a password anyone has")

    # ---- administration -----------------------------------------------------------------

    def add(
        self,
        username: str,
        password: str,
        scope: str,
        roles: Iterable[str],
        *,
        facility: str | None = None,
    ) -> Account:
        name = username.strip().lower()
        if not USERNAME.match(name):
            raise AccountError(f"bad user name {username!r}: 2-64 of a-z 0-9 . _ -")
        if len(password) < MIN_PASSWORD:
            raise AccountError(f"password too short: at least {MIN_PASSWORD} characters")
        try:
            parsed = parse_scope(scope, self.h)
            role_set = frozenset(Role(r.strip().lower()) for r in roles)
        except ValueError as exc:
            raise AccountError(str(exc)) from None
        if not role_set:
            raise AccountError("an account needs at least one role")
        if Role.CLINICIAN in role_set and not facility:
            raise AccountError("a clinician account needs --facility (the station code)")
        if facility is not None:
            try:
                facility_tier = self.h.tier_of(facility)
            except HierarchyError:
                facility_tier = None
            if facility_tier is not Tier.STATION:
                raise AccountError(
                    f"facility {facility!r} is not a station or a registered facility "
                    "(TUYEN_FACILITIES)"
                )
        if self.db.query("SELECT 1 FROM users WHERE username = ?", (name,)):
            raise AccountError(f"user {name} exists already")
        self.db.execute(
            "INSERT INTO users (username, pw_hash, scope, roles, facility, created) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                name,
                self.hasher.hash(password),
                str(parsed),
                ",".join(sorted(role_set)),
                facility,
                self.clock(),
            ),
        )
        account = self.get(name)
        assert account is not None
        return account

    def get(self, username: str) -> Account | None:
        rows = self.db.query(f"SELECT {_COLS} FROM users WHERE username = ?", (username.lower(),))
        return _row_account(rows[0]) if rows else None

    def by_id(self, uid: int) -> Account | None:
        rows = self.db.query(f"SELECT {_COLS} FROM users WHERE id = ?", (uid,))
        return _row_account(rows[0]) if rows else None

    def list(self) -> list[UserRow]:
        rows = self.db.query(
            f"SELECT {', '.join('u.' + c.strip() for c in _COLS.split(','))}, u.created, "
            "f.locked_until FROM users u LEFT JOIN login_failures f ON f.username = u.username "
            "ORDER BY u.username"
        )
        now = self.clock()
        return [
            UserRow(
                _row_account(r),
                float(r[6]),
                float(r[7]) if r[7] is not None and float(r[7]) > now else None,
            )
            for r in rows
        ]

    def set_disabled(self, username: str, disabled: bool) -> None:
        self._must_change(
            "UPDATE users SET disabled = ? WHERE username = ?", (int(disabled), username)
        )
        if disabled:  # end its sessions at once
            self.db.execute(
                "DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE username = ?)",
                (username.lower(),),
            )

    def set_password(self, username: str, password: str) -> None:
        if len(password) < MIN_PASSWORD:
            raise AccountError(f"password too short: at least {MIN_PASSWORD} characters")
        self._must_change(
            "UPDATE users SET pw_hash = ? WHERE username = ?",
            (self.hasher.hash(password), username),
        )

    def unlock(self, username: str) -> None:
        self.db.execute("DELETE FROM login_failures WHERE username = ?", (username.lower(),))

    def _must_change(self, sql: str, args: tuple[object, str]) -> None:
        if self.db.execute(sql, (args[0], args[1].lower())) == 0:
            raise AccountError(f"no user {args[1]}")

    # ---- login --------------------------------------------------------------------------

    def locked_until(self, username: str) -> float | None:
        rows = self.db.query(
            "SELECT locked_until FROM login_failures WHERE username = ?", (username.lower(),)
        )
        if rows and rows[0][0] is not None and float(rows[0][0]) > self.clock():
            return float(rows[0][0])
        return None

    def authenticate(self, username: str, password: str) -> LoginResult:
        """Check a password; counts failures and locks (see the module docstring)."""
        name = username.strip().lower()[:64]
        locked = self.locked_until(name)
        if locked is not None:
            return LoginResult(None, self.policy.max_failures, locked)
        rows = self.db.query(f"SELECT {_COLS}, pw_hash FROM users WHERE username = ?", (name,))
        ok = False
        try:
            ok = self.hasher.verify(str(rows[0][6]) if rows else self._dummy, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            ok = False
        account = _row_account(rows[0]) if rows else None
        if ok and account is not None and not account.disabled:
            self.unlock(name)
            if self.hasher.check_needs_rehash(str(rows[0][6])):
                self.set_password(name, password)
            return LoginResult(account)
        return self._fail(name)

    def _fail(self, name: str) -> LoginResult:
        now = self.clock()
        with self.db.transaction() as con:
            row = con.execute(
                "SELECT failures FROM login_failures WHERE username = ?", (name,)
            ).fetchone()
            failures = (int(row[0]) if row else 0) + 1
            locked = (
                now + self.policy.lock_seconds if failures >= self.policy.max_failures else None
            )
            con.execute(
                "INSERT INTO login_failures (username, failures, last_failure, locked_until) "
                "VALUES (?, ?, ?, ?) ON CONFLICT(username) DO UPDATE SET failures = excluded."
                "failures, last_failure = excluded.last_failure, locked_until = excluded."
                "locked_until",
                (name, 0 if locked else failures, now, locked),
            )
        return LoginResult(None, failures, locked)
