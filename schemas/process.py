"""Tying a child process's life to its parent's (stdlib only; every layer's launchers use it:
the stream worker's check processes, the local brokers, ``tuyen demo``'s services)."""

from __future__ import annotations

import ctypes
import os
import signal

__all__ = ["die_with_parent"]

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int | None = None) -> None:
    """Linux: SIGTERM this process when the process that started it dies (even by SIGKILL).

    Call it in the child: as ``subprocess.Popen(preexec_fn=die_with_parent)`` before the exec,
    or first thing in a spawned process with ``parent`` (the pid that spawned it), which also
    exits at once if the parent died before the request took effect. Elsewhere than Linux it
    does nothing (the caller's pipes closing ends such a child instead)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if parent is not None and os.getppid() != parent:
        os._exit(0)
