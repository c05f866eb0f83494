"""A stored answer: the assembled JSON body, plus the recorded events when it came from a stream.

Stored as one byte string: a 1-byte format version, then zlib (level 1: cheap to write on the
request path's background task, and model output still shrinks 3-5x) over orjson. Byte fields
travel as UTF-8 text when they all are (always, for JSON and SSE), else as base64, so `encode` never
fails on odd upstream bytes. `decode` raises ValueError for anything that is not exactly such a
value (truncated, another version, wrong field types, a decompression bomb), so a caller reading a
shared store needs to handle exactly one failure.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from dataclasses import dataclass
from typing import Any, Literal, get_args

import orjson

EntryKind = Literal["openai_chat", "openai_completions", "anthropic_messages", "json"]
ENTRY_KINDS: frozenset[str] = frozenset(get_args(EntryKind))
FORMAT_VERSION = 1
MAX_DECODED_BYTES = 64 * 1024 * 1024  # far above any sane max_entry_bytes; bounds a hostile value's inflation
_ZLIB_LEVEL = 1


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """One cached answer, as produced by request `request_id` at `created` (unix seconds)."""

    kind: EntryKind  # json = any other endpoint (embeddings, rerank, ...): served only as JSON, never streamed
    body: bytes  # the non-streaming JSON answer, exactly as a non-stream caller gets it
    events: tuple[bytes, ...] | None  # each whole SSE event as relayed (with the usage chunk and [DONE]), if streamed
    created: float
    request_id: str
    cost_usd: float  # what the original request cost: a hit reports it as saved
    content_type: str  # of `body`

    def encode(self) -> bytes:
        """The stored form: version byte + zlib(orjson(fields))."""
        raw = [self.body, *(self.events or ())]
        as_text = _all_utf8(raw)
        doc = {
            "kind": self.kind,
            "enc": "utf8" if as_text else "b64",
            "body": _pack(self.body, as_text),
            "events": None if self.events is None else [_pack(e, as_text) for e in self.events],
            "created": self.created,
            "request_id": self.request_id,
            "cost_usd": self.cost_usd,
            "content_type": self.content_type,
        }
        return bytes((FORMAT_VERSION,)) + zlib.compress(orjson.dumps(doc), _ZLIB_LEVEL)

    @classmethod
    def decode(cls, data: bytes) -> CacheEntry:
        """The entry `encode` produced; ValueError for anything else."""
        try:
            return _decode(data)
        except ValueError:
            raise
        except Exception as exc:  # a store must never crash the request path with a surprise type
            raise ValueError(f"corrupt cache entry: {exc!r}") from None


def _all_utf8(chunks: list[bytes]) -> bool:
    """Whether every chunk is valid UTF-8 (then it can travel as JSON text)."""
    try:
        for chunk in chunks:
            chunk.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _pack(data: bytes, as_text: bool) -> str:
    return data.decode("utf-8") if as_text else base64.b64encode(data).decode("ascii")


def _unpack(value: Any, as_text: bool) -> bytes:
    if not isinstance(value, str):
        raise ValueError("corrupt cache entry: a byte field is not a string")
    if as_text:
        return value.encode("utf-8")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"corrupt cache entry: {exc}") from None


def _inflate(payload: bytes) -> bytes:
    """zlib-decompress at most MAX_DECODED_BYTES; ValueError when corrupt, truncated or larger."""
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(payload, MAX_DECODED_BYTES)
    except zlib.error as exc:
        raise ValueError(f"corrupt cache entry: {exc}") from None
    if inflater.unconsumed_tail:
        raise ValueError("corrupt cache entry: larger than MAX_DECODED_BYTES when inflated")
    if not inflater.eof or inflater.unused_data:
        raise ValueError("corrupt cache entry: truncated or trailing data")
    return out


def _decode(data: bytes) -> CacheEntry:
    if not isinstance(data, bytes | bytearray | memoryview) or len(data) < 2:
        raise ValueError("corrupt cache entry: too short")
    data = bytes(data)
    if data[0] != FORMAT_VERSION:
        raise ValueError(f"unknown cache entry format version {data[0]}")
    doc = orjson.loads(_inflate(data[1:]))
    if not isinstance(doc, dict):
        raise ValueError("corrupt cache entry: not an object")
    kind, enc, events = doc.get("kind"), doc.get("enc"), doc.get("events")
    created, cost, request_id, content_type = (
        doc.get("created"),
        doc.get("cost_usd"),
        doc.get("request_id"),
        doc.get("content_type"),
    )
    if kind not in ENTRY_KINDS or enc not in ("utf8", "b64"):
        raise ValueError("corrupt cache entry: unknown kind or encoding")
    if not (isinstance(request_id, str) and isinstance(content_type, str)):
        raise ValueError("corrupt cache entry: wrong field types")
    if events is not None and not isinstance(events, list):
        raise ValueError("corrupt cache entry: events is not a list")
    as_text = enc == "utf8"
    return CacheEntry(
        kind=kind,
        body=_unpack(doc.get("body"), as_text),
        events=None if events is None else tuple(_unpack(e, as_text) for e in events),
        created=_number(created),
        request_id=request_id,
        cost_usd=_number(cost),
        content_type=content_type,
    )


def _number(value: Any) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError("corrupt cache entry: a number field is not a number")
    return float(value)
