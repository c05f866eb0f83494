"""A stream built from a non-streaming answer, for a streaming request that hits such an entry.

The events are shaped like the real APIs' streams so SDKs accumulate them into the same answer
(assemble(synthesised) == the stored body, modulo id/created):
- OpenAI chat, per choice: a role chunk (content "" or null as stored, plus the message's empty
  fields such as `refusal: null`), a `reasoning_content` chunk, a content chunk (with the choice's
  logprobs), a chunk with any other message fields (annotations, audio, a refusal), one chunk with
  all its tool calls (index, id, type, name, whole arguments), a finish chunk; then a usage chunk
  when asked, then `data: [DONE]`.
- OpenAI completions, per choice: a text chunk and a finish chunk; usage; `[DONE]`.
- Anthropic: `message_start` (empty content, output_tokens 1 as the API reports at start), per block
  `content_block_start`, one delta of each kind it needs (`text_delta`, `thinking_delta` +
  `signature_delta`, `input_json_delta` with the whole input, `citations_delta` per citation) and
  `content_block_stop`; then `message_delta` (stop reason, stop sequence, output tokens) and
  `message_stop`.
"""

from __future__ import annotations

from typing import Any

import orjson

from relaygate.cache.sse import DONE_EVENT, data_event, named_event

_CHAT_SPECIAL = frozenset({"role", "content", "tool_calls"})  # the other message fields go through as they are


def _object(value: Any) -> dict[str, Any]:
    """`value` if it is a JSON object, else an empty one (a stored body is trusted, not assumed)."""
    return value if isinstance(value, dict) else {}


def openai_head(body: dict[str, Any], *, chat: bool, stream_id: str, created: int) -> dict[str, Any]:
    """The fields every chunk of a replayed OpenAI stream starts with."""
    head: dict[str, Any] = {
        "id": stream_id,
        "object": "chat.completion.chunk" if chat else "text_completion",
        "created": created,
        "model": body.get("model"),
    }
    for name in ("service_tier", "system_fingerprint"):
        if name in body:
            head[name] = body[name]
    return head


def openai_usage_chunk(body: dict[str, Any], *, chat: bool, stream_id: str, created: int) -> bytes | None:
    """The `choices: []` chunk carrying the stored usage (None when the body has no usage)."""
    usage = body.get("usage")
    if not isinstance(usage, dict):
        return None
    return data_event(
        {**openai_head(body, chat=chat, stream_id=stream_id, created=created), "choices": [], "usage": usage}
    )


def _choice_piece(choice: dict[str, Any], payload: dict[str, Any], finish_reason: Any = None) -> dict[str, Any]:
    piece = {"index": choice.get("index", 0), **payload}
    if "logprobs" in choice:
        piece.setdefault("logprobs", None)
    piece["finish_reason"] = finish_reason
    return piece


def _chat_deltas(choice: dict[str, Any]) -> list[dict[str, Any]]:
    """The choice pieces for one stored chat choice, in stream order."""
    message = _object(choice.get("message"))
    content = message.get("content")
    extras = {k: v for k, v in message.items() if k not in _CHAT_SPECIAL}
    empty = {k: v for k, v in extras.items() if v is None or v == ""}  # sent once, in the role chunk
    role_delta = {"role": message.get("role") or "assistant", "content": "" if isinstance(content, str) else None}
    pieces = [_choice_piece(choice, {"delta": {**role_delta, **empty}})]
    reasoning = extras.get("reasoning_content")
    if reasoning:
        pieces.append(_choice_piece(choice, {"delta": {"reasoning_content": reasoning}}))
    logprobs_pending = choice.get("logprobs") is not None
    if isinstance(content, str) and content:
        payload: dict[str, Any] = {"delta": {"content": content}}
        if logprobs_pending:
            payload["logprobs"] = choice["logprobs"]
            logprobs_pending = False
        pieces.append(_choice_piece(choice, payload))
    rest = {k: v for k, v in extras.items() if k not in empty and k != "reasoning_content"}
    if rest:
        pieces.append(_choice_piece(choice, {"delta": rest}))
    calls = message.get("tool_calls")
    if isinstance(calls, list) and calls:
        streamed = [
            {
                "index": i,
                "id": call.get("id"),
                "type": call.get("type", "function"),
                "function": {
                    "name": _object(call.get("function")).get("name", ""),
                    "arguments": _object(call.get("function")).get("arguments", ""),
                },
            }
            for i, call in enumerate(map(_object, calls))
        ]
        pieces.append(_choice_piece(choice, {"delta": {"tool_calls": streamed}}))
    finish: dict[str, Any] = {"delta": {}}
    if logprobs_pending:
        finish["logprobs"] = choice["logprobs"]
    pieces.append(_choice_piece(choice, finish, choice.get("finish_reason")))
    return pieces


