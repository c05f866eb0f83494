"""An answer's `model` field, renamed to the name the caller used (`account/integration`).

Callers name models as the gateway does; the provider's own id (`gpt-4o-2024-08-06`) is reported in
the `x-tfy-provider-model` header and the log row instead. Renaming works on bytes: the `"model": "<id>"`
pair is found once (the body is parsed anyway for usage; in a stream, in the first events) and
replaced with `bytes.replace`, so the rest of an answer stays byte for byte as the upstream sent it and
a stream is never re-parsed per chunk. Inside a JSON string a quote is escaped, so the pair cannot
match text the model wrote.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import orjson

from relaygate.context import Usage

_KEY = b'"model"'
_COMPACT = b'"model":"'
_MODEL_PAIR = re.compile(rb'"model"\s*:\s*"((?:[^"\\]|\\.)*)"')


def _spellings(data: bytes) -> Iterator[tuple[bytes, str]]:
    """Each distinct `"model": "<value>"` pair in `data`, in order of first appearance (lazily: callers stop
    at the one they want): the exact bytes and the decoded value.

    A burst stream's first bytes hold every event, each with the same pair: once a spelling is found,
    all its occurrences are dropped from what is left to search (one `bytes.replace`), so a stream with
    one spelling costs one search, one match and one decode. (Dropping a whole `"model": "..."` pair
    cannot join its neighbours into a new one: in JSON it sits between `{` or `,` and `,` or `}`.)
    """
    rest = data
    while (at := rest.find(_KEY)) >= 0:
        match = _MODEL_PAIR.match(rest, at)
        if match is None:
            rest = rest[at + len(_KEY) :]
            continue
        exact = match.group(0)
        try:
            value = orjson.loads(b'"' + match.group(1) + b'"')
        except orjson.JSONDecodeError:
            value = None
        if isinstance(value, str):
            yield exact, value
        rest = rest[match.end() :].replace(exact, b"")


def _one_spelling(data: bytes) -> list[tuple[bytes, str]] | None:
    """The usual stream in one step: up to the end of the first event with a `model`, every `"model"` is
    the same compact pair without escapes. A paced stream's first bytes end there anyway; a burst's
    later events are not searched (they are renamed all the same). None otherwise: `_spellings` decides."""
    at = data.find(_COMPACT)
    if at < 0:
        return None
    end = data.find(b'"', at + len(_COMPACT))
    raw = data[at + len(_COMPACT) : end]
    if end < 0 or not raw or b"\\" in raw:
        return None
    event_end = data.find(b"\n\n", end)
    head = data if event_end < 0 else data[:event_end]
    exact = data[at : end + 1]
    if head.count(_KEY) != 1:
        return None
    try:
        value = orjson.loads(b'"' + raw + b'"')
    except orjson.JSONDecodeError:
        return None
    return [(exact, value)] if isinstance(value, str) else None


def rename_in_body(body: bytes, parsed: dict[str, Any], caller: str) -> tuple[bytes, str | None]:
    """`body` (whose parse is `parsed`) with its top-level `model` set to `caller`, and the provider's id.

    The pair is replaced in place when found (the usual case); otherwise the body is re-serialised.
    """
    provider = parsed.get("model")
    if not isinstance(provider, str) or provider == caller:
        return body, provider if isinstance(provider, str) else None
    renamed = rename_pair(body, provider, caller)
    if renamed is not None:
        return renamed, provider
    parsed["model"] = caller
    return orjson.dumps(parsed), provider


def rename_pair(body: bytes, provider: str, caller: str) -> bytes | None:
    """`body` with its first `"model": <provider>` pair set to `caller`; None when no spelling of it is found
    (the body must then be re-serialised from its parse)."""
    replacement = b'"model":' + orjson.dumps(caller)
    written = orjson.dumps(provider)
    for exact in (b'"model":' + written, b'"model": ' + written):  # compact, or Python's json.dumps
        at = body.find(exact)
        if at >= 0:
            return body[:at] + replacement + body[at + len(exact) :]
    for exact, value in _spellings(body):  # other spacing or escaping
        if value == provider:
            return body.replace(exact, replacement, 1)
    return None


class StreamRenamer:
    """An SSE filter whose output has the stream's `model` pairs renamed (wraps the attempt's filter).

    Built from the first bytes sent, which hold the preamble and the first content event (so every
    spelling of the stream's model: Azure's leading prompt-filter chunk says `"model": ""`); usage and
    error reading stay the wrapped filter's.
    """

    __slots__ = ("_inner", "_old", "_new")

    def __init__(self, inner: Any, old: tuple[bytes, ...], new: bytes) -> None:
        self._inner = inner
        self._old = old
        self._new = new

    @property
    def usage(self) -> Usage:
        return self._inner.usage  # type: ignore[no-any-return]

    @usage.setter
    def usage(self, value: Usage) -> None:
        self._inner.usage = value

    @property
    def error(self) -> dict[str, object] | None:
        return self._inner.error  # type: ignore[no-any-return]

    @error.setter
    def error(self, value: dict[str, object] | None) -> None:
        self._inner.error = value

    def rename(self, out: bytes) -> bytes:
        for old in self._old:
            out = out.replace(old, self._new)  # one pass; with nothing to replace, `out` itself comes back
        return out

    def feed(self, chunk: bytes) -> bytes:
        return self.rename(self._inner.feed(chunk))

    def flush(self) -> bytes:
        return self.rename(self._inner.flush())


def stream_renamer(first: bytes, inner: Any, caller: str) -> tuple[StreamRenamer | None, str | None]:
    """A renaming filter for a stream whose first bytes are `first`, and the provider's id (the first
    non-empty `model`; None when there is none). No filter when nothing needs renaming."""
    old: list[bytes] = []
    provider: str | None = None
    for exact, value in _one_spelling(first) or _spellings(first):
        if provider is None and value:
            provider = value
        if value != caller:
            old.append(exact)
    if not old:
        return None, provider
    return StreamRenamer(inner, tuple(old), b'"model":' + orjson.dumps(caller)), provider
