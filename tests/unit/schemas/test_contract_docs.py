"""The example in docs/contract.md is a valid, correctly signed event."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson

from schemas import DevKeyRegistry, canonical_bytes, from_json_line, verify
from schemas.keys import DEV_KEY_SEED

DOC = Path(__file__).resolve().parents[3] / "docs" / "contract.md"


def test_documented_example_decodes_and_verifies() -> None:
    lines = DOC.read_text(encoding="utf-8").splitlines()
    example = next(line for line in lines if line.startswith('{"specversion"'))
    change = from_json_line(example, now=datetime(2025, 2, 1, tzinfo=UTC))
    verify(change, DevKeyRegistry(DEV_KEY_SEED))
    signed_bytes = [line for line in lines if line.startswith('{"data":{')][-1]
    assert canonical_bytes(change) == signed_bytes.encode()
    assert orjson.loads(signed_bytes)["station_seq"] == 42


def test_rejection_table_lists_every_reason_with_its_description() -> None:
    """docs/contract.md §6 and ``schemas.reasons.REASON_DESCRIPTIONS`` say the same."""
    from schemas.reasons import REASON_DESCRIPTIONS
    from schemas.wire import MAX_HEADER_BYTES, MAX_HEADERS

    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## 6. Rejections") :]
    rows = {}
    for line in section.splitlines():
        if line.startswith("| `"):
            reason, description = (cell.strip() for cell in line.strip("|").split(" | ", 1))
            rows[reason.strip("`")] = description
    assert rows == {r.value: d for r, d in REASON_DESCRIPTIONS.items()}
    assert (MAX_HEADERS, MAX_HEADER_BYTES) == (32, 8 * 1024), "the description names them"
