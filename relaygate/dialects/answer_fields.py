"""An answer's top-level `usage` and `model`, found from the end of its JSON without parsing the rest.

A relayed (pass-through) answer is bytes the gateway does not otherwise need to parse: only `usage`
(tokens and cost) and `model` (renamed to the caller's name) are read. Parsing a large answer costs
most where it is numbers (a 475 KiB embeddings answer: about 1 ms), and there both sit at the end:
`..."data": [...], "model": "...", "usage": {...}}`. So the object's members are walked from its
closing brace backwards, over small values only, until both are found; just those two values are
parsed. Anywhere else (a chat answer's `model` is in front, past its `choices`) the walk gives up
early and the body is parsed whole, which is cheap for text.

JSON makes the walk exact: inside a string every `"` is escaped, so a quote preceded by an even
number of backslashes starts a string when walking backwards, and text that mentions `"usage"` is
skipped as the string it is. Walking from the end, the first of a duplicated key found is the last
one, the one a parse keeps. The walk gives up (`None`: parse the whole body) whenever it cannot be
sure: a large value in the way, or something that is not a member. It trusts the body to be JSON
between the members it reads (it is relayed as such).
"""

from __future__ import annotations

import re
from typing import NamedTuple

import orjson

_WHITESPACE = b" \t\r\n"
_SCALAR = frozenset(b"0123456789+-.eEtrufalsn")
_REVERSED_TOKENS = re.compile(rb'"(?:[^"]++|"(?=(?:\\\\)*\\(?!\\)))*+"|[{}\[\]]')
_CONTAINER_BUDGET = 1024  # bytes of one object or array the backward walk steps over (a usage object)
_TAIL = 2 * _CONTAINER_BUDGET  # the end of the body a `model` the walk can find is in
_MEMBERS = 32  # members the walk passes before it gives up
SMALL_ANSWER = 16 << 10  # below this a whole parse is as cheap as a walk: `answer_fields` is not tried
_USAGE = b"usage"
_MODEL = b"model"


class AnswerFields(NamedTuple):
    """The top-level `usage` and `model` values (None when absent), and where the `"model"` key starts."""

    usage: object
    model: object
    model_at: int  # -1 when there is no `model`


def answer_fields(body: bytes) -> AnswerFields | None:
    """`usage` and `model` of a JSON object answer as `orjson.loads(body).get(...)` would give them;
    None when the walk cannot be sure."""
    end = len(body) - 1
    while end > 0 and body[end] in _WHITESPACE:
        end -= 1
    if end <= 0 or body[0] != 123 or body[end] != 125:  # '{' ... '}'
        return None
    if body.rfind(b'"model"', max(end - _TAIL, 0)) == -1:
        return None  # no `model` near the end (a chat answer's is in front): the walk would not find it
    found = _from_the_end(body, end)
    if found is None:
        return None
    usage, model, model_at = found
    try:
        usage_value = None if usage is None else orjson.loads(usage)
        model_value = None if model is None else orjson.loads(model)
    except orjson.JSONDecodeError:
        return None
    return AnswerFields(usage_value, model_value, model_at)


def _from_the_end(body: bytes, end: int) -> tuple[bytes | None, bytes | None, int] | None:
    """Walk the members back from the closing brace at `end` until both keys are found, or all members
    are: (usage value bytes, model value bytes, model key position), None for one absent; None when unsure."""
    usage: bytes | None = None
    model: bytes | None = None
    model_at = -1
    i = _skip_back(body, end - 1)
    if i == 0:
        return usage, model, model_at  # `{}`
    for _ in range(_MEMBERS):
        start = _value_start(body, i)
        if start < 0:
            return None
        value = body[start : i + 1]
        i = _skip_back(body, start - 1)
        if i < 0 or body[i] != 58:  # ':'
            return None
        i = _skip_back(body, i - 1)
        if i < 0 or body[i] != 34:  # '"'
            return None
        key_start = _string_start(body, i)
        if key_start < 0:
            return None
        key = _key(body[key_start : i + 1])
        if key is None:
            return None
        if key == _USAGE and usage is None:
            usage = value
        elif key == _MODEL and model is None:
            model, model_at = value, key_start
        if usage is not None and model is not None:
            return usage, model, model_at
        i = _skip_back(body, key_start - 1)
        if i == 0 and body[0] == 123:
            return usage, model, model_at  # every member seen
        if i < 0 or body[i] != 44:  # ','
            return None
        i = _skip_back(body, i - 1)
        if usage is not None and i >= 0 and body[i] in (125, 93):
            return None  # `model` is not next to it (a chat answer's `choices`): a parse is cheaper than a walk
    return None


def _key(raw: bytes) -> bytes | None:
    """A key's text (escapes decoded, as a parse would)."""
    if b"\\" not in raw:
        return raw[1:-1]
    try:
        text = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return text.encode() if isinstance(text, str) else None


def _skip_back(body: bytes, i: int) -> int:
    while i >= 0 and body[i] in _WHITESPACE:
        i -= 1
    return i


def _escaped(body: bytes, quote: int) -> bool:
    """Whether the `"` at `quote` is escaped (an odd number of backslashes before it)."""
    k = quote
    while k > 0 and body[k - 1] == 92:  # '\\'
        k -= 1
    return (quote - k) % 2 == 1


def _string_start(body: bytes, end: int) -> int:
    """The opening quote of the string closing at `end`; -1 if none."""
    j = end
    while True:
        j = body.rfind(b'"', 0, j)
        if j < 0 or not _escaped(body, j):
            return j


def _value_start(body: bytes, end: int) -> int:
    """Where the value ending at `end` starts; -1 when it is too large to step over or not a value."""
    last = body[end]
    if last == 34:  # '"'
        return _string_start(body, end)
    if last in (125, 93):  # '}' ']'
        return _container_start(body, end)
    i = end
    while i > 0 and body[i] in _SCALAR:
        i -= 1
    return i + 1 if i < end else -1


def _container_start(body: bytes, end: int) -> int:
    """The opening bracket of the object or array closing at `end`, within the budget; -1 past it.

    The window before `end` is reversed and cut into strings and brackets by one regex (a reversed
    string starts at its closing quote and ends at the first quote not followed by an odd number of
    backslashes); a quote left outside every string token means a string crossed the window's edge.
    """
    floor = max(end - _CONTAINER_BUDGET, 0)
    window = body[floor : end + 1][::-1]
    depth = 0
    after = 0
    for match in _REVERSED_TOKENS.finditer(window):
        at = match.start()
        if window.find(b'"', after, at) != -1:
            return -1
        after = match.end()
        c = window[at]
        if c in (125, 93):  # '}' ']'
            depth += 1
        elif c in (123, 91):  # '{' '['
            depth -= 1
            if depth == 0:
                return end - at
    return -1
