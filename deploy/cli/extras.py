"""Which modules only the ``pipeline`` extra installs, and the message when one is missing.

Standard library only: :func:`deploy.cli.main` uses it before anything else is imported."""

from __future__ import annotations

from typing import Final

__all__ = ["PIPELINE_MODULES", "missing_extra_message"]

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
