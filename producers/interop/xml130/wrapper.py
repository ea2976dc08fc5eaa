"""The Decision 130/QĐ-BYT check-out file (amended by Decision 4750/QĐ-BYT): read and write.

::

    <GIAMDINHHS>
      <THONGTINDONVI><MACSKCB>01929</MACSKCB></THONGTINDONVI>
      <THONGTINHOSO>
        <NGAYLAP>20250115</NGAYLAP>
        <SOLUONGHOSO>1</SOLUONGHOSO>
        <DANHSACHHOSO>
          <HOSO>                                   one visit (đợt khám, chữa bệnh)
            <FILEHOSO><LOAIHOSO>XML1</LOAIHOSO><NOIDUNGFILE>base64</NOIDUNGFILE></FILEHOSO>
            <FILEHOSO><LOAIHOSO>XML2</LOAIHOSO><NOIDUNGFILE>base64</NOIDUNGFILE></FILEHOSO>
            ...
          </HOSO>
        </DANHSACHHOSO>
      </THONGTINHOSO>
      <CHUKYDONVI>...</CHUKYDONVI>                 the facility's XML signature (not checked)
    </GIAMDINHHS>

Each ``NOIDUNGFILE`` is the base64 of one table's own XML document (UTF-8): table 1
``<TONG_HOP>`` (one row), table 2 ``<CHITIEU_CHITIET_THUOC><DSACH_CHI_TIET_THUOC>
<CHI_TIET_THUOC>…`` (one element per medicine line), and so on; a row's fields are child
elements named as in the decision (``MA_LK``, ``HO_TEN``…). Some exporters put the table XML
inline instead of base64: both are read. Only the tables this project maps are decoded
(``TABLES``); the others are counted and skipped.

Hostile input is bounded: a document must be UTF-8 (as the decision requires) and may hold
no DTD and no entity declaration (so no entity expansion and no external entity can exist;
the check is a byte search, sound because UTF-8 is ASCII-compatible, and it lets the fast C
parser of the standard library do the parsing); a file is at most ``MAX_FILE_BYTES``, a
decoded table ``MAX_TABLE_BYTES``, a table ``MAX_ROWS`` rows, a file ``MAX_VISITS`` visits.
"""

from __future__ import annotations

import base64
import binascii
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from schemas import ContractViolation, Reason

__all__ = [
    "MAX_FILE_BYTES",
    "ROW_TAGS",
    "TABLES",
    "Hoso",
    "Row",
    "Wrapper",
    "read_wrapper",
    "write_wrapper",
]

MAX_FILE_BYTES: Final = 64 * 1024 * 1024
MAX_TABLE_BYTES: Final = 16 * 1024 * 1024
MAX_ROWS: Final = 10_000
MAX_VISITS: Final = 100_000

#: Table (LOAIHOSO) → the element holding one row, and the wrappers written around rows.
ROW_TAGS: Final[dict[str, str]] = {"XML1": "TONG_HOP", "XML2": "CHI_TIET_THUOC"}
_LIST_TAGS: Final[dict[str, tuple[str, ...]]] = {
    "XML1": (),
    "XML2": ("CHITIEU_CHITIET_THUOC", "DSACH_CHI_TIET_THUOC"),
}
#: The tables decoded (the others are skipped).
TABLES: Final = frozenset(ROW_TAGS)

Row = dict[str, str]


