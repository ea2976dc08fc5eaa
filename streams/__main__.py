"""``python -m streams worker ...``: the stream commands without the rest of the CLI."""

from __future__ import annotations

import logging
import sys

import typer

from streams.cli import register


def main() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
    register(app)
    app(args=["streams", *sys.argv[1:]] if sys.argv[1:2] != ["aggregates"] else sys.argv[1:])


if __name__ == "__main__":
    main()
