"""Recorded streams and stored bodies shaped like the real APIs' output, shared by the cache tests.

Some events are written with spaces after separators (as Python's json.dumps does, and as some
providers do) and some compact (as OpenAI does), so replay is checked against both spellings.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import orjson

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "golden"

CHAT_ID = "chatcmpl-rec123"
COMPLETION_ID = "cmpl-rec456"
MESSAGE_ID = "msg_01RecordedXYZ"
CREATED = 1_700_000_000
CHAT_USAGE = {
    "prompt_tokens": 82,
    "completion_tokens": 61,
    "total_tokens": 143,
    "completion_tokens_details": {"reasoning_tokens": 12},
}


def data(payload: Any, *, spaced: bool = False) -> bytes:
    """An OpenAI-framed event."""
    text = json.dumps(payload).encode() if spaced else orjson.dumps(payload)
    return b"data: " + text + b"\n\n"


def named(payload: dict[str, Any], *, spaced: bool = True) -> bytes:
    """An Anthropic-framed event (the name is the payload's type)."""
    text = json.dumps(payload).encode() if spaced else orjson.dumps(payload)
    return b"event: " + payload["type"].encode() + b"\ndata: " + text + b"\n\n"


DONE = b"data: [DONE]\n\n"


def chat_chunk(delta: dict[str, Any] | None = None, *, finish: str | None = None, index: int = 0) -> dict[str, Any]:
    return {
        "id": CHAT_ID,
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": "deepseek-reasoner",
        "system_fingerprint": "fp_7e0991cad4",
        "choices": [{"index": index, "delta": delta or {}, "logprobs": None, "finish_reason": finish}],
        "usage": None,
    }


def tool_piece(index: int, arguments: str, **start: Any) -> dict[str, Any]:
    piece: dict[str, Any] = {"index": index, **start, "function": {"arguments": arguments}}
    if "name" in start:
        piece["function"]["name"] = piece.pop("name")
    return {"tool_calls": [piece]}


# OpenAI chat, recorded with stream_options.include_usage: reasoning, text, then two parallel tool calls
# whose arguments arrive in many pieces (the second one's pieces interleaved with the first one's tail).
# One content piece quotes the stream's own id and a `"created": ...` member: replay must not touch it.
QUOTED = f'(the log said "{CHAT_ID}" and "created": {CREATED})'
CHAT_EVENTS: tuple[bytes, ...] = (
    data(chat_chunk({"role": "assistant", "content": ""})),
    data(chat_chunk({"reasoning_content": "The user wants "})),
    data(chat_chunk({"reasoning_content": "weather for two cities; "}), spaced=True),
    data(chat_chunk({"reasoning_content": "call the tool twice."})),
    data(chat_chunk({"content": "Checking both cities "})),
    data(chat_chunk({"content": QUOTED})),
    data(chat_chunk(tool_piece(0, "", id="call_paris", type="function", name="get_weather"))),
    data(chat_chunk(tool_piece(0, '{"ci'))),
    data(chat_chunk(tool_piece(0, 'ty": "Pa'))),
    data(chat_chunk(tool_piece(1, "", id="call_tokyo", type="function", name="get_weather")), spaced=True),
    data(chat_chunk(tool_piece(0, 'ris", "unit"'))),
    data(chat_chunk(tool_piece(1, '{"city": '))),
    data(chat_chunk(tool_piece(0, ': "celsius"}'))),
    data(chat_chunk(tool_piece(1, '"Tokyo"}'))),
    data(chat_chunk(finish="tool_calls")),
    data({**chat_chunk(), "choices": [], "usage": CHAT_USAGE}),
    DONE,
)

CHAT_ASSEMBLED: dict[str, Any] = {
    "id": CHAT_ID,
    "object": "chat.completion",
    "created": CREATED,
    "model": "deepseek-reasoner",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Checking both cities " + QUOTED,
                "reasoning_content": "The user wants weather for two cities; call the tool twice.",
                "tool_calls": [
                    {
                        "id": "call_paris",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris", "unit": "celsius"}'},
                    },
                    {
                        "id": "call_tokyo",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Tokyo"}'},
                    },
                ],
            },
            "logprobs": None,
            "finish_reason": "tool_calls",
        }
    ],
    "usage": CHAT_USAGE,
    "system_fingerprint": "fp_7e0991cad4",
}

