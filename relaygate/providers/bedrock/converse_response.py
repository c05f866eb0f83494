"""Bedrock Converse answer -> OpenAI `chat.completion`, plus the pieces the stream translator shares.

Usage is normalised for exact cost: Bedrock's `inputTokens` excludes cache reads and writes, so
`prompt_tokens` adds them back and `prompt_tokens_details` says how many were read or written.
"""

from __future__ import annotations

from typing import Any

import orjson

from relaygate.providers.usage import cache_write_details
from relaygate.wire_types import JSON

# Converse StopReason -> OpenAI finish_reason.
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
    "malformed_model_output": "stop",
    "malformed_tool_use": "stop",
}


def finish_reason(stop_reason: Any) -> str:
    """The OpenAI finish_reason for a Converse stopReason (unknown reasons read as a normal stop)."""
    return FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def _count(usage: JSON, key: str) -> int:
    value = usage.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def openai_usage(usage: Any) -> JSON:
    """Converse TokenUsage -> OpenAI usage with cache reads/writes inside prompt_tokens."""
    usage = usage if isinstance(usage, dict) else {}
    read, write = _count(usage, "cacheReadInputTokens"), _count(usage, "cacheWriteInputTokens")
    prompt = _count(usage, "inputTokens") + read + write
    completion = _count(usage, "outputTokens")
    out: JSON = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    details: JSON = {}
    if "cacheReadInputTokens" in usage:
        details["cached_tokens"] = read
    if "cacheWriteInputTokens" in usage:
        details.update(cache_write_details(write))
    if details:
        out["prompt_tokens_details"] = details
    return out


def from_bedrock_converse_response(
    body: JSON, *, model: str, response_id: str, created: int, strict_openai: bool = True
) -> JSON:
    """The OpenAI chat.completion for a Converse response body."""
    output = body.get("output")
    message = output.get("message") if isinstance(output, dict) else None
    blocks = message.get("content") if isinstance(message, dict) else None
    texts: list[str] = []
    reasoning: list[str] = []
    tool_calls: list[JSON] = []
    for block in blocks if isinstance(blocks, list) else ():
        if not isinstance(block, dict):
            continue
        if isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif isinstance(block.get("toolUse"), dict):
            use = block["toolUse"]
            tool_calls.append(
                {
                    "id": str(use.get("toolUseId", "")),
                    "type": "function",
                    "function": {
                        "name": str(use.get("name", "")),
                        "arguments": orjson.dumps(use.get("input", {})).decode(),
                    },
                }
            )
        elif isinstance(block.get("reasoningContent"), dict):
            text = (block["reasoningContent"].get("reasoningText") or {}).get("text")
            if isinstance(text, str):
                reasoning.append(text)
    content: str | None = "".join(texts)
    if not content and tool_calls:
        content = None
    reply: JSON = {"role": "assistant", "content": content}
    if tool_calls:
        reply["tool_calls"] = tool_calls
    reply["refusal"] = None
    if reasoning and not strict_openai:
        reply["reasoning_content"] = "".join(reasoning)
    return {
        "id": response_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {"index": 0, "message": reply, "finish_reason": finish_reason(body.get("stopReason")), "logprobs": None}
        ],
        "usage": openai_usage(body.get("usage")),
    }


def chunk(response_id: str, created: int, model: str, delta: JSON, finish: str | None = None) -> JSON:
    """One OpenAI chat.completion.chunk with a single choice."""
    return {
        "id": response_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def sse(payload: JSON) -> bytes:
    """One server-sent event."""
    return b"data: " + orjson.dumps(payload) + b"\n\n"
