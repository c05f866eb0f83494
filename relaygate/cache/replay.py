"""What a cache hit sends (§4.6 points 6 and 8): the stored answer under a fresh identity.

- `replay_json`: the stored body with a new `id` (and `created` for OpenAI); usage kept as first
  reported, since clients rely on it.
- `replay_stream`: the recorded events verbatim (so reasoning, tool-call deltas and thinking blocks
  survive), with one new id/created per replay and OpenAI's usage chunk dropped or synthesised to
  match the new request's `stream_options.include_usage`; or, for an entry stored from a
  non-streaming answer, a stream synthesised from its body (synthesise.py).

Identity is swapped in the raw bytes: the members `"id": "<old id>"` and `"created": <old>` get the
new values. Inside a JSON string literal quotes are escaped, so neither pattern can match model
output; every other byte of a recorded event is relayed as recorded. Should a pattern not be found
(an encoder that escaped the id), the value is re-serialised instead. A chunk without an id of its
own (Azure's `prompt_filter_results` chunk: `"id": ""`) is relayed untouched.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import orjson

from relaygate.cache.entry import CacheEntry, EntryKind
from relaygate.cache.sse import DONE_DATA, is_done, parse_event
from relaygate.cache.synthesise import openai_usage_chunk, synthesise_anthropic, synthesise_openai

_ID_PREFIX: dict[EntryKind, str] = {
    "openai_chat": "chatcmpl-",
    "openai_completions": "cmpl-",
    "anthropic_messages": "msg_",
}


def fresh_id(kind: EntryKind) -> str:
    """A new response id in the style of the kind's API."""
    prefix = _ID_PREFIX.get(kind)
    if prefix is None:
        raise ValueError(f"{kind} answers carry no response id")
    token = uuid.uuid4().hex
    return prefix + (token[:24] if kind == "anthropic_messages" else token)


def _now() -> int:
    """Unix seconds for `created` (a function so tests can pin it)."""
    return int(time.time())


def _swap_id(raw: bytes, old: str, new: str) -> bytes | None:
    """`raw` with the member `"id": "<old>"` set to `new`; None when not found as written."""
    pattern = re.compile(rb'("id"\s*:\s*)' + re.escape(orjson.dumps(old)))
    swapped, count = pattern.subn(lambda match: match[1] + orjson.dumps(new), raw)
    return swapped if count else None


def _swap_created(raw: bytes, old: Any, new: int) -> bytes | None:
    """`raw` with the member `"created": <old>` set to `new`; None when not found as written."""
    if not isinstance(old, int) or isinstance(old, bool):
        return raw
    pattern = re.compile(rb'("created"\s*:\s*)' + str(old).encode() + rb"(?![0-9.eE])")
    swapped, count = pattern.subn(rb"\g<1>" + str(new).encode(), raw)
    return swapped if count else None


def _with_identity(raw: bytes, doc: dict[str, Any], new_id: str, created: int | None) -> bytes:
    """`raw` (whose parsed form is `doc`) under the new id and created, other bytes untouched when possible."""
    old_id = doc.get("id")
    if not isinstance(old_id, str) or not old_id:  # e.g. Azure's prompt_filter_results chunk: not the answer's
        return raw
    swapped = _swap_id(raw, old_id, new_id)
    if swapped is not None and created is not None:
        swapped = _swap_created(swapped, doc.get("created"), created)
    if swapped is not None:
        return swapped
    return _redump(raw, doc, new_id, created)


def _redump(raw: bytes, doc: dict[str, Any], new_id: str, created: int | None) -> bytes:
    """The fallback: re-serialise with the new identity, keeping the SSE framing of `raw` if any."""
    doc = {**doc, "id": new_id}
    if created is not None and "created" in doc:
        doc["created"] = created
    if raw.lstrip().startswith((b"{", b"[")):
        return orjson.dumps(doc)
    name = parse_event(raw).name
    framing = b"event: " + name.encode() + b"\n" if name is not None else b""
    return framing + b"data: " + orjson.dumps(doc) + b"\n\n"


def _body(entry: CacheEntry) -> dict[str, Any]:
    try:
        body = orjson.loads(entry.body)
    except orjson.JSONDecodeError:
        raise ValueError("cache entry body is not JSON") from None
    if not isinstance(body, dict):
        raise ValueError("cache entry body is not a JSON object")
    return body


def replay_json(entry: CacheEntry) -> bytes:
    """The body a non-streaming hit returns: the stored one with a fresh id (and `created` for OpenAI)."""
    if entry.kind == "json":
        return entry.body
    body = _body(entry)
    created = _now() if entry.kind != "anthropic_messages" else None
    return _with_identity(entry.body, body, fresh_id(entry.kind), created)


def replay_stream(entry: CacheEntry, *, include_usage: bool) -> list[bytes]:
    """The SSE events a streaming hit sends; ValueError for a `json` entry (those endpoints never stream)."""
    if entry.kind == "json":
        raise ValueError("a json cache entry cannot be replayed as a stream")
    new_id = fresh_id(entry.kind)
    if entry.kind == "anthropic_messages":
        if entry.events is None:
            return synthesise_anthropic(_body(entry), message_id=new_id)
        return [_anthropic_event(raw, new_id) for raw in entry.events]
    chat = entry.kind == "openai_chat"
    created = _now()
    if entry.events is None:
        return synthesise_openai(
            _body(entry), chat=chat, stream_id=new_id, created=created, include_usage=include_usage
        )
    return _replay_openai(entry, chat=chat, new_id=new_id, created=created, include_usage=include_usage)


def _anthropic_event(raw: bytes, new_id: str) -> bytes:
    """A recorded Anthropic event; only `message_start` carries the id (as `message.id`)."""
    event = parse_event(raw)
    if event.name not in (None, "message_start") or event.data is None or b"message_start" not in event.data:
        return raw
    try:
        payload = orjson.loads(event.data)
    except orjson.JSONDecodeError:
        return raw
    message = payload.get("message") if isinstance(payload, dict) else None
    if not isinstance(message, dict) or payload.get("type") != "message_start":
        return raw
    old_id = message.get("id")
    swapped = _swap_id(raw, old_id, new_id) if isinstance(old_id, str) and old_id else raw
    if swapped is not None:
        return swapped
    payload = {**payload, "message": {**message, "id": new_id}}
    return b"event: message_start\ndata: " + orjson.dumps(payload) + b"\n\n"


def _is_usage_chunk(chunk: dict[str, Any]) -> bool:
    """OpenAI's `stream_options.include_usage` chunk: no choices, a usage object."""
    return chunk.get("choices") == [] and isinstance(chunk.get("usage"), dict)


def _replay_openai(entry: CacheEntry, *, chat: bool, new_id: str, created: int, include_usage: bool) -> list[bytes]:
    """The recorded chunks under the new identity, the usage chunk kept, dropped or added as asked."""
    assert entry.events is not None
    out: list[bytes] = []
    had_usage = False
    for raw in entry.events:
        if is_done(raw):
            if include_usage and not had_usage:
                usage = openai_usage_chunk(_body(entry), chat=chat, stream_id=new_id, created=created)
                if usage is not None:
                    out.append(usage)
            out.append(raw)
            continue
        data = parse_event(raw).data
        try:
            chunk = orjson.loads(data) if data is not None and data != DONE_DATA else None
        except orjson.JSONDecodeError:
            chunk = None
        if not isinstance(chunk, dict):
            out.append(raw)
            continue
        if _is_usage_chunk(chunk):
            if not include_usage:
                continue
            had_usage = True
        out.append(_with_identity(raw, chunk, new_id, created))
    return out
