"""What the official SDKs make of a stream: an independent check that assembled bodies are right.

The OpenAI SDK's ChatCompletionStreamState and the Anthropic SDK's accumulate_event are what client
code uses to turn a stream into a final answer; an assembled body (and a replayed stream) must
agree with them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from anthropic.lib.streaming._messages import accumulate_event
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk

from relaygate.cache.sse import parse_event


def _payloads(events: Sequence[bytes]) -> list[Any]:
    out = []
    for raw in events:
        data = parse_event(raw).data
        if data is not None and data != b"[DONE]":
            out.append(orjson.loads(data))
    return out


def drop_none(value: Any) -> Any:
    """A JSON value without null members (SDK models dump every optional field as null)."""
    if isinstance(value, dict):
        return {k: drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_none(v) for v in value]
    return value


def openai_sdk_final(events: Sequence[bytes]) -> dict[str, Any]:
    """The ChatCompletion the openai SDK accumulates from a chat stream, as plain JSON without nulls."""
    state: ChatCompletionStreamState = ChatCompletionStreamState()
    for payload in _payloads(events):
        if payload.get("object") == "chat.completion.chunk":  # not Azure's prompt_filter_results chunk
            state.handle_chunk(ChatCompletionChunk.model_validate(payload))
    # The snapshot, not get_final_completion(): that one raises for `length` and `content_filter` finishes.
    final = state.current_completion_snapshot.model_dump(mode="json", exclude_none=True)
    for choice in final["choices"]:
        choice["message"].pop("parsed", None)
        for call in choice["message"].get("tool_calls", ()):
            call["function"].pop("parsed_arguments", None)
            call.pop("index", None)  # the SDK keeps the stream's tool-call index; a ChatCompletion has none
    return drop_none(final)  # type: ignore[no-any-return]


def anthropic_sdk_final(events: Sequence[bytes]) -> dict[str, Any]:
    """The Message the anthropic SDK accumulates from a stream, as plain JSON without nulls."""
    snapshot: Any = None
    json_bufs: dict[int, bytes] = {}
    for payload in _payloads(events):
        if payload.get("type") in ("ping", "message_stop"):
            continue
        if payload.get("type") == "message_start" and "usage" not in payload["message"]:
            payload["message"]["usage"] = {"input_tokens": 0, "output_tokens": 0}  # the SDK needs one
        if payload.get("type") == "message_delta":
            payload.setdefault("usage", {"output_tokens": 0})  # and here too
        snapshot = accumulate_event(event=payload, current_snapshot=snapshot, json_bufs=json_bufs)
    return drop_none(snapshot.model_dump(mode="json", exclude_none=True))  # type: ignore[no-any-return]
