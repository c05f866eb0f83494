"""JSON Schema (OpenAI tools and response_format) -> Gemini's `Schema`, a subset of OpenAPI 3.0.

Gemini refuses fields it does not know ("Unknown name ... Cannot find field"), so we keep only the
Schema fields both the Gemini API and Vertex AI document and rewrite the JSON Schema idioms they lack:

- `type: [T, "null"]` and `anyOf`/`oneOf` with a `{"type": "null"}` branch become `nullable: true`;
  several non-null types become `anyOf`. `oneOf` is read as `anyOf`; `allOf` is merged shallowly.
- `$ref` into `$defs`/`definitions` is inlined (recursive references are refused with a 400).
- `const` becomes a one-value `enum`; number enums become string enums with `format: enum`
  (Gemini enums are strings); enums mixing kinds are dropped.
- `format` is kept only where Gemini documents it (int32/int64, float/double, enum/date-time).
- Shapes Gemini refuses with a 400 are made acceptable: an array without `items` ("items: missing
  field") gets string items; a nested object without `properties` ("should be non-empty for OBJECT
  type"), i.e. a free-form map, loses its type and becomes an unconstrained value. (A top-level
  object without properties is left to the caller: no tool parameters, or plain JSON mode.)
- Dropped: `additionalProperties`, `$schema`, `$id`, `$comment`, `examples`, `strict`, `readOnly`,
  `writeOnly`, `patternProperties`, `not`, `if/then/else`, `dependentRequired` and every other keyword
  outside the subset. Their constraints are then not enforced by the model.
"""

from __future__ import annotations

from typing import Any

from relaygate.errors import BadRequest
from relaygate.wire_types import JSON

_COPIED = (
    "title",
    "description",
    "default",
    "example",
    "pattern",
    "nullable",
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "minProperties",
    "maxProperties",
    "minimum",
    "maximum",
    "propertyOrdering",
)
_FORMATS = {
    "INTEGER": frozenset({"int32", "int64"}),
    "NUMBER": frozenset({"float", "double"}),
    "STRING": frozenset({"enum", "date-time"}),
}
_TYPES = {
    "string": "STRING",
    "number": "NUMBER",
    "integer": "INTEGER",
    "boolean": "BOOLEAN",
    "array": "ARRAY",
    "object": "OBJECT",
    "null": "NULL",
}
_MAX_DEPTH = 48


def to_gemini_schema(schema: object, where: str) -> JSON:
    """Gemini's Schema for a JSON Schema; `where` names the request field in error messages."""
    if not isinstance(schema, dict):
        raise BadRequest(f"'{where}' must be a JSON Schema object", param=where)
    defs = schema.get("$defs") or schema.get("definitions") or {}
    return _Converter(defs if isinstance(defs, dict) else {}, where).convert(schema, (), 0)


