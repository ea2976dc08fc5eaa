"""Accounts, lockout, sessions and tokens of the portal, with a fake clock (no server)."""

from __future__ import annotations

import stat
from pathlib import Path

import orjson
import pytest
from argon2 import PasswordHasher
from typer.testing import CliRunner

from schemas.hierarchy import Hierarchy
from schemas.reasons import ContractViolation
from sinks.portal.accounts import AccountError, Accounts, LoginPolicy
from sinks.portal.db import Database
from sinks.portal.scope import Role, parse_scope
from sinks.portal.sessions import Sessions, Tokens
from sinks.portal.signing import ApproverKeys, approver_roles

FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)  # tests only


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def h() -> Hierarchy:
    return Hierarchy.default()


@pytest.fixture
def parts(tmp_path: Path, h: Hierarchy) -> tuple[Accounts, Sessions, Tokens, Clock]:
    clock = Clock()
    db = Database(tmp_path / "state" / "portal.sqlite")
    accounts = Accounts(db, h, policy=LoginPolicy(max_failures=3, lock_seconds=60), hasher=FAST,
                        clock=clock)  # fmt: skip
    sessions = Sessions(db, accounts, b"k" * 32, idle_seconds=100, absolute_seconds=1000,
                        clock=clock)  # fmt: skip
    return accounts, sessions, Tokens(db, accounts, clock), clock


def test_the_database_is_private(parts: tuple[Accounts, Sessions, Tokens, Clock]) -> None:
    path = parts[0].db.path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    parts[0].add("ana", "a-long-password", "province:12", ["analyst"])
    assert b"a-long-password" not in path.read_bytes()  # Argon2 hash only


def test_accounts_are_validated(parts: tuple[Accounts, Sessions, Tokens, Clock]) -> None:
    accounts = parts[0]
    with pytest.raises(AccountError, match="too short"):
        accounts.add("ana", "short", "province:12", ["analyst"])
    with pytest.raises(AccountError, match="not a district"):
        accounts.add("ana", "a-long-password", "district:12", ["analyst"])
    with pytest.raises(AccountError, match="clinician"):
        accounts.add("doc", "a-long-password", "station:03388", ["clinician"])
    for facility in ("90001", "12", "x"):  # unregistered hospital, a province, nonsense
        with pytest.raises(AccountError, match="not a station or a registered facility"):
            accounts.add("doc", "a-long-password", "station:03388", ["clinician"],
                         facility=facility)  # fmt: skip
    assert accounts.add("doc", "a-long-password", "station:03388", ["clinician"],
                        facility="03388").facility == "03388"  # fmt: skip
    with pytest.raises(AccountError, match="bad user name"):
        accounts.add("../x", "a-long-password", "national", ["analyst"])
    a = accounts.add("Ana", "a-long-password", "station:03388", ["analyst", "approver"])
    assert (a.username, str(a.scope), a.roles) == (
        "ana", "station:03388", frozenset({Role.ANALYST, Role.APPROVER})
    )  # fmt: skip
    with pytest.raises(AccountError, match="exists"):
        accounts.add("ana", "a-long-password", "national", ["analyst"])


def test_failures_slow_then_lock_whether_or_not_the_name_exists(
    parts: tuple[Accounts, Sessions, Tokens, Clock],
) -> None:
    accounts, _, _, clock = parts
    accounts.add("ana", "a-long-password", "province:12", ["analyst"])
    for name in ("ana", "nobody"):
        results = [accounts.authenticate(name, "wrong") for _ in range(3)]
        assert [r.failures for r in results] == [1, 2, 3]
        assert [r.locked for r in results] == [False, False, True]
    assert accounts.authenticate("ana", "a-long-password").locked  # right password, still locked
    assert [accounts.policy.delay(n) for n in (1, 2, 3)] == [0.25, 0.5, 1.0]
    clock.now += 61
    assert accounts.authenticate("ana", "a-long-password").account is not None
    accounts.authenticate("ana", "wrong")
    accounts.unlock("ana")
    assert accounts.locked_until("ana") is None


def test_sessions_expire_idle_and_absolute_and_end_on_disable(
    parts: tuple[Accounts, Sessions, Tokens, Clock],
) -> None:
    accounts, sessions, _, clock = parts
    a = accounts.add("ana", "a-long-password", "province:12", ["analyst"])
    cookie, s = sessions.create(a)
    assert sessions.resolve(cookie) == s
    assert sessions.resolve(cookie[:-2] + "xx") is None  # signature
    clock.now += 99
    assert sessions.resolve(cookie) is not None  # touched: idle restarts
    clock.now += 99
    assert sessions.resolve(cookie) is not None
    clock.now += 101
    assert sessions.resolve(cookie) is None  # idle
    cookie, _ = sessions.create(a)
    for _ in range(12):
        clock.now += 90
        sessions.resolve(cookie)
    assert sessions.resolve(cookie) is None  # absolute lifetime (1000 s)
    cookie, _ = sessions.create(a)
    accounts.set_disabled("ana", True)
    assert sessions.resolve(cookie) is None