# The same answer recorded without include_usage: no usage chunk, chunks without a usage member.
CHAT_EVENTS_NO_USAGE = tuple(
    data({k: v for k, v in orjson.loads(raw[6:]).items() if k != "usage"})
    for raw in CHAT_EVENTS
    if raw != DONE and orjson.loads(raw[6:])["choices"]
) + (DONE,)


def completion_chunk(text: str, *, index: int = 0, finish: str | None = None) -> dict[str, Any]:
    return {
        "id": COMPLETION_ID,
        "object": "text_completion",
        "created": CREATED,
        "model": "gpt-3.5-turbo-instruct",
        "choices": [{"text": text, "index": index, "logprobs": None, "finish_reason": finish}],
    }


COMPLETION_USAGE = {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14}
# Legacy completions with n=2: the two choices' pieces interleave.
COMPLETION_EVENTS: tuple[bytes, ...] = (
    data(completion_chunk("\n\nRoses", index=0)),
    data(completion_chunk("\n\nViolets", index=1)),
    data(completion_chunk(" are red", index=0)),
    data(completion_chunk(" are blue", index=1)),
    data(completion_chunk("", index=1, finish="stop")),
    data(completion_chunk(",", index=0)),
    data(completion_chunk("", index=0, finish="length")),
    data({**completion_chunk(""), "choices": [], "usage": COMPLETION_USAGE}),
    DONE,
)

COMPLETION_ASSEMBLED: dict[str, Any] = {
    "id": COMPLETION_ID,
    "object": "text_completion",
    "created": CREATED,
    "model": "gpt-3.5-turbo-instruct",
    "choices": [
        {"text": "\n\nRoses are red,", "index": 0, "logprobs": None, "finish_reason": "length"},
        {"text": "\n\nViolets are blue", "index": 1, "logprobs": None, "finish_reason": "stop"},
    ],
    "usage": COMPLETION_USAGE,
}


def block_delta(index: int, delta: dict[str, Any]) -> bytes:
    return named({"type": "content_block_delta", "index": index, "delta": delta})


SIGNATURE = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"
ANTHROPIC_START_USAGE = {
    "input_tokens": 472,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 128,
    "output_tokens": 2,
}
# Anthropic Messages with extended thinking: a thinking block with its signature, text, then a tool_use
# whose input arrives as input_json_delta pieces (the first one empty, as the API sends it); a ping too.
ANTHROPIC_EVENTS: tuple[bytes, ...] = (
    named(
        {
            "type": "message_start",
            "message": {
                "id": MESSAGE_ID,
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-5-20250929",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": ANTHROPIC_START_USAGE,
            },
        },
        spaced=False,
    ),
    named({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
    named({"type": "ping"}),
    block_delta(0, {"type": "thinking_delta", "thinking": "The user asks about San Francisco. "}),
    block_delta(0, {"type": "thinking_delta", "thinking": "I should call get_weather."}),
    block_delta(0, {"type": "signature_delta", "signature": SIGNATURE}),
    named({"type": "content_block_stop", "index": 0}),
    named({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}),
    block_delta(1, {"type": "text_delta", "text": "Let me check "}),
    block_delta(1, {"type": "text_delta", "text": "the weather."}),
    named({"type": "content_block_stop", "index": 1}),
    named(
        {
            "type": "content_block_start",
            "index": 2,
            "content_block": {
                "type": "tool_use",
                "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
                "name": "get_weather",
                "input": {},
            },
        }
    ),
    block_delta(2, {"type": "input_json_delta", "partial_json": ""}),
    block_delta(2, {"type": "input_json_delta", "partial_json": '{"location": "San'}),
    block_delta(2, {"type": "input_json_delta", "partial_json": ' Francisco, CA", "unit": "cel'}),
    block_delta(2, {"type": "input_json_delta", "partial_json": 'sius"}'}),
    named({"type": "content_block_stop", "index": 2}),
    named(
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 89},
        }
    ),
    named({"type": "message_stop"}),
)

