"""Schema compatibility within a major version (FULL_TRANSITIVE, by this project's rules).

Between an older committed schema and the current one, for every object reachable from the
root (following ``$ref``):

- no property removed (a rename is a removal plus an addition);
- a property may be added only if it is optional;
- no property becomes required;
- no type change (including nullability), no change of ``format``, ``pattern``, ``const``,
  numeric/length/size bounds or ``additionalProperties``;
- no value removed from or added to an ``enum`` (closed lists; growing code lists are
  ``pattern`` + ``x-code-list`` instead, checked against the code list at the edge).

Titles, descriptions, defaults and ``$defs`` naming do not matter.
"""

from __future__ import annotations

from typing import Any, Final

Schema = dict[str, Any]

_FIXED_KEYWORDS: Final = (
    "format",
    "pattern",
    "const",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "additionalProperties",
    "x-code-list",
)


def _resolve(node: Schema, root: Schema) -> Schema:
    seen = 0
    while "$ref" in node and seen < 32:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            raise ValueError(f"only local $ref supported, got {ref}")
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part]
        node = target
        seen += 1
    return node


def _split_nullable(node: Schema, root: Schema) -> tuple[bool, Schema]:
    """(nullable, the non-null schema) for ``anyOf: [X, {type: null}]`` shapes."""
    node = _resolve(node, root)
    options = node.get("anyOf")
    if isinstance(options, list):
        non_null = [o for o in options if o != {"type": "null"}]
        if len(non_null) == 1 and len(non_null) < len(options):
            return True, _resolve(non_null[0], root)
    if node.get("type") == "null":
        return True, {}
    return False, node


def _types(node: Schema) -> Any:
    t = node.get("type")
    return sorted(t) if isinstance(t, list) else t


def compatibility_problems(old: Schema, new: Schema) -> list[str]:
    """Every rule the change from ``old`` to ``new`` breaks (empty when compatible)."""
    problems: list[str] = []
    _compare(old, old, new, new, "$", problems)
    return problems


def _compare(o: Schema, oroot: Schema, n: Schema, nroot: Schema, at: str, out: list[str]) -> None:
    o_null, o = _split_nullable(o, oroot)
    n_null, n = _split_nullable(n, nroot)
    if o_null != n_null:
        out.append(f"{at}: nullability changed ({o_null} -> {n_null})")
    if _types(o) != _types(n):
        out.append(f"{at}: type changed ({_types(o)} -> {_types(n)})")
        return
    if "anyOf" in o or "anyOf" in n:
        oa, na = o.get("anyOf", []), n.get("anyOf", [])
        if len(oa) != len(na):
            out.append(f"{at}: union changed")
            return
        for i, (ob, nb) in enumerate(zip(oa, na, strict=True)):
            _compare(ob, oroot, nb, nroot, f"{at}|{i}", out)
    for kw in _FIXED_KEYWORDS:
        if o.get(kw) != n.get(kw):
            out.append(f"{at}: {kw} changed ({o.get(kw)!r} -> {n.get(kw)!r})")
    if "enum" in o or "enum" in n:
        oe, ne = set(map(repr, o.get("enum", []))), set(map(repr, n.get("enum", [])))
        if oe - ne:
            out.append(f"{at}: enum values removed {sorted(oe - ne)}")
        if ne - oe:
            out.append(f"{at}: enum values added {sorted(ne - oe)}")
    if "items" in o or "items" in n:
        if "items" in o and "items" in n:
            _compare(o["items"], oroot, n["items"], nroot, f"{at}[]", out)
        else:
            out.append(f"{at}: items changed")
    oprops: Schema = o.get("properties", {})
    nprops: Schema = n.get("properties", {})
    oreq, nreq = set(o.get("required", [])), set(n.get("required", []))
    for name in oprops:
        if name not in nprops:
            out.append(f"{at}.{name}: removed or renamed")
        else:
            _compare(oprops[name], oroot, nprops[name], nroot, f"{at}.{name}", out)
    for name in sorted(nreq - oreq):
        what = "added as required" if name not in oprops else "became required"
        out.append(f"{at}.{name}: {what}")
    for name in sorted(oreq - nreq):
        out.append(f"{at}.{name}: no longer required")