class _Converter:
    __slots__ = ("_defs", "_where")

    def __init__(self, defs: JSON, where: str) -> None:
        self._defs = defs
        self._where = where

    def _fail(self, message: str) -> BadRequest:
        return BadRequest(f"'{self._where}': {message}", param=self._where)

    def convert(self, node: object, refs: tuple[str, ...], depth: int) -> JSON:
        if depth > _MAX_DEPTH:
            raise self._fail(f"the schema nests deeper than {_MAX_DEPTH} levels")
        if isinstance(node, bool):
            return {}  # `true` (anything) has no Gemini equivalent beyond an unconstrained field
        if not isinstance(node, dict):
            raise self._fail("every schema node must be an object")
        if "$ref" in node:
            node, refs = self._resolve(node, refs)
        if "allOf" in node:
            node = self._merge_all_of(node)
        out: JSON = {key: node[key] for key in _COPIED if key in node}
        self._type(node, out, refs, depth)
        self._enum(node, out)
        if isinstance(node.get("properties"), dict):
            out["properties"] = {name: self.convert(sub, refs, depth + 1) for name, sub in node["properties"].items()}
            required = node.get("required")
            if isinstance(required, list):
                kept = [name for name in required if name in out["properties"]]
                if kept:
                    out["required"] = kept
        items = node.get("items")
        if isinstance(items, list):  # tuple validation: Gemini has one item schema
            items = items[0] if items else None
        if isinstance(items, dict | bool):
            out["items"] = self.convert(items, refs, depth + 1)
        variants = node.get("anyOf", node.get("oneOf"))
        if isinstance(variants, list):
            self._variants(variants, out, refs, depth)
        fmt = node.get("format")
        if isinstance(fmt, str) and fmt in _FORMATS.get(out.get("type", ""), ()):
            out["format"] = fmt
        if "type" not in out and "anyOf" not in out:
            if "properties" in out:
                out["type"] = "OBJECT"
            elif "items" in out:
                out["type"] = "ARRAY"
        if out.get("type") == "ARRAY" and "items" not in out:
            out["items"] = {"type": "STRING"}
        elif out.get("type") == "OBJECT" and not out.get("properties") and depth > 0:
            del out["type"]
            out.pop("properties", None)
        return out

    def _resolve(self, node: JSON, refs: tuple[str, ...]) -> tuple[JSON, tuple[str, ...]]:
        ref = node["$ref"]
        name = ""
        if isinstance(ref, str):
            for prefix in ("#/$defs/", "#/definitions/"):
                if ref.startswith(prefix):
                    name = ref[len(prefix) :]
        target = self._defs.get(name) if name else None
        if not isinstance(target, dict):
            raise self._fail(f"cannot resolve $ref {ref!r} (only local #/$defs/... references are supported)")
        if name in refs:
            raise self._fail(f"recursive $ref {ref!r} cannot be expressed in Gemini's schema subset")
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return merged, (*refs, name)

    def _merge_all_of(self, node: JSON) -> JSON:
        merged: JSON = {k: v for k, v in node.items() if k != "allOf"}
        for part in node["allOf"] if isinstance(node["allOf"], list) else ():
            if not isinstance(part, dict):
                continue
            if "$ref" in part:
                part, _ = self._resolve(part, ())
            for key, value in part.items():
                if key == "properties" and isinstance(value, dict):
                    merged["properties"] = {**merged.get("properties", {}), **value}
                elif key == "required" and isinstance(value, list):
                    merged["required"] = [*merged.get("required", []), *value]
                else:
                    merged.setdefault(key, value)
        return merged

    def _type(self, node: JSON, out: JSON, refs: tuple[str, ...], depth: int) -> None:
        kind = node.get("type")
        kinds = kind if isinstance(kind, list) else [kind] if isinstance(kind, str) else []
        if "null" in kinds and len(kinds) > 1:
            out["nullable"] = True
            kinds = [k for k in kinds if k != "null"]
        mapped = [_TYPES[k] for k in kinds if k in _TYPES]
        if len(mapped) == 1:
            out["type"] = mapped[0]
        elif len(mapped) > 1:
            out["anyOf"] = [{"type": t} for t in mapped]

    def _enum(self, node: JSON, out: JSON) -> None:
        values = node.get("enum")
        if "const" in node:
            values = [node["const"]]
        if not isinstance(values, list) or not values:
            return
        if all(isinstance(v, str) for v in values):
            out["enum"] = list(values)
            out.setdefault("type", "STRING")
        elif all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            out["enum"] = [str(v) for v in values]
            out["format"] = "enum"
            out.setdefault("type", "INTEGER" if all(isinstance(v, int) for v in values) else "NUMBER")

    def _variants(self, variants: list[Any], out: JSON, refs: tuple[str, ...], depth: int) -> None:
        kept = []
        for variant in variants:
            if isinstance(variant, dict) and variant.get("type") == "null" and len(variant) == 1:
                out["nullable"] = True
                continue
            kept.append(self.convert(variant, refs, depth + 1))
        if len(kept) == 1 and "type" not in out:
            for key, value in kept[0].items():
                out.setdefault(key, value)
        elif kept:
            out["anyOf"] = kept