def _completion_pieces(choice: dict[str, Any]) -> list[dict[str, Any]]:
    """A text piece (with the logprobs) and a finish piece for one stored completions choice."""
    text: dict[str, Any] = {"text": choice.get("text") or ""}
    if "logprobs" in choice:
        text["logprobs"] = choice["logprobs"]
    return [_choice_piece(choice, text), _choice_piece(choice, {"text": ""}, choice.get("finish_reason"))]


def synthesise_openai(
    body: dict[str, Any], *, chat: bool, stream_id: str, created: int, include_usage: bool
) -> list[bytes]:
    """The chunk stream of a stored OpenAI chat or completions body."""
    head = openai_head(body, chat=chat, stream_id=stream_id, created=created)
    events: list[bytes] = []
    for choice in body.get("choices") or ():
        if isinstance(choice, dict):
            pieces = _chat_deltas(choice) if chat else _completion_pieces(choice)
            events.extend(data_event({**head, "choices": [piece]}) for piece in pieces)
    if include_usage:
        usage = openai_usage_chunk(body, chat=chat, stream_id=stream_id, created=created)
        if usage is not None:
            events.append(usage)
    events.append(DONE_EVENT)
    return events


def _block_events(index: int, block: dict[str, Any]) -> list[bytes]:
    """content_block_start, the deltas that rebuild `block`, content_block_stop."""
    start = dict(block)
    deltas: list[dict[str, Any]] = []
    kind = block.get("type")
    if kind == "text":
        start["text"] = ""
        if block.get("text"):
            deltas.append({"type": "text_delta", "text": block["text"]})
        if isinstance(block.get("citations"), list) and block["citations"]:
            start["citations"] = []
            deltas.extend({"type": "citations_delta", "citation": c} for c in block["citations"])
    elif kind == "thinking":
        start["thinking"] = ""
        start.pop("signature", None)
        deltas.append({"type": "thinking_delta", "thinking": block.get("thinking") or ""})
        if "signature" in block:
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
    elif isinstance(block.get("input"), dict):  # tool_use, server_tool_use, mcp_tool_use
        start["input"] = {}
        if block["input"]:
            deltas.append({"type": "input_json_delta", "partial_json": orjson.dumps(block["input"]).decode()})
    events = [
        named_event("content_block_start", {"type": "content_block_start", "index": index, "content_block": start})
    ]
    events.extend(
        named_event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d}) for d in deltas
    )
    events.append(named_event("content_block_stop", {"type": "content_block_stop", "index": index}))
    return events


def synthesise_anthropic(body: dict[str, Any], *, message_id: str) -> list[bytes]:
    """The event stream of a stored Anthropic message."""
    usage = _object(body.get("usage"))
    output_tokens = usage.get("output_tokens", 0)
    start_usage = {**usage, "output_tokens": min(1, output_tokens) if isinstance(output_tokens, int) else 1}
    message = {
        **body,
        "id": message_id,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": start_usage,
    }
    events = [named_event("message_start", {"type": "message_start", "message": message})]
    for index, block in enumerate(body.get("content") or ()):
        if isinstance(block, dict):
            events.extend(_block_events(index, block))
    delta = {"stop_reason": body.get("stop_reason"), "stop_sequence": body.get("stop_sequence")}
    events.append(
        named_event(
            "message_delta", {"type": "message_delta", "delta": delta, "usage": {"output_tokens": output_tokens}}
        )
    )
    events.append(named_event("message_stop", {"type": "message_stop"}))
    return events
