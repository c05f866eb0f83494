"""The `json_schema` check: JSON that satisfies the schema passes; not-JSON, a schema violation or a
missing key is blocked with a short reason that never quotes the answer; bad schemas refused at load."""

from __future__ import annotations

from typing import Any

import pytest

from relaygate.guardrails.checks.json_schema import MAX_REASON_CHARS, compile_json_schema

SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer", "minimum": 0},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
}
CHECK = compile_json_schema({"schema": SCHEMA})


def test_a_valid_answer_passes() -> None:
    assert not CHECK.evaluate('{"name": "Ada", "age": 36, "tags": ["math"]}').violated
    assert CHECK.action == "block" and CHECK.max_match_chars is None


def test_a_fenced_answer_passes_when_fences_are_allowed() -> None:
    for text in ('```json\n{"name": "Ada"}\n```', '  ```\n{"name": "Ada"}\n```\n', '```JSON\n{"name": "Ada"}```'):
        assert not CHECK.evaluate(text).violated, text
    strict = compile_json_schema({"schema": SCHEMA, "allow_fenced": False})
    assert strict.evaluate('```json\n{"name": "Ada"}\n```').reason == "output is not JSON"


def test_a_fence_of_another_language_or_with_prose_around_is_not_json() -> None:
    assert CHECK.evaluate('```python\n{"name": "Ada"}\n```').reason == "output is not JSON"
    assert CHECK.evaluate('Here it is:\n```json\n{"name": "Ada"}\n```').reason == "output is not JSON"


def test_text_that_is_not_json() -> None:
    for text in ("Sure! Here is the data.", "", '{"name": "Ada"', "{'name': 'Ada'}"):
        result = CHECK.evaluate(text)
        assert result.violated and result.reason == "output is not JSON", text


def test_a_schema_violation_names_where_and_which_rule_not_the_value() -> None:
    result = CHECK.evaluate('{"name": "Ada", "age": "forty-two-secret"}')
    assert result.violated
    assert result.reason == '$.age: fails type "integer"'
    assert "forty" not in result.reason
    assert CHECK.evaluate('{"name": "Ada", "tags": ["a", 5]}').reason == '$.tags[1]: fails type "string"'
    assert CHECK.evaluate('{"age": 3}').reason == '$: fails required ["name"]'
    assert CHECK.evaluate('{"name": "Ada", "age": -1}').reason == "$.age: fails minimum 0"
    assert CHECK.evaluate("[1, 2]").reason == '$: fails type "object"'


def test_reasons_are_short() -> None:
    long_enum = {"type": "string", "enum": [f"value-{index}" for index in range(100)]}
    check = compile_json_schema({"schema": {"type": "object", "properties": {"k" * 300: long_enum}}})
    result = check.evaluate('{"' + "k" * 300 + '": "other"}')
    assert result.violated and len(result.reason) <= MAX_REASON_CHARS


def test_required_top_level_keys() -> None:
    check = compile_json_schema({"schema": {"type": "object"}, "keys": ["answer", "sources"]})
    assert not check.evaluate('{"answer": 1, "sources": []}').violated
    assert check.evaluate('{"answer": 1}').reason == "output lacks top-level key(s): sources"
    assert check.evaluate("[]").reason == "output lacks top-level key(s): answer, sources"


def test_a_local_ref_is_followed_and_a_missing_one_is_a_violation() -> None:
    schema = {"$defs": {"id": {"type": "integer"}}, "type": "object", "properties": {"id": {"$ref": "#/$defs/id"}}}
    check = compile_json_schema({"schema": schema})
    assert not check.evaluate('{"id": 1}').violated
    assert check.evaluate('{"id": "x"}').reason == '$.id: fails type "integer"'
    dangling = compile_json_schema({"schema": {"properties": {"id": {"$ref": "#/$defs/missing"}}}})
    assert dangling.evaluate('{"id": 1}').violated


def test_deep_nesting_is_an_answer_not_a_crash() -> None:
    check = compile_json_schema({"schema": {"$ref": "#/$defs/node", "$defs": {"node": {"items": {"$ref": "#"}}}}})
    assert check.evaluate("[" * 900 + "]" * 900).violated in (True, False)  # finishes either way
    assert check.evaluate("[" * 5000 + "]" * 5000).violated


def _error(config: dict[str, Any]) -> str:
    with pytest.raises(ValueError) as caught:
        compile_json_schema(config)
    return str(caught.value)


def test_config_errors_name_the_field() -> None:
    assert _error({}).startswith("schema: required")
    assert _error({"schema": "object"}).startswith("schema: required")
    assert _error({"schema": {"type": "objekt"}}).startswith("schema: not a valid JSON Schema")
    assert _error({"schema": {"minimum": "zero"}}).startswith("schema: not a valid JSON Schema")
    assert _error({"schema": {"$ref": "https://example.com/s.json"}}).startswith("schema: $ref")
    assert _error({"schema": {}, "keys": []}).startswith("keys:")
    assert _error({"schema": {}, "allow_fenced": "yes"}).startswith("allow_fenced:")
    assert _error({"schema": {}, "action": "mask"}).startswith("action: unknown field")
