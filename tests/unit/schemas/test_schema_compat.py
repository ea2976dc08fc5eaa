"""The committed JSON Schema files: up to date, compatible within a major with every
committed revision (FULL_TRANSITIVE), and usable with a plain JSON Schema validator."""

from __future__ import annotations

import copy
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator

from schemas import CURRENT_MAJOR, RecordType, encode, to_structured
from schemas.compat import compatibility_problems
from schemas.examples import example_change
from schemas.exceptions import ContractError
from schemas.schema_export import (
    SCHEMA_ROOT,
    committed_revisions,
    current_schemas,
    export,
    problems_against_history,
    render,
    stale_files,
)


def load(name: str, major: int) -> dict[str, Any]:
    schema: dict[str, Any] = orjson.loads((SCHEMA_ROOT / name / f"v{major}.json").read_bytes())
    return schema


def test_committed_files_equal_the_current_export() -> None:
    assert stale_files() == [], "run `tuyen schemas export` and commit schemas/jsonschema/"


def test_current_models_are_compatible_with_every_committed_revision() -> None:
    assert problems_against_history() == {}


def test_every_record_type_and_major_is_committed() -> None:
    committed = committed_revisions()
    for rt in RecordType:
        for major in range(1, CURRENT_MAJOR[rt] + 1):
            assert (rt.value, major) in committed
    assert ("envelope", 1) in committed and ("event", 1) in committed


# a transfer is final: it has no delete (schemas.envelope._check_transfer)
@pytest.mark.parametrize(
    ("rt", "op"),
    [
        (rt, op)
        for op in ("upsert", "delete")
        for rt in RecordType
        if not (rt is RecordType.PERSON_TRANSFER and op == "delete")
    ],
)
def test_schema_files_validate_example_events(rt: RecordType, op: str) -> None:
    majors = sorted({1, CURRENT_MAJOR[rt]})
    for major in majors:
        change = example_change(rt, op=op, major=major)
        msg = encode(change)
        value = orjson.loads(msg.value)
        Draft202012Validator(load("envelope", 1)).validate(value)
        Draft202012Validator(load("event", 1)).validate(
            orjson.loads(orjson.dumps(to_structured(change)))
        )
        if op == "upsert":
            Draft202012Validator(
                load(rt.value, major), format_checker=Draft202012Validator.FORMAT_CHECKER
            ).validate(value["data"])


def test_schema_files_reject_what_the_contract_rejects() -> None:
    data = orjson.loads(encode(example_change("encounter")).value)["data"]
    v = Draft202012Validator(load("encounter", 2))
    for bad in (
        {**data, "extra": 1},
        {**data, "health_id": "12345"},
        {**data, "diagnoses": ["i10"]},
        {**data, "diagnoses": []},
        {k: x for k, x in data.items() if k != "encounter_date"},
    ):
        assert not v.is_valid(bad), bad


BASE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "a": {"type": "string", "pattern": "^[0-9]+$"},
        "b": {"anyOf": [{"$ref": "#/$defs/B"}, {"type": "null"}], "default": None},
        "c": {"enum": ["x", "y"], "type": "string"},
    },
    "required": ["a"],
    "$defs": {"B": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}},
}


def changed(mutate: Any) -> dict[str, Any]:
    new = copy.deepcopy(BASE)
    mutate(new)
    return new


def test_compat_allows_optional_additions_and_cosmetics() -> None:
    def add_optional(s: dict[str, Any]) -> None:
        s["properties"]["d"] = {"type": "integer"}
        s["$defs"]["B"]["properties"]["m"] = {"type": "string"}
        s["properties"]["a"]["description"] = "now documented"

    assert compatibility_problems(BASE, changed(add_optional)) == []


@pytest.mark.parametrize(
    ("label", "mutate"),
    [
        ("removed", lambda s: s["properties"].pop("c")),
        ("renamed", lambda s: s["properties"].__setitem__("cc", s["properties"].pop("c"))),
        ("type", lambda s: s["properties"]["a"].__setitem__("type", "integer")),
        ("nested type", lambda s: s["$defs"]["B"]["properties"]["n"].__setitem__("type", "number")),
        ("new required", lambda s: s["required"].append("c")),
        ("added required", lambda s: (s["properties"].__setitem__("d", {"type": "integer"}),
                                      s["required"].append("d"))),
        ("nullability", lambda s: s["properties"].__setitem__("b", {"$ref": "#/$defs/B"})),
        ("pattern", lambda s: s["properties"]["a"].__setitem__("pattern", "^[0-9]{2}$")),
        ("enum shrinks", lambda s: s["properties"]["c"].__setitem__("enum", ["x"])),
        ("closedness", lambda s: s.__setitem__("additionalProperties", True)),
    ],
)  # fmt: skip
def test_compat_rejects_breaking_changes(label: str, mutate: Any) -> None:
    assert compatibility_problems(BASE, changed(mutate)), label


def test_export_archives_compatible_revisions_and_refuses_breaking_ones(tmp_path: Path) -> None:
    written = export(tmp_path, today=date(2025, 1, 2))
    assert len(written) == len(current_schemas())
    assert export(tmp_path) == []
    path = tmp_path / "person" / "v1.json"
    old = orjson.loads(path.read_bytes())
    # pretend the committed file lacked an optional field the model has now
    old["properties"].pop("phone")
    path.write_bytes(render(old))
    written = export(tmp_path, today=date(2025, 1, 2))
    assert tmp_path / "person" / "v1.20250102.json" in written
    assert problems_against_history(tmp_path) == {}
    # pretend the committed file had a field the model no longer has
    old = orjson.loads(path.read_bytes())
    old["properties"]["nickname"] = {"type": "string"}
    path.write_bytes(render(old))
    with pytest.raises(ContractError):
        export(tmp_path)
    assert "person/v1.json" in problems_against_history(tmp_path)
