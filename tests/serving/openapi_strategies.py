"""Hypothesis strategies for request bodies, built from the app's OpenAPI (JSON Schema) models.

Covers the subset FastAPI/pydantic emit: ``$ref``, ``anyOf``/``oneOf``, ``enum``/``const``,
objects with ``properties``/``required``, arrays, strings (lengths, ``pattern``), numbers
with bounds, booleans and null. Sizes are capped so every example stays a fast request.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

MAX_TEXT = 60
MAX_ITEMS = 5


def from_schema(schema: dict[str, Any], root: dict[str, Any]) -> st.SearchStrategy:
    """Values valid against ``schema``; ``$ref``s resolve inside ``root`` (the OpenAPI doc)."""
    if "$ref" in schema:
        target = _resolve(schema["$ref"], root)
        return st.deferred(lambda: from_schema(target, root))
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of([from_schema(s, root) for s in schema[key]])
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of([from_schema({**schema, "type": k}, root) for k in kind])
    builder = _BUILDERS.get(kind)
    if builder is None:  # no type: anything JSON
        return st.none() | st.booleans() | st.integers() | st.text(max_size=10)
    return builder(schema, root)


def _resolve(ref: str, root: dict[str, Any]) -> dict[str, Any]:
    node: Any = root
    for part in ref.lstrip("#/").split("/"):
        node = node[part]
    return node


def _string(schema, root) -> st.SearchStrategy:
    lo = int(schema.get("minLength", 0))
    hi = max(lo, min(int(schema.get("maxLength", MAX_TEXT)), MAX_TEXT))
    if "pattern" in schema:
        return st.from_regex(schema["pattern"], fullmatch=True).filter(lambda s: lo <= len(s) <= hi)
    return st.text(min_size=lo, max_size=hi)


def _integer(schema, root) -> st.SearchStrategy:
    return st.integers(schema.get("minimum"), schema.get("maximum"))


def _number(schema, root) -> st.SearchStrategy:
    return st.floats(
        schema.get("minimum"), schema.get("maximum"), allow_nan=False, allow_infinity=False
    )


def _array(schema, root) -> st.SearchStrategy:
    lo = int(schema.get("minItems", 0))
    hi = max(lo, min(int(schema.get("maxItems", MAX_ITEMS)), MAX_ITEMS))
    return st.lists(from_schema(schema.get("items", {}), root), min_size=lo, max_size=hi)


def _object(schema, root) -> st.SearchStrategy:
    props = schema.get("properties", {})
    required = set(schema.get("required", []))
    return st.fixed_dictionaries(
        {k: from_schema(v, root) for k, v in props.items() if k in required},
        optional={k: from_schema(v, root) for k, v in props.items() if k not in required},
    )


_BUILDERS = {
    "string": _string,
    "integer": _integer,
    "number": _number,
    "boolean": lambda s, r: st.booleans(),
    "null": lambda s, r: st.none(),
    "array": _array,
    "object": _object,
}
