"""A stored entry survives encode/decode exactly, and anything else decodes to ValueError only."""

from __future__ import annotations

import zlib

import orjson
import pytest

from relaygate.cache.entry import FORMAT_VERSION, CacheEntry
from tests.cache.streams import CHAT_ASSEMBLED, CHAT_EVENTS


def entry(**overrides: object) -> CacheEntry:
    fields: dict[str, object] = {
        "kind": "openai_chat",
        "body": orjson.dumps(CHAT_ASSEMBLED),
        "events": CHAT_EVENTS,
        "created": 1_700_000_123.5,
        "request_id": "req-abc",
        "cost_usd": 0.000123,
        "content_type": "application/json",
    }
    fields.update(overrides)
    return CacheEntry(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "original",
    [
        entry(),
        entry(events=None),
        entry(events=()),
        entry(kind="json", body=b'{"data":[{"embedding":[0.1,-0.2]}]}', events=None, cost_usd=0),
        entry(kind="anthropic_messages", body='{"t":"h\u00e9llo \u2603 \U0001f600"}'.encode()),
        entry(body=b"\xff\xfe not utf-8", events=(b"data: \x80\n\n",)),  # odd upstream bytes still round-trip
    ],
    ids=["stream", "json-body", "no-events", "json-kind", "unicode", "binary"],
)
def test_round_trip_is_exact(original: CacheEntry) -> None:
    encoded = original.encode()
    assert encoded[0] == FORMAT_VERSION
    decoded = CacheEntry.decode(encoded)
    assert decoded == original
    assert isinstance(decoded.created, float) and isinstance(decoded.cost_usd, float)


def test_encoded_entry_is_compressed() -> None:
    big = entry(body=orjson.dumps({"text": "the same sentence again. " * 400}))
    assert len(big.encode()) < len(big.body) / 5


def _framed(doc: object) -> bytes:
    return bytes((FORMAT_VERSION,)) + zlib.compress(orjson.dumps(doc))


GOOD = entry().encode()
VALID_DOC = orjson.loads(zlib.decompress(GOOD[1:]))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x01",
        bytes((2,)) + GOOD[1:],  # an unknown format version
        GOOD[:-5],  # truncated
        GOOD + b"trailing",
        GOOD[:1] + b"not zlib at all",
        b"\x01" + zlib.compress(b"not json"),
        _framed([1, 2, 3]),
        _framed({**VALID_DOC, "kind": "images"}),
        _framed({**VALID_DOC, "enc": "rot13"}),
        _framed({**VALID_DOC, "body": 42}),
        _framed({**VALID_DOC, "events": "data: x"}),
        _framed({**VALID_DOC, "events": [1]}),
        _framed({**VALID_DOC, "created": "yesterday"}),
        _framed({**VALID_DOC, "cost_usd": True}),
        _framed({**VALID_DOC, "request_id": None}),
        _framed({k: v for k, v in VALID_DOC.items() if k != "content_type"}),
        _framed({**VALID_DOC, "enc": "b64", "body": "!!!not base64"}),
        "a str, not bytes",
    ],
)
def test_anything_corrupt_raises_value_error(data: bytes) -> None:
    with pytest.raises(ValueError):
        CacheEntry.decode(data)


def test_a_decompression_bomb_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("relaygate.cache.entry.MAX_DECODED_BYTES", 1024)
    with pytest.raises(ValueError, match="MAX_DECODED_BYTES"):
        CacheEntry.decode(entry(body=b"0" * 4096).encode())
