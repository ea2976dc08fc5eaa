"""The alert rules under promtool: syntax, their unit tests, runbook links, counter functions;
and ``promtool check metrics`` on what the monitor exports (a snapshot with every kind of
series). promtool comes from Debian's ``prometheus`` package (deploy/bin/ensure-system-deps):
without it these tests fail, they never skip."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import generate_latest

from streams.monitor.burrow import Commit, Status
from streams.monitor.freshness import Histogram, Percentiles
from streams.monitor.metrics import build_registry
from streams.monitor.model import (
    BrokerHealth,
    ClusterHealth,
    GroupLag,
    PartitionLag,
    PipelineHealth,
    Snapshot,
    StageFlow,
)

ROOT = Path(__file__).resolve().parents[3]
MONITORING = ROOT / "deploy" / "monitoring"
OPERATORS = ROOT / "docs" / "operators.md"


def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is needed: apt-get install prometheus (deploy/bin/ensure-system-deps)"
    return found


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [promtool(), *args], input=stdin, capture_output=True, timeout=120, check=False
    )


def rules() -> list[dict[str, object]]:
    doc = yaml.safe_load((MONITORING / "alerts.yml").read_text(encoding="utf-8"))
    return [r for g in doc["groups"] for r in g["rules"]]


def test_rules_are_valid() -> None:
    res = run("check", "rules", str(MONITORING / "alerts.yml"))
    assert res.returncode == 0, res.stdout.decode() + res.stderr.decode()


def test_rule_unit_tests_pass() -> None:
    res = run("test", "rules", str(MONITORING / "alerts_test.yml"))
    assert res.returncode == 0, res.stdout.decode() + res.stderr.decode()


def test_every_alert_has_a_unit_test() -> None:
    tests = (MONITORING / "alerts_test.yml").read_text(encoding="utf-8")
    for r in rules():
        assert f"alertname: {r['alert']}\n" in tests, r["alert"]


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes."""
    out = set()
    for line in markdown.splitlines():
        if line.startswith("#"):
            text = line.lstrip("#").strip().lower()
            out.add(re.sub(r"[^a-z0-9 _-]", "", text).replace(" ", "-"))
    return out


def test_every_alert_links_its_runbook_in_the_operators_guide() -> None:
    anchors = _anchors(OPERATORS.read_text(encoding="utf-8"))
    for r in rules():
        url = r["annotations"]["runbook_url"]  # type: ignore[index]
        page, _, anchor = str(url).partition("#")
        assert page == "docs/operators.md" and anchor in anchors, (r["alert"], url)


def test_counters_are_read_with_rate_or_increase() -> None:
    """A counter is never compared raw or with deriv/delta (both wrong across resets)."""
    for r in rules():
        expr = str(r["expr"])
        assert "deriv(" not in expr and "delta(" not in expr, r["alert"]
        for name in re.findall(r"\b(\w+_total)\b", expr):
            assert re.search(rf"(rate|increase)\({name}\b", expr), (r["alert"], name)


def full_snapshot() -> Snapshot:
    """A snapshot with every kind of series the monitor exports."""
    c = Commit(5, 1_000, 2)
    parts = (
        PartitionLag("t", 0, 5, 9, 4, 2.5, Status.STALL, 1.0, 10, 1_000, c, c, "h", "c"),
        PartitionLag("t", 1, 5, 9, 4, None, Status.OK, 0.5, 5, 1_000, c, c),
    )
    hist = Histogram().observe([0.3, 4.0, 90_000.0])
    return Snapshot(
        1_800_000_000_000,
        (
            GroupLag("g", "STABLE", Status.ERR, parts, members=2, complete=0.5),
            GroupLag("missing", "NOTFOUND", Status.NOTFOUND, ()),
        ),
        PipelineHealth(
            stages=(StageFlow("validate", ("a",), ("b", "c"), 10, 9),),
            topic_events={"a": 10},
            dlq_reasons={"not_json": 3},
            freshness={"district": Percentiles(3, 1.0, 2.0, 3.0, 4.0)},
            freshness_histograms={"district": hist},
        ),
        ClusterHealth(
            brokers=(BrokerHealth(1, "127.0.0.1:9092", True, 3, 9), BrokerHealth(2, "", False)),
            partitions=9,
            under_replicated=3,
            offline=0,
        ),
    )


def test_monitor_metrics_pass_promtool_check_metrics() -> None:
    text = generate_latest(build_registry(full_snapshot, lambda: 2))
    assert b"tuyen_dlq_records_total" in text and b"tuyen_freshness_seconds_bucket" in text
    res = run("check", "metrics", stdin=text)
    assert res.returncode == 0 and not (res.stdout + res.stderr).strip(), res


@pytest.mark.parametrize("snapshot", [None, Snapshot(0, ())])
def test_no_series_without_anything_to_measure(snapshot: Snapshot | None) -> None:
    text = generate_latest(build_registry(lambda: snapshot)).decode()
    assert "tuyen_freshness_seconds_bucket" not in text
    assert "tuyen_consumer_lag_seconds{" not in text
    res = run("check", "metrics", stdin=text.encode())
    assert res.returncode == 0 and not (res.stdout + res.stderr).strip(), res


def test_unknown_lag_seconds_is_absent_and_status_numbers_are_burrows() -> None:
    text = generate_latest(build_registry(full_snapshot)).decode()
    assert 'tuyen_consumer_lag_seconds{group="g",partition="0",topic="t"} 2.5' in text
    assert 'tuyen_consumer_lag_seconds{group="g",partition="1"' not in text
    assert 'tuyen_consumer_group_status{group="g"} 3.0' in text  # ERR
    assert 'tuyen_consumer_group_status{group="missing"} 0.0' in text  # NOTFOUND
    assert 'tuyen_consumer_partition_status{group="g",partition="0",topic="t"} 5.0' in text
    assert 'partition_status{group="g",partition="1"' not in text  # incomplete window
