"""Python's cyclic garbage collector, tuned once at the start of each worker process (the
stream worker's, :func:`streams.app.run_worker`, and each stage-1 check process's,
:mod:`streams.checkpool`). No faust, no Kafka.

Why (issue 17): the worker allocates many short-lived containers per event (decoded JSON,
tier dicts, headers, faust's events); with the default thresholds (700, 10, 10) a young
collection runs every few events and full collections walk everything start-up loaded (the
hierarchy, faust, pydantic models). py-spy put the collector at 12 % of the samples of the
faust-free loop, and raising its thresholds cut the worker process by ~61 µs per event in
paired rounds (issue 17's measurement); here, in ``make bench``'s paired rounds (2 × 50 k
events), the default thresholds cost 340–343 µs per event (worker and check process) and these
277–291 µs: −57 µs (docs/scale.md).

What: :func:`gc.freeze` moves everything alive after start-up to the permanent generation
(never scanned again), and the thresholds are raised so a young collection runs every
:data:`GEN0` allocations. Cycles are still collected (RSS stays flat: ``make bench``'s RSS
quartiles, the memory run), only less often.
"""

from __future__ import annotations

import gc
import logging

__all__ = ["GEN0", "GEN1", "GEN2", "tune_collector"]

logger = logging.getLogger(__name__)

GEN0 = 50_000
GEN1 = 20
GEN2 = 100


def tune_collector() -> None:
    """Collect what start-up left, freeze the survivors, raise the thresholds (call once per
    process, after start-up, before the first event)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GEN0, GEN1, GEN2)
    logger.debug(
        "collector tuned thresholds=%s frozen=%d", gc.get_threshold(), gc.get_freeze_count()
    )
