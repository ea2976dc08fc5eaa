"""``python -m streams worker [--dev] ...`` (and ``python -m streams aggregates show ...``):
the stream commands of the ``tuyen`` CLI, for images and tests that run the worker alone.

An entry point like the ``tuyen`` console script: it is the one module of ``streams`` that
imports ``deploy`` (nothing imports it back).
"""

from __future__ import annotations

import sys


def main() -> None:
    from deploy.cli import main as tuyen

    args = sys.argv[1:]
    tuyen(args if args[:1] == ["aggregates"] else ["streams", *args])


if __name__ == "__main__":
    main()