ANTHROPIC_ASSEMBLED: dict[str, Any] = {
    "id": MESSAGE_ID,
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [
        {
            "type": "thinking",
            "thinking": "The user asks about San Francisco. I should call get_weather.",
            "signature": SIGNATURE,
        },
        {"type": "text", "text": "Let me check the weather."},
        {
            "type": "tool_use",
            "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
            "name": "get_weather",
            "input": {"location": "San Francisco, CA", "unit": "celsius"},
        },
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {**ANTHROPIC_START_USAGE, "output_tokens": 89},
}

# Non-streaming answers, as stored when the original request did not stream.
CHAT_BODIES: dict[str, dict[str, Any]] = {
    "reasoning_text_and_tools": {
        "id": "chatcmpl-body1",
        "object": "chat.completion",
        "created": CREATED,
        "model": "gpt-4o-2024-08-06",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Both cities, coming up.",
                    "refusal": None,
                    "annotations": [],
                    "reasoning_content": "Two cities: two calls.",
                    "tool_calls": CHAT_ASSEMBLED["choices"][0]["message"]["tool_calls"],
                },
                "logprobs": None,
                "finish_reason": "tool_calls",
            }
        ],
        "usage": CHAT_USAGE,
        "service_tier": "default",
        "system_fingerprint": "fp_50cad350e4",
    },
    "tools_only_null_content": {
        "id": "chatcmpl-body2",
        "object": "chat.completion",
        "created": CREATED,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "lookup", "arguments": '{"q": "relaygate"}'},
                        }
                    ],
                },
                "logprobs": None,
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 40, "completion_tokens": 12, "total_tokens": 52},
    },
    "empty_content_null_reasoning": {
        "id": "chatcmpl-body4",
        "object": "chat.completion",
        "created": CREATED,
        "model": "deepseek-chat",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "", "reasoning_content": None},
                "logprobs": None,
                "finish_reason": "length",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 0, "total_tokens": 3},
    },
    "two_choices_with_logprobs": {
        "id": "chatcmpl-body3",
        "object": "chat.completion",
        "created": CREATED,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": i,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": {
                    "content": [{"token": text, "logprob": -0.25, "bytes": list(text.encode()), "top_logprobs": []}],
                    "refusal": None,
                },
                "finish_reason": "stop",
            }
            for i, text in enumerate(("Yes", "No"))
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
    },
}

COMPLETION_BODY: dict[str, Any] = {**COMPLETION_ASSEMBLED, "id": "cmpl-body"}

ANTHROPIC_BODY: dict[str, Any] = {
    "id": "msg_01StoredBody",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [
        {"type": "thinking", "thinking": "Check the docs first.", "signature": SIGNATURE},
        {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP"},
        {
            "type": "text",
            "text": "Relaygate caches answers.",
            "citations": [
                {
                    "type": "char_location",
                    "cited_text": "caches answers",
                    "document_index": 0,
                    "document_title": "README",
                    "start_char_index": 10,
                    "end_char_index": 24,
                }
            ],
        },
        {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "search", "input": {"q": "cache", "k": 3}},
        {"type": "tool_use", "id": "toolu_01B", "name": "noop", "input": {}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 1200,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 140,
    },
}


def golden_events(path: Path) -> tuple[bytes, ...]:
    """A golden .sse file cut into whole events (each keeps its own line ends: some files are CRLF)."""
    return tuple(re.findall(rb".+?(?:\r\n\r\n|\n\n)", path.read_bytes(), re.S))
