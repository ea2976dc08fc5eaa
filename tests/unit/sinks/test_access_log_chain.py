"""The hash-chained access log: every kind of tampering the verifier claims to detect."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from sinks.reports import AccessLog
from sinks.reports.accesslog import verify

KEY = base64.b64encode(secrets.token_bytes(32))  # as `openssl rand -base64 32` gives


def _log(tmp_path: Path, n: int = 5, key: bytes | None = KEY) -> AccessLog:
    log = AccessLog(tmp_path / "access.log", key=key)
    for i in range(n):
        log.append({"principal": "province:12", "unit": f"u{i}", "outcome": "allowed"})
    return log


@pytest.mark.parametrize("key", [KEY, None], ids=["keyed", "unkeyed"])
def test_an_untouched_log_verifies(tmp_path: Path, key: bytes | None) -> None:
    log = _log(tmp_path, key=key)
    result = log.verify()
    assert result.ok, result.errors
    assert result.entries == 5 and result.head_seq == 4
    assert [e["unit"] for e in log.read()] == [f"u{i}" for i in range(5)]


def _lines(log: AccessLog) -> list[bytes]:
    return log.path.read_bytes().splitlines(keepends=True)


def test_an_edited_line_is_detected(tmp_path: Path) -> None:
    log = _log(tmp_path)
    lines = _lines(log)
    lines[2] = lines[2].replace(b'"allowed"', b'"refused"')
    log.path.write_bytes(b"".join(lines))
    result = log.verify()
    assert not result.ok
    assert any("line 3" in e and "edited" in e for e in result.errors), result.errors


def test_a_removed_line_is_detected(tmp_path: Path) -> None:
    log = _log(tmp_path)
    lines = _lines(log)
    del lines[1]
    log.path.write_bytes(b"".join(lines))
    assert any("removed" in e for e in log.verify().errors)


def test_truncation_at_the_end_is_detected_by_the_head(tmp_path: Path) -> None:
    log = _log(tmp_path)
    log.path.write_bytes(b"".join(_lines(log)[:-2]))
    assert any("removed at the end" in e for e in log.verify().errors)


def test_a_rewritten_unkeyed_chain_fails_with_the_key(tmp_path: Path) -> None:
    """Someone without the key rebuilds the chain and head consistently (plain SHA-256)."""
    log = _log(tmp_path)
    forged = AccessLog(tmp_path / "forged.log")  # no key
    for e in log.read()[:3]:
        forged.append({k: v for k, v in e.items() if k != "time"})
    log.path.write_bytes(forged.path.read_bytes())
    log.head_path.write_bytes(forged.head_path.read_bytes())
    errors = log.verify().errors
    assert any("without the key" in e for e in errors)
    assert any("head MAC" in e for e in errors)


def test_legacy_lines_are_covered_by_the_first_entry(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    path.write_bytes(orjson.dumps({"principal": "national", "outcome": "allowed"}) + b"\n")
    log = AccessLog(path, key=KEY)
    log.append({"principal": "national", "outcome": "allowed"})
    ok = log.verify()
    assert ok.ok and ok.legacy == 1 and ok.entries == 1
    path.write_bytes(path.read_bytes().replace(b"national", b"province", 1))
    assert not log.verify().ok


def test_expected_head_detects_a_rollback(tmp_path: Path) -> None:
    log = _log(tmp_path, n=3)
    recorded = log.verify()
    expect = f"{recorded.head_seq}:{recorded.head_hash}"
    saved_log, saved_head = log.path.read_bytes(), log.head_path.read_bytes()
    log.append({"principal": "national", "outcome": "refused"})
    assert log.verify(expect=expect).ok
    # roll both files back to an older state: only the externally recorded head tells
    log.path.write_bytes(b"".join(saved_log.splitlines(keepends=True)[:2]))
    log.head_path.write_bytes(saved_head)
    assert not verify(log.path, KEY, expect=expect).ok


def test_the_verify_command_exits_1_on_tampering(tmp_path: Path) -> None:
    from deploy.cli.root import app

    log = _log(tmp_path)
    env = {"TUYEN_ACCESS_LOG_KEY": KEY.decode()}
    args = ["portal", "audit", "verify", "--log", str(log.path)]
    ok = CliRunner().invoke(app, args, env=env)
    assert ok.exit_code == 0, ok.output
    log.path.write_bytes(log.path.read_bytes().replace(b"u3", b"u9"))
    bad = CliRunner().invoke(app, args, env=env)
    assert bad.exit_code == 1
    assert "edited" in bad.output
