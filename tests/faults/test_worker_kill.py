"""Fault: SIGKILL of the stream worker mid-stream, then a restart on the same data dir.

The kill lands while the worker has produced tier records and dead letters for raw input
it has not committed yet (checked while the worker is frozen with SIGSTOP, so the state
cannot move between the check and the SIGKILL): the restarted worker processes that input
again, deterministically.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from schemas.kafka import KafkaConnection
from schemas.topics import RAW, topic_name
from sinks.catalog import open_catalog
from sinks.catalog_sql import OPERATORS
from tests.faults.checks import FaultResult, StoreContract, finish
from tests.faults.pipeline import kill_and_restart, start_run
from tests.faults.traffic import kill_run_traffic

pytestmark = [pytest.mark.slow, pytest.mark.broker]


def _replayed_dead_letters(root: Path, raw_topic: str) -> int:
    """Distinct dead letters (DLQ positions) beyond one per rejected raw input, on disk."""
    con = open_catalog(root, OPERATORS)
    try:
        row = con.execute(
            "SELECT count(DISTINCT (dlq_topic, dlq_partition, dlq_offset)) "
            '- count(DISTINCT (topic, partition, "offset")) FROM raw.dlq WHERE topic = ?',
            [raw_topic],
        ).fetchall()[0]
    finally:
        con.close()
    return int(row[0])


@pytest.fixture(scope="module")
def result(
    kafka: KafkaConnection, tmp_path_factory: pytest.TempPathFactory, artifacts_dir: Path
) -> Iterator[FaultResult]:
    exp, before, during, after = kill_run_traffic(11, bad_fraction=0.03)
    fp = start_run(kafka, tmp_path_factory, "worker-kill")
    try:  # the raw topic keeps filling while no worker runs
        at_kill, sent, recovery_s = kill_and_restart(
            fp,
            "worker-1",
            before,
            during,
            after,
            lambda items: fp.publish_until_outputs_in_flight(exp, items),
        )
        measured = {
            "published_before_kill": sent,
            "at_kill": at_kill,
            "recovery_s": round(recovery_s, 1),
            "dlq_replayed": _replayed_dead_letters(fp.store_root, topic_name(RAW, fp.prefix)),
        }
        yield finish(fp, exp, artifacts_dir, "worker_kill", measured)
    finally:
        fp.stop()


class TestStreamWorkerSigkill(StoreContract):
    """SIGKILL of the only stream worker with outputs in flight, restart, catch up."""

    def test_no_duplicate_row_on_disk(self, result: FaultResult) -> None:
        """The replay may write a tier record again (at-least-once: the restarted worker
        drops a replayed event only if its restored state already holds the event id, which
        depends on whether the state changelog was flushed before the kill); the views
        deduplicate those. Bounded by the input replayed; sinks add no copy of their own."""
        top = result.measured["published_before_kill"] - result.measured["at_kill"]["raw_committed"]
        assert all(0 <= n <= top for n in result.check.raw_duplicates.values())
        assert result.check.dlq_raw_duplicates == 0
        assert result.check.temp_files == 0

    def test_replayed_dead_letters_are_the_ones_in_flight(self, result: FaultResult) -> None:
        """Every dead letter produced for uncommitted input comes again (no state dedupes
        rejections), none other: the extra dead letters on disk (``raw.dlq``; the dlq view
        counts each rejected input once) are exactly those."""
        at_kill = result.measured["at_kill"]
        top = result.measured["published_before_kill"] - at_kill["raw_committed"]
        assert at_kill["dlq_out_uncommitted"] <= result.measured["dlq_replayed"] <= top
