"""JSON Schema files of the contract, committed under ``schemas/jsonschema/``.

Layout: ``<name>/v<major>.json`` is the current schema of each payload model (name = record
type), of the envelope value (``envelope``) and of the structured-mode JSON Lines event
(``event``). When an export changes a ``v<major>.json`` compatibly, the previous file is kept
beside it as ``v<major>.<YYYYMMDD>.json`` so the compatibility test checks the current model
against every revision ever committed for that major (FULL_TRANSITIVE).
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from schemas.approvers import ApproverRegistryFileV1
from schemas.compat import compatibility_problems
from schemas.envelope import MAX_COUNTER, SIGNER_PATTERN
from schemas.exceptions import ContractError
from schemas.keys import KEY_ID_PATTERN, KeyRegistryFileV1
from schemas.registry import MODELS

logger = logging.getLogger(__name__)

SCHEMA_ROOT: Final = Path(__file__).resolve().parent / "jsonschema"
DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"
_REVISION_RE = re.compile(r"^v([0-9]+)(?:\.([0-9]{8})(?:-([0-9]+))?)?\.json$")
_UUID7: Final = r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"


class EnvelopeValueV1(BaseModel):
    """The Kafka value of a record change (binary mode; attributes travel as ce_* headers)."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="envelope/v1")

    record_type: str = Field(pattern=r"^[a-z][a-z_]*$", description="one of the record types")
    record_id: str = Field(min_length=1, max_length=128)
    op: Literal["upsert", "delete"]
    record_version: int = Field(
        ge=1, description=f"at most {MAX_COUNTER} (2^53-1), checked by the receiver"
    )
    station_seq: int = Field(
        ge=1, description=f"at most {MAX_COUNTER} (2^53-1), checked by the receiver"
    )
    signer: str = Field(pattern=SIGNER_PATTERN)
    signature: str = Field(description="base64 Ed25519 signature over the canonical bytes")
    data: dict[str, Any] | None = Field(
        default=None, description="after-image (upsert) valid against <dataschema>; null on delete"
    )
    key_id: str | None = Field(
        default=None,
        pattern=KEY_ID_PATTERN,
        description="which of the signer's keys signed (key registry); signed when present",
    )


class EventV1(BaseModel):
    """One JSON Lines event: CloudEvents 1.0 structured mode; ``data`` is the envelope value."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="event/v1")

    specversion: Literal["1.0"]
    id: str = Field(pattern=_UUID7)
    source: str = Field(pattern=r"^station/[0-9]{5}$")
    type: str = Field(pattern=r"^vn\.health\.[a-z_]+\.(upsert|delete)$")
    time: str = Field(description="RFC 3339 with offset")
    dataschema: str = Field(pattern=r"^[a-z_]+/v[1-9][0-9]{0,2}$")
    subject: str = Field(min_length=1, max_length=128)
    datacontenttype: Literal["application/json"] = "application/json"
    data: EnvelopeValueV1


def current_schemas() -> dict[tuple[str, int], dict[str, Any]]:
    """Every schema as the code defines it now, by (name, major)."""
    out: dict[tuple[str, int], dict[str, Any]] = {}
    models: list[tuple[str, int, type[BaseModel]]] = [
        (rt.value, major, model)
        for rt, by_major in MODELS.items()
        for major, model in by_major.items()
    ]
    models += [
        ("envelope", 1, EnvelopeValueV1),
        ("event", 1, EventV1),
        ("key_registry", 1, KeyRegistryFileV1),
        ("approver_registry", 1, ApproverRegistryFileV1),
    ]
    for name, major, model in models:
        schema = model.model_json_schema(mode="validation")
        out[(name, major)] = {"$schema": DIALECT, "$id": f"{name}/v{major}", **schema}
    return out


def render(schema: dict[str, Any]) -> bytes:
    """The committed file form: indented, keys sorted, trailing newline."""
    return orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def committed_revisions(root: Path = SCHEMA_ROOT) -> dict[tuple[str, int], list[Path]]:
    """Every committed file by (name, major): ``v<major>.json`` and its dated revisions."""
    out: dict[tuple[str, int], list[Path]] = {}
    if not root.is_dir():
        return out
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        for f in sorted(d.glob("v*.json")):
            m = _REVISION_RE.match(f.name)
            if m:
                out.setdefault((d.name, int(m.group(1))), []).append(f)
    return out


def stale_files(root: Path = SCHEMA_ROOT) -> list[str]:
    """Names of ``v<major>.json`` files missing or differing from the current export."""
    stale = []
    for (name, major), schema in current_schemas().items():
        path = root / name / f"v{major}.json"
        if not path.is_file() or path.read_bytes() != render(schema):
            stale.append(f"{name}/v{major}.json")
    return stale


def problems_against_history(root: Path = SCHEMA_ROOT) -> dict[str, list[str]]:
    """Incompatibilities of the current schemas with every committed revision of their major."""
    current = current_schemas()
    out: dict[str, list[str]] = {}
    for (name, major), files in committed_revisions(root).items():
        new = current.get((name, major))
        if new is None:
            out[f"{name}/v{major}"] = ["the model of this committed major no longer exists"]
            continue
        for f in files:
            problems = compatibility_problems(orjson.loads(f.read_bytes()), new)
            if problems:
                out[f"{name}/{f.name}"] = problems
    return out


def export(
    root: Path = SCHEMA_ROOT, *, today: date | None = None, force: bool = False
) -> list[Path]:
    """Write every current schema; archive a changed ``v<major>.json`` as a dated revision.

    Refuses (``ContractError``) an incompatible change within a major unless ``force``.
    Returns the files written.
    """
    today = today or datetime.now(UTC).date()
    written: list[Path] = []
    for (name, major), schema in current_schemas().items():
        path = root / name / f"v{major}.json"
        body = render(schema)
        if path.is_file():
            old = path.read_bytes()
            if old == body:
                continue
            problems = compatibility_problems(orjson.loads(old), schema)
            if problems and not force:
                raise ContractError(
                    f"{name}/v{major} changed incompatibly (make a new major instead): "
                    + "; ".join(problems)
                )
            archive = _free_revision_path(path.parent, major, today)
            archive.write_bytes(old)
            written.append(archive)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        written.append(path)
        logger.info("schema exported path=%s", path)
    return written


def _free_revision_path(folder: Path, major: int, today: date) -> Path:
    stem = f"v{major}.{today:%Y%m%d}"
    path = folder / f"{stem}.json"
    n = 2
    while path.exists():
        path = folder / f"{stem}-{n}.json"
        n += 1
    return path
