"""JSON Schema -> Gemini Schema: the rewrites and the refusals."""

from __future__ import annotations

from typing import Any

import pytest

from relaygate.errors import BadRequest
from relaygate.providers.gemini.schema import to_gemini_schema


def convert(schema: Any) -> dict[str, Any]:
    return to_gemini_schema(schema, "tools[0].function.parameters")


def test_unsupported_keywords_are_dropped() -> None:
    schema = {
        "$schema": "x",
        "$id": "y",
        "type": "object",
        "additionalProperties": False,
        "examples": [{}],
        "properties": {"a": {"type": "string", "readOnly": True, "$comment": "c", "not": {"const": "b"}}},
    }
    assert convert(schema) == {"type": "OBJECT", "properties": {"a": {"type": "STRING"}}}


def test_several_types_become_any_of() -> None:
    assert convert({"type": ["string", "integer", "null"]}) == {
        "nullable": True,
        "anyOf": [{"type": "STRING"}, {"type": "INTEGER"}],
    }


def test_one_of_reads_as_any_of() -> None:
    assert convert({"oneOf": [{"type": "string"}, {"type": "number"}]}) == {
        "anyOf": [{"type": "STRING"}, {"type": "NUMBER"}]
    }


def test_all_of_is_merged() -> None:
    schema = {
        "allOf": [
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
            {"properties": {"b": {"type": "boolean"}}, "required": ["b"]},
        ]
    }
    assert convert(schema) == {
        "type": "OBJECT",
        "properties": {"a": {"type": "STRING"}, "b": {"type": "BOOLEAN"}},
        "required": ["a", "b"],
    }


def test_nested_refs_are_inlined() -> None:
    schema = {
        "type": "object",
        "properties": {"home": {"$ref": "#/definitions/Address"}},
        "definitions": {
            "Address": {"type": "object", "properties": {"zip": {"$ref": "#/definitions/Zip"}}},
            "Zip": {"type": "string", "pattern": "^[0-9]{5}$"},
        },
    }
    assert convert(schema)["properties"]["home"] == {
        "type": "OBJECT",
        "properties": {"zip": {"type": "STRING", "pattern": "^[0-9]{5}$"}},
    }


def test_recursive_ref_is_refused() -> None:
    schema = {
        "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}},
        "type": "object",
        "properties": {"head": {"$ref": "#/$defs/Node"}},
    }
    with pytest.raises(BadRequest) as caught:
        convert(schema)
    assert caught.value.param == "tools[0].function.parameters" and "recursive" in caught.value.message


def test_remote_ref_is_refused() -> None:
    with pytest.raises(BadRequest):
        convert({"type": "object", "properties": {"a": {"$ref": "https://example.com/a.json"}}})


def test_formats_outside_gemini_support_are_dropped() -> None:
    schema = {
        "type": "object",
        "properties": {
            "u": {"type": "string", "format": "uri"},
            "n": {"type": "number", "format": "double"},
            "i": {"type": "integer", "format": "int64"},
        },
    }
    assert convert(schema)["properties"] == {
        "u": {"type": "STRING"},
        "n": {"type": "NUMBER", "format": "double"},
        "i": {"type": "INTEGER", "format": "int64"},
    }


def test_mixed_enums_are_dropped_and_number_enums_become_strings() -> None:
    assert convert({"enum": ["a", 1]}) == {}
    assert convert({"enum": [1.5, 2]}) == {"enum": ["1.5", "2"], "format": "enum", "type": "NUMBER"}


def test_tuple_items_keep_the_first_schema_and_true_means_anything() -> None:
    assert convert({"type": "array", "items": [{"type": "string"}, {"type": "integer"}]}) == {
        "type": "ARRAY",
        "items": {"type": "STRING"},
    }
    assert convert({"type": "array", "items": True}) == {"type": "ARRAY", "items": {}}


def test_required_names_outside_properties_are_dropped() -> None:
    assert convert({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["b"]}) == {
        "type": "OBJECT",
        "properties": {"a": {"type": "STRING"}},
    }


def test_absurd_nesting_is_refused() -> None:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(60):
        schema = {"type": "array", "items": schema}
    with pytest.raises(BadRequest):
        convert(schema)


def test_non_object_schema_is_refused() -> None:
    with pytest.raises(BadRequest):
        convert(["string"])


def test_array_without_items_gets_string_items() -> None:
    schema = {"type": "object", "properties": {"tags": {"type": "array", "description": "labels"}}}
    assert convert(schema)["properties"]["tags"] == {
        "description": "labels",
        "type": "ARRAY",
        "items": {"type": "STRING"},
    }


def test_nested_object_without_properties_becomes_unconstrained() -> None:
    schema = {
        "type": "object",
        "properties": {
            "meta": {"type": "object", "description": "any keys", "additionalProperties": True},
            "maybe": {"type": ["object", "null"]},
        },
    }
    assert convert(schema)["properties"] == {"meta": {"description": "any keys"}, "maybe": {"nullable": True}}


def test_top_level_object_without_properties_keeps_its_type() -> None:
    assert convert({"type": "object", "additionalProperties": False}) == {"type": "OBJECT"}
