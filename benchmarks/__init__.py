"""Benchmarks: each measured figure is printed beside a baseline measured in the same run.

Every module ``benchmarks/bench_*.py`` defines ``run(ctx: BenchContext) -> list[BenchResult]``.
``make bench`` (``python -m benchmarks``) provisions one broker, runs them all (or those
named with ``--only``), prints a table with the ratio to each baseline and writes
``benchmarks/results.json``. Targets live here, never in timed tests.
"""

from benchmarks.framework import BenchContext, BenchResult, Measurement, measure_rate

__all__ = ["BenchContext", "BenchResult", "Measurement", "measure_rate"]
