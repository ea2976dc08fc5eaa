"""A sink killed while writing a file leaves its temporary file behind; the restarted sink,
rewriting the same file name (segments are deterministic), removes it — and never the
temporary file of a writer still alive (it holds a lock on it)."""

from __future__ import annotations

import fcntl
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow as pa

from sinks.store import Store


def test_a_killed_writers_temporary_file_goes_a_live_ones_stays(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    target = store.path("district", "t+0+0.parquet")
    folder = Path(target).parent
    folder.mkdir(parents=True)
    orphan = folder / ".t+0+0.parquet.deadbeef.tmp"
    # a real writer killed mid-write: it created and locked its temporary file, then SIGKILL
    code = (
        "import fcntl, os, signal, sys\n"
        "fh = open(sys.argv[1], 'xb'); fcntl.flock(fh, fcntl.LOCK_EX); fh.write(b'PAR1')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    killed = subprocess.run([sys.executable, "-c", code, str(orphan)], check=False)
    assert killed.returncode == -signal.SIGKILL and orphan.exists()
    live = folder / ".t+0+0.parquet.cafe0000.tmp"
    other = folder / ".t+1+0.parquet.deadbeef.tmp"  # another file's: not this writer's to judge
    other.write_bytes(b"PAR1")
    with live.open("xb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        store.write_table(target, pa.table({"x": [1, 2]}))
        assert not orphan.exists() and live.exists() and other.exists()
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [live.name, other.name, "t+0+0.parquet"]
    )
    assert Path(target).stat().st_size > 0