def test_tokens_are_hashed_at_rest_and_revocable(
    parts: tuple[Accounts, Sessions, Tokens, Clock],
) -> None:
    accounts, _, tokens, _ = parts
    accounts.add("ana", "a-long-password", "province:12", ["analyst"])
    tid, token = tokens.create("ana", "nightly export")
    account = tokens.resolve(token)
    assert account is not None and account.via_token and str(account.scope) == "province:12"
    assert token.split("_", 2)[2].encode() not in accounts.db.path.read_bytes()
    assert tokens.resolve(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    tokens.revoke(tid)
    assert tokens.resolve(token) is None
    assert [t.revoked for t in tokens.list("ana")] == [True]


def test_scopes_cover_their_subtree(h: Hierarchy) -> None:
    from datetime import date

    at = date(2026, 10, 31)
    province = parse_scope("province:12", h)
    assert province.covers(h, "KV105", at) and province.covers(h, "03388", at)
    assert not province.covers(h, "04", at)
    station = parse_scope("station:03388", h)
    assert station.covers(h, "03388", at) and not station.covers(h, "KV105", at)
    assert station.store_provinces(h, at) == ("12",)
    assert parse_scope("national").store_provinces(h, at) is None
    with pytest.raises(ValueError):
        parse_scope("province:99x", h)


def test_approver_accounts_get_keys_the_registry_accepts(tmp_path: Path, h: Hierarchy) -> None:
    """Province approvers approve and lock, district approvers approve, nobody else decides;
    the registry the portal prints verifies the decisions the portal signs."""
    from schemas.signoff import StaticApproverRegistry, check_decision, make_decision

    db = Database(tmp_path / "portal.sqlite")
    accounts = Accounts(db, h, hasher=FAST)
    prov = accounts.add("ana", "a-long-password", "province:12", ["analyst", "approver"])
    dist = accounts.add("binh", "a-long-password", "district:KV105", ["approver"])
    only = accounts.add("chi", "a-long-password", "province:12", ["analyst"])
    natl = accounts.add("dung", "a-long-password", "national", ["approver"])
    assert approver_roles(prov) == ("approve", "lock") and approver_roles(dist) == ("approve",)
    assert approver_roles(only) == () and approver_roles(natl) == ()
    keys = ApproverKeys(db)
    doc = keys.registry(u.account for u in accounts.list())
    assert [e["approver"] for e in doc["approvers"]] == ["ana", "binh"]
    assert keys.signing_key("ana").encode() == keys.signing_key("ana").encode()  # kept
    path = tmp_path / "approvers.json"
    path.write_bytes(orjson.dumps(doc))
    registry = StaticApproverRegistry.load(path)
    decision = make_decision(
        "approve", period="2026-10", province="12", station="03388", unit="KV105", approver="binh"
    )
    check_decision(decision.signed(keys.signing_key("binh")), registry, h)
    with pytest.raises(ContractViolation, match="does not verify"):
        check_decision(decision.signed(keys.signing_key("ana")), registry, h)  # not binh's key


def test_serve_refuses_to_start_without_its_keys(tmp_path: Path) -> None:
    """Outside development mode (the tests run in it: TUYEN_DEV=1 from conftest)."""
    from deploy.cli.root import app

    env = {
        "TUYEN_DEV": "0",
        "TUYEN_HOME": str(tmp_path),
        "TUYEN_PORTAL_SESSION_KEY": None,
        "TUYEN_ACCESS_LOG_KEY": None,
    }
    args = ["portal", "serve", "--state-dir", str(tmp_path / "state"), "--port", "0"]
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())  # rich wraps the message
    assert "TUYEN_PORTAL_SESSION_KEY is not set" in text
    assert "TUYEN_ACCESS_LOG_KEY is not set" in text
    weak = tmp_path / "session_key"
    weak.write_text("short\n")
    with_file = {**env, "TUYEN_PORTAL_SESSION_KEY_FILE": str(weak)}
    result = CliRunner().invoke(app, args, env=with_file)
    assert result.exit_code == 2
    assert "TUYEN_PORTAL_SESSION_KEY is refused" in " ".join(result.output.split())
    assert not (tmp_path / "state").exists()
