"""``python -m benchmarks [--only NAME ...] [--scale X]``: run, print, write results.json."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import shutil
import tempfile
import time
from pathlib import Path

import orjson
from rich.console import Console
from rich.table import Table

import benchmarks
from benchmarks.framework import BenchContext, BenchResult
from deploy.broker import provision
from deploy.broker.state import external_connection
from deploy.settings import Settings

console = Console()


def _modules(only: list[str]) -> list[str]:
    names = sorted(
        m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_")
    )
    if only:
        names = [n for n in names if any(o in n for o in only)]
    return names


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.3g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", default=[], help="substrings of benchmark names")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply workload sizes")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results.json"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ["TUYEN_DEV"] = "1"  # the benchmarks sign with the development keys
    settings = Settings.load()
    handle = provision(
        mode=settings.broker_mode,
        external=external_connection(settings),
        home=settings.home,
        state_name=f"bench-{os.getpid()}",  # concurrent runs must not share (or stop) a broker
        tie_to_parent=True,
    )
    results: list[tuple[str, BenchResult]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="tuyen-bench-") as tmp:
            ctx = BenchContext(handle.kafka, Path(tmp), args.scale)
            for name in _modules(args.only):
                console.print(f"[bold]running {name}[/bold]")
                started = time.monotonic()
                module = importlib.import_module(f"benchmarks.{name}")
                for result in module.run(ctx):
                    results.append((name, result))
                console.print(f"  done in {time.monotonic() - started:.1f}s")
    finally:
        handle.stop()
        if handle.local is not None:
            shutil.rmtree(handle.local.state_dir, ignore_errors=True)
    table = Table("benchmark", "measured", "baseline (same run)", "ratio", "target")
    for _, r in results:
        base = ""
        if r.baseline is not None:
            base = f"{r.baseline_name}: {_fmt(r.baseline.value)} {r.baseline.unit}"
        ratio = f"{r.ratio:.2f}" if r.ratio is not None else ""
        table.add_row(r.name, f"{_fmt(r.measured.value)} {r.measured.unit}", base, ratio, r.target)
    console.print(table)
    payload = [
        {
            "module": module,
            "name": r.name,
            "measured": {"value": r.measured.value, "unit": r.measured.unit},
            "baseline_name": r.baseline_name,
            "baseline": (
                {"value": r.baseline.value, "unit": r.baseline.unit} if r.baseline else None
            ),
            "ratio": r.ratio,
            "target": r.target,
            "extra": r.extra,
        }
        for module, r in results
    ]
    if args.only and args.out.exists():  # a partial run keeps the other benchmarks' figures
        ran = {module for module, _ in results}
        kept = [e for e in orjson.loads(args.out.read_bytes()) if e.get("module") not in ran]
        payload = kept + payload
    args.out.write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2))
    console.print(f"results written to {args.out}")


if __name__ == "__main__":
    main()
