"""`read_answer` gives what a whole parse gave: the same usage, body bytes and provider model id."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from relaygate.context import Usage
from relaygate.dialects.answer import UsageReader, read_answer
from relaygate.dialects.anthropic_messages.usage import read_messages_usage
from relaygate.dialects.openai.usage import read_usage
from relaygate.http.model_field import rename_in_body
from tests.dialects.test_answer_fields import TRICKY, chat, embeddings, spellings

CALLER = "openai-main/embedder"


def by_parse(body: bytes, reader: UsageReader, caller: str | None) -> tuple[bytes, str | None, Usage]:
    """What the exchange did before: parse, read usage, rename."""
    usage = Usage()
    provider = None
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        parsed = None
    if body[:1] == b"{" and isinstance(parsed, dict):
        reader(parsed.get("usage"), usage)
        if caller is not None:
            body, provider = rename_in_body(body, parsed, caller)
    return body, provider, usage


def read(body: bytes, reader: UsageReader, caller: str | None, parsed: Any = None) -> tuple[bytes, str | None, Usage]:
    usage = Usage()
    out, provider = read_answer(body, parsed, reader, usage, caller)
    return out, provider, usage


BODIES = [
    *spellings(embeddings(16)),
    *spellings(embeddings(16, model=CALLER)),
    *[orjson.dumps(chat(text, pad=20_000)) for text in TRICKY],
    *spellings(chat("short")),
    orjson.dumps({**embeddings(16), "model": 'we"ird\\model'}),
    json.dumps({**embeddings(16), "model": "caf\u00e9"}).encode(),  # \\u00e9 in the id: found by the parse
    b'{"truncated": [1, 2',
    b"[1, 2, 3]",
    b"",
    b'{"data":["' + b"x" * 20_000 + b'"],"model":3,"usage":{"prompt_tokens":2}}',
]


@pytest.mark.parametrize("caller", [CALLER, None])
@pytest.mark.parametrize("index", range(len(BODIES)))
def test_the_same_as_a_parse(index: int, caller: str | None) -> None:
    body = BODIES[index]
    assert read(body, read_usage, caller) == by_parse(body, read_usage, caller)


def test_a_translated_answer_is_not_parsed_again() -> None:
    built = chat("hello")
    body = orjson.dumps(built)
    assert read(body, read_usage, CALLER, parsed=built) == by_parse(body, read_usage, CALLER)
    # what it reads is the object handed over (a stand-in body shows no parse happened)
    out, provider, usage = read(b"{}", read_usage, None, parsed={"usage": {"prompt_tokens": 4}, "model": "m"})
    assert (out, provider, usage.input_tokens) == (b"{}", None, 4)


def test_messages_answers_read_with_the_messages_reader() -> None:
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": [{"type": "text", "text": "t" * 20_000}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 3, "cache_read_input_tokens": 5, "output_tokens": 7},
    }
    body = orjson.dumps(message)
    assert read(body, read_messages_usage, "anthropic/claude") == by_parse(
        body, read_messages_usage, "anthropic/claude"
    )
    assert read(body, read_messages_usage, None)[2].input_tokens == 8