@dataclass
class Hoso:
    """One visit of the file: its decoded tables (rows of field → text), the tables it
    carried but this project does not map, and a decoding problem per broken table."""

    index: int
    tables: dict[str, list[Row]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    errors: dict[str, ContractViolation] = field(default_factory=dict)


@dataclass
class Wrapper:
    """A whole check-out file."""

    ma_cskcb: str | None
    created: str | None
    visits: list[Hoso]


def _local(tag: str) -> str:
    """The element name without a namespace, upper-cased (field names are upper case in the
    decision; some exporters write them in lower case)."""
    return (tag if "}" not in tag else tag.rsplit("}", 1)[1]).upper()


def _child(el: ET.Element, name: str) -> ET.Element | None:
    for c in el:
        if _local(c.tag) == name:
            return c
    return None


def _text(el: ET.Element | None) -> str | None:
    if el is None or el.text is None:
        return None
    return el.text.strip() or None


_DECLARED = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_UTF8_NAMES = frozenset({b"utf-8", b"utf8", b"us-ascii", b"ascii"})
_REFUSED = (b"<!DOCTYPE", b"<!ENTITY")


def _parse(data: bytes, what: str) -> ET.Element:
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in data:
        raise ContractViolation(Reason.BAD_FORMAT, f"{what}: the XML must be UTF-8")
    declared = _DECLARED.match(data.removeprefix(b"\xef\xbb\xbf"))
    if declared is not None and declared.group(1).lower() not in _UTF8_NAMES:
        raise ContractViolation(
            Reason.BAD_FORMAT, f"{what}: the XML must be UTF-8, not {declared.group(1).decode()}"
        )
    if any(marker in data for marker in _REFUSED):
        raise ContractViolation(
            Reason.BAD_FORMAT, f"{what}: refused XML (DTDs and entity declarations)"
        )
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise ContractViolation(Reason.BAD_FORMAT, f"{what}: not well-formed XML ({exc})") from None
    return root


def _rows(root: ET.Element, table: str) -> list[Row]:
    tag = ROW_TAGS[table]
    found = [root] if _local(root.tag) == tag else [e for e in root.iter() if _local(e.tag) == tag]
    if len(found) > MAX_ROWS:
        raise ContractViolation(
            Reason.OUT_OF_RANGE, f"{table} has {len(found)} rows, the limit is {MAX_ROWS}"
        )
    return [{_local(c.tag): (c.text or "").strip() for c in row} for row in found]


def _table(content: ET.Element, table: str) -> list[Row]:
    inline = [c for c in content if isinstance(c.tag, str)]
    if inline:  # the table's XML written inline instead of base64
        return _rows(inline[0], table)
    raw = (content.text or "").strip()
    if len(raw) > MAX_TABLE_BYTES * 4 // 3 + 4:
        raise ContractViolation(Reason.OVERSIZED, f"{table} is larger than {MAX_TABLE_BYTES} bytes")
    try:
        decoded = base64.b64decode("".join(raw.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ContractViolation(
            Reason.BAD_FORMAT, f"{table}: NOIDUNGFILE is not base64 ({exc})"
        ) from None
    if not decoded:
        raise ContractViolation(Reason.MISSING_FIELD, f"{table}: NOIDUNGFILE is empty")
    return _rows(_parse(decoded, table), table)


def read_wrapper(data: bytes) -> Wrapper:
    """Parse a check-out file. File-level problems raise ``ContractViolation``; a broken
    table only marks its visit (``Hoso.errors``)."""
    if len(data) > MAX_FILE_BYTES:
        raise ContractViolation(
            Reason.OVERSIZED, f"the file is {len(data)} bytes, the limit is {MAX_FILE_BYTES}"
        )
    root = _parse(data, "file")
    if _local(root.tag) != "GIAMDINHHS":
        raise ContractViolation(
            Reason.SCHEMA_VIOLATION, f"the root element is <{_local(root.tag)}>, not <GIAMDINHHS>"
        )
    unit = _child(root, "THONGTINDONVI")
    info = _child(root, "THONGTINHOSO")
    if info is None:
        raise ContractViolation(Reason.MISSING_FIELD, "no THONGTINHOSO element")
    listing = _child(info, "DANHSACHHOSO")
    if listing is None:
        raise ContractViolation(Reason.MISSING_FIELD, "no DANHSACHHOSO element")
    hosos = [h for h in listing if isinstance(h.tag, str) and _local(h.tag) == "HOSO"]
    if len(hosos) > MAX_VISITS:
        raise ContractViolation(
            Reason.OUT_OF_RANGE, f"{len(hosos)} visits in one file, the limit is {MAX_VISITS}"
        )
    visits = []
    for i, h in enumerate(hosos, start=1):
        visit = Hoso(i)
        for fh in h:
            if not isinstance(fh.tag, str) or _local(fh.tag) != "FILEHOSO":
                continue
            kind = (_text(_child(fh, "LOAIHOSO")) or "").upper()
            content = _child(fh, "NOIDUNGFILE")
            if kind not in TABLES:
                visit.skipped.append(kind or "?")
                continue
            if content is None:
                visit.errors[kind] = ContractViolation(
                    Reason.MISSING_FIELD, f"{kind}: no NOIDUNGFILE"
                )
                continue
            try:
                rows = _table(content, kind)
            except ContractViolation as exc:
                visit.errors[kind] = exc
                continue
            visit.tables.setdefault(kind, []).extend(rows)
        visits.append(visit)
    return Wrapper(
        _text(_child(unit, "MACSKCB")) if unit is not None else None,
        _text(_child(info, "NGAYLAP")),
        visits,
    )


# ---- writing (the simulator's legacy stations, tests) ------------------------------------
def _table_xml(table: str, rows: Sequence[Mapping[str, str]]) -> bytes:
    wrappers = _LIST_TAGS[table]
    if not wrappers:
        root = _row(ROW_TAGS[table], rows[0])
    else:
        root = ET.Element(wrappers[0])
        parent = root
        for tag in wrappers[1:]:
            parent = ET.SubElement(parent, tag)
        for r in rows:
            parent.append(_row(ROW_TAGS[table], r))
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="utf-8")


def _row(tag: str, fields: Mapping[str, str]) -> ET.Element:
    el = ET.Element(tag)
    for name, value in fields.items():
        ET.SubElement(el, name).text = value
    return el


def write_wrapper(
    ma_cskcb: str, visits: Iterable[Mapping[str, Sequence[Mapping[str, str]]]], created: str
) -> bytes:
    """A check-out file: ``visits`` are ``{"XML1": [row], "XML2": [rows…]}`` (rows as field →
    text, in the decision's field order); ``created`` is ``NGAYLAP`` (``yyyymmdd``)."""
    root = ET.Element("GIAMDINHHS")
    ET.SubElement(ET.SubElement(root, "THONGTINDONVI"), "MACSKCB").text = ma_cskcb
    info = ET.SubElement(root, "THONGTINHOSO")
    ET.SubElement(info, "NGAYLAP").text = created
    count = ET.SubElement(info, "SOLUONGHOSO")
    listing = ET.SubElement(info, "DANHSACHHOSO")
    n = 0
    for visit in visits:
        n += 1
        hoso = ET.SubElement(listing, "HOSO")
        for table, rows in visit.items():
            if not rows:
                continue
            fh = ET.SubElement(hoso, "FILEHOSO")
            ET.SubElement(fh, "LOAIHOSO").text = table
            encoded = base64.b64encode(_table_xml(table, rows)).decode()
            ET.SubElement(fh, "NOIDUNGFILE").text = encoded
    count.text = str(n)
    ET.SubElement(root, "CHUKYDONVI")
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="utf-8")
