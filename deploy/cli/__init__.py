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

from deploy.cli.extras import missing_extra_message

__all__ = ["main"]


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
