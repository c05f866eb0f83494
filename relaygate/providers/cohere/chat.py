"""OpenAI chat completions <-> Cohere Chat v2 (`POST /v2/chat`), non-streaming and shared pieces.

Request: sampling knobs are renamed (`top_p` -> `p`, `stop` -> `stop_sequences`, `top_k` -> `k`),
`max_completion_tokens`/`max_tokens` -> `max_tokens`, `response_format` json_schema -> Cohere's
`{"type": "json_object", "json_schema": ...}`. What Cohere cannot do is refused by name (n > 1,
logprobs, logit_bias, legacy functions, audio output) rather than silently dropped. A few
Cohere-only fields pass through when the caller sends them (`safety_mode`, `documents`,
`citation_options`, `thinking`, `strict_tools`). OpenAI-only hints with no Cohere
counterpart and no effect on the answer's shape (`user`, `metadata`, `store`, `service_tier`,
`parallel_tool_calls`, `stream_options`, `reasoning_effort`) are not sent.

Response: `message.content[].text` joined, `message.tool_calls` kept (their `arguments` are already
JSON strings), `tool_plan` becomes the content of a tool-calling turn (it is the model's visible
text for that turn, the way OpenAI models write text before calling tools). Finish reasons:
COMPLETE/STOP_SEQUENCE -> stop, MAX_TOKENS -> length, TOOL_CALL -> tool_calls; ERROR and TIMEOUT are
generation failures and become 502/504 gateway errors (retryable), not a 200 with a broken answer.

Usage: Cohere reports `billed_units` (what it charges) and `tokens` (what the model processed,
including Cohere's own unbilled prompt scaffolding). The gateway prices tokens, so the normalised
usage counts `billed_units` (falling back to `tokens` when a deployment reports only those);
`cached_tokens` (prompt tokens that hit Cohere's cache) becomes `prompt_tokens_details.cached_tokens`.
"""

from __future__ import annotations

from typing import Any

from relaygate.errors import BadGateway, BadRequest, GatewayTimeout
from relaygate.providers.cohere.messages import to_cohere_messages, to_cohere_tools
from relaygate.wire_types import JSON

FINISH_REASONS: dict[str, str] = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "TOOL_CALL": "tool_calls",
}
FAILED_FINISH_REASONS = ("ERROR", "TIMEOUT")
# (OpenAI names, first given wins) -> Cohere name
_RENAMED = (
    (("max_completion_tokens", "max_tokens"), "max_tokens"),
    (("temperature",), "temperature"),
    (("top_p",), "p"),
    (("top_k", "k"), "k"),
    (("seed",), "seed"),
    (("frequency_penalty",), "frequency_penalty"),
    (("presence_penalty",), "presence_penalty"),
)
_REFUSED = ("logit_bias", "functions", "function_call", "audio")
_PASSTHROUGH = ("safety_mode", "documents", "citation_options", "thinking", "strict_tools")


def as_object(value: Any) -> JSON:
    """`value` when it is a JSON object, else an empty one (wire fields are optional and untrusted)."""
    return value if isinstance(value, dict) else {}


def _response_format(value: Any) -> JSON:
    if not isinstance(value, dict) or value.get("type") not in ("text", "json_object", "json_schema"):
        raise BadRequest("'response_format.type' must be text, json_object or json_schema", param="response_format")
    if value["type"] != "json_schema":
        return {"type": value["type"]}
    spec = value.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, dict) else None
    if not isinstance(schema, dict):
        raise BadRequest(
            "'response_format.json_schema.schema' must be a JSON schema object", param="response_format.json_schema"
        )
    return {"type": "json_object", "json_schema": schema}


def _stop_sequences(stop: Any) -> list[str]:
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        return list(stop)
    raise BadRequest("'stop' must be a string or a list of strings", param="stop")


def to_cohere_chat_request(payload: JSON, *, stream: bool) -> JSON:
    """The Cohere v2 chat body for an OpenAI chat completion request."""
    body: JSON = {"model": payload.get("model"), "messages": to_cohere_messages(payload.get("messages"))}
    body.update(to_cohere_tools(payload.get("tools"), payload.get("tool_choice")))
    n = payload.get("n")
    if n is not None and n != 1:
        raise BadRequest("Cohere returns one choice per request; 'n' must be 1", param="n")
    if payload.get("logprobs") is True or payload.get("top_logprobs"):
        raise BadRequest("'logprobs' is not translated for Cohere models", param="logprobs")
    for name in _REFUSED:
        if payload.get(name):
            raise BadRequest(f"'{name}' is not supported by Cohere models", param=name)
    if "audio" in (payload.get("modalities") or ()):
        raise BadRequest("Cohere models do not produce audio", param="modalities")
    for openai_names, cohere_name in _RENAMED:
        value = next((payload[n] for n in openai_names if payload.get(n) is not None), None)
        if value is not None:
            body[cohere_name] = value
    if payload.get("stop") is not None:
        body["stop_sequences"] = _stop_sequences(payload["stop"])
    if payload.get("response_format") is not None:
        body["response_format"] = _response_format(payload["response_format"])
    for name in _PASSTHROUGH:
        if payload.get(name) is not None:
            body[name] = payload[name]
    body["stream"] = stream
    return body


