"""An Anthropic Message -> an OpenAI `chat.completion` (pure), plus the pieces the stream reuses.

Text blocks are joined into `content`; `tool_use` blocks become `tool_calls` (arguments: the input as a
JSON string); the forced JSON tool of a json_object request becomes the content itself. `stop_reason`
maps to `finish_reason` (end_turn, stop_sequence, pause_turn -> stop; max_tokens and
model_context_window_exceeded -> length; tool_use -> tool_calls; refusal -> content_filter).

Usage is normalised for exact cost and limits: `prompt_tokens` counts every input token (Anthropic's
`input_tokens` excludes cache reads and writes, so they are added), `prompt_tokens_details` carries
`cached_tokens` (cache reads) and `cache_creation_tokens` (cache writes) when reported, and
`completion_tokens_details.reasoning_tokens` the thinking tokens when reported.

Thinking is hidden by default. With `x-tfy-strict-openai: false` the message also carries, as LiteLLM
does, `reasoning_content` (the thinking text) and `thinking_blocks` (`{type: thinking, thinking,
signature}` / `{type: redacted_thinking, data}`, to be sent back on the next turn).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from relaygate.providers.translated import json_object_answer
from relaygate.providers.usage import cache_write_details

FINISH_REASONS: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def finish_reason(stop_reason: object, *, json_tool: bool = False) -> str:
    """OpenAI `finish_reason` for an Anthropic `stop_reason` (the JSON tool's tool_use is a normal stop)."""
    reason = FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"
    return "stop" if json_tool and reason == "tool_calls" else reason


def to_openai_usage(usage: Mapping[str, Any]) -> dict[str, Any]:
    """Anthropic usage -> the gateway's normalised OpenAI usage."""
    cache_read = usage.get("cache_read_input_tokens")
    cache_write = usage.get("cache_creation_input_tokens")
    prompt = _int(usage.get("input_tokens")) + _int(cache_read) + _int(cache_write)
    completion = _int(usage.get("output_tokens"))
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    details: dict[str, int] = {}
    if isinstance(cache_read, int):
        details["cached_tokens"] = cache_read
    if isinstance(cache_write, int):
        details.update(cache_write_details(cache_write))
    if details:
        out["prompt_tokens_details"] = details
    output_details = usage.get("output_tokens_details")
    thinking = output_details.get("thinking_tokens") if isinstance(output_details, dict) else None
    if isinstance(thinking, int):
        out["completion_tokens_details"] = {"reasoning_tokens": thinking}
    return out


def tool_call(block: Mapping[str, Any]) -> dict[str, Any]:
    """A `tool_use` block as an OpenAI tool call."""
    arguments = block.get("input")
    return {
        "id": block.get("id"),
        "type": "function",
        "function": {"name": block.get("name"), "arguments": orjson.dumps(arguments or {}).decode()},
    }


def from_anthropic_response(
    body: Mapping[str, Any],
    model: str,
    *,
    strict_openai: bool = True,
    json_tool: str | None = None,
    created: int | None = None,
) -> dict[str, Any]:
    """The OpenAI chat completion for an Anthropic Message (`model` is used when the body names none)."""
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    thinking_text: list[str] = []
    thinking_blocks: list[dict[str, Any]] = []
    blocks = body.get("content")
    for block in blocks if isinstance(blocks, list) else ():
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text") or ""))
        elif kind == "tool_use" and json_tool is not None and block.get("name") == json_tool:
            texts.append(orjson.dumps(block.get("input") or {}).decode())
        elif kind == "tool_use":
            tool_calls.append(tool_call(block))
        elif kind == "thinking":
            thinking_text.append(str(block.get("thinking") or ""))
            thinking_blocks.append(
                {"type": "thinking", "thinking": block.get("thinking") or "", "signature": block.get("signature")}
            )
        elif kind == "redacted_thinking":
            thinking_blocks.append({"type": "redacted_thinking", "data": block.get("data")})
        # Server tool blocks (web search, code execution, ...) have no OpenAI form and are left out.
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    message["refusal"] = None
    if not strict_openai and thinking_blocks:
        message["reasoning_content"] = "\n".join(thinking_text)
        message["thinking_blocks"] = thinking_blocks
    usage = body.get("usage")
    return {
        "id": body.get("id"),
        "object": "chat.completion",
        "created": created if created is not None else int(time.time()),
        "model": body.get("model") or model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": finish_reason(body.get("stop_reason"), json_tool=json_tool is not None),
                "logprobs": None,
            }
        ],
        "usage": to_openai_usage(usage if isinstance(usage, dict) else {}),
    }


def translate_body(raw: bytes, model: str, *, strict_openai: bool = True, json_tool: str | None = None) -> bytes:
    """Raw Anthropic Message bytes -> OpenAI chat completion bytes."""
    return orjson.dumps(translate_answer(raw, model, strict_openai=strict_openai, json_tool=json_tool))


def translate_answer(
    raw: bytes, model: str, *, strict_openai: bool = True, json_tool: str | None = None
) -> dict[str, Any]:
    """Raw Anthropic Message bytes -> the OpenAI chat completion object (what `TranslatedResponse` calls)."""
    body = json_object_answer(raw, model, "a body that is not an Anthropic Message")
    return from_anthropic_response(body, model, strict_openai=strict_openai, json_tool=json_tool)


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
