"""A non-streaming answer read once: its usage into the request, its `model` renamed to the caller's name.

Whichever dialect: the dialect's usage reader gets the top-level `usage` value. The JSON is parsed at
most once, and not at all when a translating adapter already built it (`parsed`) or when a large
relayed body's ends give both fields away (`answer_fields`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from relaygate.context import Usage
from relaygate.dialects.answer_fields import SMALL_ANSWER, answer_fields
from relaygate.http.model_field import rename_in_body, rename_pair

_QUOTES = 512  # quotes before the `model` pair checked one by one; more, and `rename_pair` searches
UsageReader = Callable[[Any, Usage], None]  # an answer's `usage` value -> the request's usage


def read_answer(
    body: bytes, parsed: dict[str, Any] | None, read_usage: UsageReader, into: Usage, caller: str | None
) -> tuple[bytes, str | None]:
    """The body to send (its `model` renamed to `caller` when there is one) and the provider's model id.

    `parsed` is the body's parse when the adapter built the body from it. A body that is not a JSON
    object is sent as it is, and says nothing.
    """
    if body[:1] != b"{":
        return body, None
    if parsed is None and len(body) >= SMALL_ANSWER and (found := answer_fields(body)) is not None:
        read_usage(found.usage, into)
        provider = found.model
        if caller is None or not isinstance(provider, str):
            return body, None
        if provider == caller:
            return body, provider
        renamed = _rename_at(body, found.model_at, provider, caller)
        if renamed is None:
            renamed = rename_pair(body, provider, caller)
        if renamed is not None:
            return renamed, provider
        parsed = _parse(body)  # a spelling the bytes search does not know: re-serialised from the parse
        return (body, None) if parsed is None else rename_in_body(body, parsed, caller)
    if parsed is None:
        parsed = _parse(body)
        if parsed is None:
            return body, None
    read_usage(parsed.get("usage"), into)
    if caller is None:
        return body, None
    return rename_in_body(body, parsed, caller)


def _parse(body: bytes) -> dict[str, Any] | None:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _rename_at(body: bytes, at: int, provider: str, caller: str) -> bytes | None:
    """`rename_pair` when the compact pair found at `at` is its first occurrence (what it would replace),
    without searching the whole body for it; None when that is not certain."""
    exact = b'"model":' + orjson.dumps(provider)
    if not body.startswith(exact, at):
        return None
    quote = body.find(b'"', 0, at)  # an earlier occurrence starts at a quote: few before a numeric `data`
    for _ in range(_QUOTES):
        if quote == -1:
            return body[:at] + b'"model":' + orjson.dumps(caller) + body[at + len(exact) :]
        if body.startswith(exact, quote):
            return None
        quote = body.find(b'"', quote + 1, at)
    return None