def _count(value: Any) -> int | None:
    """Cohere counts are JSON numbers (the SDK types them float): whole numbers as int."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def to_openai_usage(usage: Any) -> JSON | None:
    """Normalised OpenAI usage for a Cohere `usage` object (None when Cohere reported none)."""
    if not isinstance(usage, dict):
        return None
    billed, tokens = as_object(usage.get("billed_units")), as_object(usage.get("tokens"))
    prompt = _count(billed.get("input_tokens"))
    completion = _count(billed.get("output_tokens"))
    if prompt is None and completion is None:
        prompt, completion = _count(tokens.get("input_tokens")), _count(tokens.get("output_tokens"))
    if prompt is None and completion is None:
        return None
    prompt, completion = prompt or 0, completion or 0
    out: JSON = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    cached = _count(usage.get("cached_tokens"))
    if cached is not None:
        out["prompt_tokens_details"] = {"cached_tokens": min(cached, prompt)}
    return out


def finish_reason_of(reason: Any) -> str:
    """The OpenAI finish_reason for a successful Cohere one (unknown reasons read as stop)."""
    return FINISH_REASONS.get(str(reason), "stop")


def generation_failure(reason: str, detail: str | None = None) -> BadGateway | GatewayTimeout:
    """The gateway error for a generation Cohere ended with ERROR or TIMEOUT."""
    text = f"Cohere ended the generation with finish_reason {reason}" + (f": {detail}" if detail else "")
    if reason == "TIMEOUT":
        return GatewayTimeout(text, code="upstream_timeout")
    return BadGateway(text, code="upstream_generation_error")


def _openai_tool_calls(calls: Any) -> list[JSON]:
    translated: list[JSON] = []
    for index, call in enumerate(calls if isinstance(calls, list) else []):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            continue
        arguments = function.get("arguments")
        translated.append(
            {
                "id": str(call.get("id") or f"call_{index}"),
                "type": "function",
                "function": {
                    "name": str(function.get("name") or ""),
                    "arguments": arguments if isinstance(arguments, str) else "{}",
                },
            }
        )
    return translated


def from_cohere_chat_response(body: Any, model: str, *, created: int, strict_openai: bool = True) -> JSON:
    """The OpenAI chat.completion for a Cohere v2 chat response (raises for ERROR/TIMEOUT endings)."""
    if not isinstance(body, dict) or not isinstance(body.get("message"), dict):
        raise BadGateway("Cohere sent a chat answer without a message")
    reason = str(body.get("finish_reason") or "")
    if reason in FAILED_FINISH_REASONS:
        raise generation_failure(reason)
    message = body["message"]
    items = message.get("content") if isinstance(message.get("content"), list) else []
    texts = [
        i["text"] for i in items if isinstance(i, dict) and i.get("type") == "text" and isinstance(i.get("text"), str)
    ]
    tool_calls = _openai_tool_calls(message.get("tool_calls"))
    content: str | None = "".join(texts) if texts else None
    if content is None and isinstance(message.get("tool_plan"), str) and message["tool_plan"]:
        content = message["tool_plan"]
    if content is None and not tool_calls:
        content = ""
    openai_message: JSON = {"role": "assistant", "content": content}
    if tool_calls:
        openai_message["tool_calls"] = tool_calls
    openai_message["refusal"] = None
    if not strict_openai:
        thinking = [
            i["thinking"]
            for i in items
            if isinstance(i, dict) and i.get("type") == "thinking" and isinstance(i.get("thinking"), str)
        ]
        if thinking:
            openai_message["reasoning_content"] = "".join(thinking)
    answer: JSON = {
        "id": str(body.get("id") or "chatcmpl-cohere"),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {"index": 0, "message": openai_message, "finish_reason": finish_reason_of(reason), "logprobs": None}
        ],
    }
    usage = to_openai_usage(body.get("usage"))
    if usage is not None:
        answer["usage"] = usage
    return answer
