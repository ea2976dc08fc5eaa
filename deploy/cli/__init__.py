"""The `tuyen` command: one entry point fronting every job of the pipeline.

The app is :data:`deploy.cli.root.app`; each job's commands are in a module of this package
(thin functions over library calls), the helpers they share in :mod:`deploy.cli.common`.
Imports go one way: this package imports the others, none imports it back.

:func:`main` imports nothing but the standard library first, so a station's lean install
(``pip install tuyen`` without the ``pipeline`` extra: the SDK and the contract) gets a
clear message instead of a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Final

__all__ = ["PIPELINE_MODULES", "main", "missing_extra_message"]

#: Top-level modules that only the ``pipeline`` extra installs.
PIPELINE_MODULES: Final = frozenset(
    {
        "aiokafka",
        "click",
        "cramjam",
        "docker",
        "duckdb",
        "faust",
        "fhir",
        "jsonschema",
        "mode",
        "numpy",
        "prometheus_client",
        "pyarrow",
        "pydantic_settings",
        "rich",
        "rocksdict",
        "testcontainers",
        "typer",
    }
)


def missing_extra_message(exc: ModuleNotFoundError) -> str | None:
    """The message for a module of the ``pipeline`` extra that is not installed, else None."""
    name = (exc.name or "").split(".")[0]
    if name not in PIPELINE_MODULES:
        return None
    return (
        f"this tuyen job needs the pipeline extra (module {name!r} is not installed): "
        "pip install 'tuyen[pipeline]' (the station SDK alone needs no extra)"
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point (``tuyen``); ``argv`` defaults to the command line."""
    try:
        from deploy.cli.root import run
    except ModuleNotFoundError as exc:
        message = missing_extra_message(exc)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)
    run(argv)
