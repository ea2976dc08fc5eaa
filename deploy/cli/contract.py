"""`tuyen schemas ...` commands: export and check the committed JSON Schema files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from schemas.schema_export import SCHEMA_ROOT, export, problems_against_history, stale_files

__all__ = ["app"]

app = typer.Typer(help="The event contract: JSON Schema files, compatibility.")


@app.command("export")
def export_cmd(
    root: Annotated[Path, typer.Option(help="folder of the committed schema files")] = SCHEMA_ROOT,
    check: Annotated[bool, typer.Option("--check", help="only report, write nothing")] = False,
    force: Annotated[bool, typer.Option(help="write even an incompatible change")] = False,
) -> None:
    """Write every payload, envelope and event JSON Schema to <root>/<name>/v<major>.json."""
    if check:
        stale = stale_files(root)
        bad = problems_against_history(root)
        for name in stale:
            print(f"stale: {name} (run `tuyen schemas export`)")
        for name, problems in bad.items():
            for p in problems:
                print(f"incompatible with {name}: {p}")
        raise typer.Exit(1 if stale or bad else 0)
    written = export(root, force=force)
    for path in written:
        print(f"wrote {path}")
    if not written:
        print("all schema files are up to date")
