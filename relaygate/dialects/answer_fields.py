"""An answer's top-level `usage` and `model`, found from the ends of its JSON without parsing the rest.

A relayed (pass-through) answer is bytes the gateway does not otherwise need to parse: only `usage`
(tokens and cost) and `model` (renamed to the caller's name) are read. Both dialects put `usage` last or
nearly (OpenAI: after `choices`/`data`; Anthropic: after `content`) and `model` either just before it
(embeddings) or among the first members (chat). So the object's members are walked from its closing
brace backwards, and if need be from its opening brace forwards, over small values only; just the
two values found are parsed. A 475 KiB embeddings answer costs two short walks instead of a parse.

JSON makes the walk exact: inside a string every `"` is escaped, so a quote preceded by an even
number of backslashes ends (or, walking backwards, starts) a string, and text that mentions
`"usage"` is skipped as the string it is. The walk gives up (`None`: parse the whole body) whenever
it cannot be sure: a large value in the way, a member it does not recognise, or a `model` found
from the front that might be repeated later (JSON's last duplicate wins, as orjson's parse would).
The walk trusts the body to be JSON between the members it reads (it was relayed as such).
"""

from __future__ import annotations

import re

import orjson

_WHITESPACE = b" \t\r\n"
_SCALAR = frozenset(b"0123456789+-.eEtrufalsn")
_FORWARD_SCALAR = re.compile(rb"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null")
_CONTAINER_BUDGET = 1024  # bytes of one object or array the backward walk steps over (a usage object)
_MEMBERS = 32  # members either walk passes before it gives up
SMALL_ANSWER = 16 << 10  # below this a whole parse is as cheap as a walk: `answer_fields` is not tried
_USAGE = b"usage"
_MODEL = b"model"
_ABSENT = object()


def answer_fields(body: bytes) -> tuple[object, object] | None:
    """The top-level `usage` and `model` values of a JSON object answer (None for either when absent),
    as `orjson.loads(body).get(...)` would give them; None when the walk cannot be sure."""
    end = len(body) - 1
    while end > 0 and body[end] in _WHITESPACE:
        end -= 1
    if end <= 0 or body[0] != 123 or body[end] != 125:  # '{' ... '}'
        return None
    found = _from_the_end(body, end)
    if found is None:
        return None
    usage, model, whole = found
    if usage is _ABSENT and not whole:
        return None  # not among the last members: a parse says whether there is one
    if model is _ABSENT and not whole:
        model = _model_from_the_front(body)
        if model is None:
            return None
    try:
        usage_value = None if usage is _ABSENT else orjson.loads(usage)  # type: ignore[arg-type]
        model_value = None if model is _ABSENT else orjson.loads(model)  # type: ignore[arg-type]
    except orjson.JSONDecodeError:
        return None
    return usage_value, model_value


def _from_the_end(body: bytes, end: int) -> tuple[object, object, bool] | None:
    """Walk the members back from the closing brace at `end`: (usage bytes, model bytes, whether every
    member was seen), `_ABSENT` for one not seen. It stops once both are found, or once `usage` is and
    an object or array comes next (`model` is then looked for from the front); None when unsure."""
    usage: object = _ABSENT
    model: object = _ABSENT
    i = _skip_back(body, end - 1)
    if i == 0:
        return usage, model, True  # `{}`
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
        if key == _USAGE and usage is _ABSENT:
            usage = value
        elif key == _MODEL and model is _ABSENT:
            model = value
        i = _skip_back(body, key_start - 1)
        if i == 0 and body[0] == 123:
            return usage, model, True
        if i < 0 or body[i] != 44:  # ','
            return None
        i = _skip_back(body, i - 1)
        if usage is not _ABSENT and (model is not _ABSENT or (i >= 0 and body[i] in (125, 93))):
            return usage, model, False
    return None


def _model_from_the_front(body: bytes) -> bytes | None:
    """The `model` value's bytes among the first members, when it is certainly the only top-level one."""
    if body.count(b'"model"') != 1 or b"\\u" in body:
        return None  # another `model` (or one spelled with escapes) may follow: a parse decides
    i = _skip(body, 1)
    for _ in range(_MEMBERS):
        if i >= len(body) or body[i] != 34:  # '"'
            return None
        key_end = _string_end(body, i)
        if key_end < 0:
            return None
        key = _key(body[i : key_end + 1])
        i = _skip(body, key_end + 1)
        if key is None or i >= len(body) or body[i] != 58:  # ':'
            return None
        i = _skip(body, i + 1)
        if i >= len(body):
            return None
        if body[i] == 34:
            value_end = _string_end(body, i)
        else:
            match = _FORWARD_SCALAR.match(body, i)
            value_end = match.end() - 1 if match is not None else -1  # objects and arrays: give up
        if value_end < 0:
            return None
        if key == _MODEL:
            return body[i : value_end + 1]
        i = _skip(body, value_end + 1)
        if i >= len(body) or body[i] != 44:  # ','
            return None
        i = _skip(body, i + 1)
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


def _skip(body: bytes, i: int) -> int:
    while i < len(body) and body[i] in _WHITESPACE:
        i += 1
    return i


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


def _string_end(body: bytes, start: int) -> int:
    """The closing quote of the string opening at `start`; -1 if none."""
    j = start
    while True:
        j = body.find(b'"', j + 1)
        if j < 0 or not _escaped(body, j):
            return j


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
    """The opening bracket of the object or array closing at `end`, within the budget; -1 past it."""
    depth = 0
    i = end
    floor = max(end - _CONTAINER_BUDGET, 0)
    while i >= floor:
        c = body[i]
        if c == 34:  # a string inside: step over it whole
            i = _string_start(body, i)
            if i < 0:
                return -1
        elif c in (125, 93):
            depth += 1
        elif c in (123, 91):
            depth -= 1
            if depth == 0:
                return i
        i -= 1
    return -1
