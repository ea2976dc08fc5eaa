"""Decision 130/QĐ-BYT (amended by 4750/QĐ-BYT) check-out files: read, map, write.

``read_file`` is an import reader (:data:`producers.interop.importer.Reader`): one file →
the visits it holds (person, encounter, medicine_dispensed records) and its problems.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from producers.interop.importer import Problem, ReadContext, Visit, read_input
from producers.interop.xml130.mapping import map_visit
from producers.interop.xml130.wrapper import MAX_FILE_BYTES, read_wrapper, write_wrapper
from schemas import ContractViolation, Reason

__all__ = ["read_file", "write_wrapper"]


def read_file(path: Path, ctx: ReadContext) -> Iterator[Visit | Problem]:
    """The visits of one check-out file, and one problem per bad visit (or for the file)."""
    name = str(path)
    try:
        wrapper = read_wrapper(read_input(path, MAX_FILE_BYTES))
    except ContractViolation as exc:
        yield Problem(name, "-", "-", exc.reason, exc.message)
        return
    if not wrapper.visits:
        yield Problem(name, "-", "-", Reason.MISSING_DATA, "the file holds no visit (HOSO)")
        return
    for hoso in wrapper.visits:
        yield map_visit(name, hoso, wrapper.ma_cskcb, ctx)
