"""The `json_schema` check (for model output): the answer must be JSON, optionally inside one
```json fence, that satisfies a JSON Schema (draft 2020-12) and has the listed top-level keys.

Not a span check: a malformed answer cannot be repaired by masking part of it, so the action is
always block and `max_match_chars` is None (the whole answer is needed). It has `evaluate` and
`mask` like the text checks so the engine can run it the same way.

The schema is checked when the config loads; `$ref`s must point inside it (`#/$defs/...`): nothing is
fetched at request time. Reasons name the failing location and rule (`$.items[2]: fails type
"integer"`), never the answer's values: `jsonschema`'s own messages quote the instance.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Literal

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError, best_match
from referencing.exceptions import Unresolvable

from relaygate.guardrails.checks.base import PASSED, Evaluation, Span
from relaygate.guardrails.checks.config_fields import read_bool, read_string_list, require_fields

MAX_REASON_CHARS = 200
MAX_KEYS = 100
_FIELDS = ("schema", "keys", "allow_fenced")
_PATH_PART_CHARS = 40
_RULE_VALUE_CHARS = 60


class JsonSchemaCheck:
    """A compiled `json_schema` check."""

    __slots__ = ("action", "max_match_chars", "keys", "allow_fenced", "_validator")

    def __init__(self, validator: Draft202012Validator, keys: tuple[str, ...], allow_fenced: bool) -> None:
        self.action: Literal["block"] = "block"
        self.max_match_chars: int | None = None
        self.keys = keys
        self.allow_fenced = allow_fenced
        self._validator = validator

    def evaluate(self, text: str) -> Evaluation:
        """Whether `text` is JSON with the keys and shape the schema asks for."""
        body = _unfenced(text) if self.allow_fenced else text
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            return Evaluation(True, "output is not JSON")
        if self.keys:
            missing = [key for key in self.keys if not isinstance(document, dict) or key not in document]
            if missing:
                return Evaluation(True, _clip(f"output lacks top-level key(s): {', '.join(missing)}"))
        try:
            error = best_match(self._validator.iter_errors(document))
        except RecursionError:
            return Evaluation(True, "output nests too deeply to validate")
        except Unresolvable:
            return Evaluation(True, "the schema has a $ref that does not resolve")
        if error is None:
            return PASSED
        return Evaluation(True, _describe(error))

    def mask(self, text: str, spans: tuple[Span, ...]) -> str:
        """Unchanged: this check finds no spans (its action is always block)."""
        return text


def _unfenced(text: str) -> str:
    """The content of a text that is exactly one fenced block (```, ```json); other texts as they are.

    Prose around the fence is not stripped: a client parsing the answer as JSON would fail on it.
    """
    stripped = text.strip()
    if len(stripped) < 6 or not stripped.startswith("```") or not stripped.endswith("```"):
        return text
    first_newline = stripped.find("\n")
    if first_newline < 0 or stripped[3:first_newline].strip().lower() not in ("", "json"):
        return text
    return stripped[first_newline + 1 : -3]


def _describe(error: ValidationError) -> str:
    """Where and which rule: `$.a[0]: fails type "integer"` (the rule's value is config, not output)."""
    path = "$" + "".join(
        f"[{part}]" if isinstance(part, int) else f".{str(part)[:_PATH_PART_CHARS]}" for part in error.absolute_path
    )
    if error.validator is None:  # a `false` subschema
        return _clip(f"{path}: not allowed by the schema")
    try:
        value = orjson.dumps(error.validator_value).decode()
    except TypeError:
        value = "..."
    if len(value) > _RULE_VALUE_CHARS:
        value = value[: _RULE_VALUE_CHARS - 3] + "..."
    return _clip(f"{path}: fails {error.validator} {value}")


def _clip(reason: str) -> str:
    return reason if len(reason) <= MAX_REASON_CHARS else reason[: MAX_REASON_CHARS - 3] + "..."


def _refs(node: Any) -> Iterator[str]:
    """Every `$ref` / `$dynamicRef` string in a schema."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key in ("$ref", "$dynamicRef") and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def compile_json_schema(config: Mapping[str, Any]) -> JsonSchemaCheck:
    """A `json_schema` check from its config: `schema` (required), `keys`, `allow_fenced` (default true)."""
    require_fields(config, _FIELDS)
    schema = config.get("schema")
    if not isinstance(schema, Mapping):
        raise ValueError("schema: required, a mapping (a JSON Schema, draft 2020-12)")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        raise ValueError(f"schema: not a valid JSON Schema: {_clip(error.message)}") from None
    for ref in _refs(schema):
        if not ref.startswith("#"):
            raise ValueError(f"schema: $ref {ref!r} points outside the schema (nothing is fetched)")
    keys = tuple(read_string_list(config["keys"], "keys", MAX_KEYS, 256)) if "keys" in config else ()
    return JsonSchemaCheck(Draft202012Validator(schema), keys, read_bool(config, "allow_fenced", True))
