"""Opt-in message content (`gen_ai.input.messages`, `gen_ai.output.messages`, `gen_ai.system_instructions`)
in the semconv message schema, built only from bodies the request log was allowed to keep.

The caller gives the log row's bodies (None when logging was off for the request, globally or by
`x-tfy-logging-config`), so content reaches a span only where it could reach the log. Bodies that do
not parse (clipped, multipart, not JSON) give no content rather than a guess.
"""

from __future__ import annotations

from typing import Any

import orjson

MAX_CONTENT_BYTES = 256 * 1024  # each attribute, as the log clips bodies
_INPUT_KEYS = ("messages", "prompt", "input")


def content_attributes(request_body: bytes | None, response_body: bytes | None, streaming: bool) -> dict[str, str]:
    """The content attributes these bodies give (empty when they give none)."""
    out: dict[str, str] = {}
    request = _json(request_body)
    if request is not None:
        system, messages = _input_messages(request)
        if system:
            out["gen_ai.system_instructions"] = _dump(system)
        if messages:
            out["gen_ai.input.messages"] = _dump(messages)
    if response_body:
        output = _stream_output(response_body) if streaming else _answer_output(_json(response_body))
        if output:
            out["gen_ai.output.messages"] = _dump(output)
    return out


def _json(body: bytes | None) -> dict[str, Any] | None:
    if not body or body[:1] != b"{":
        return None
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _dump(value: Any) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= MAX_CONTENT_BYTES else text[:MAX_CONTENT_BYTES]


def _parts(content: Any) -> list[dict[str, Any]]:
    """Semconv parts of an OpenAI or Anthropic `content` (a string or a list of typed parts)."""
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    parts: list[dict[str, Any]] = []
    if isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append({"type": "text", "content": part["text"]})
            elif isinstance(part, dict):
                parts.append({"type": str(part.get("type", "unknown"))})  # images, tools: the kind only
    return parts


def _input_messages(request: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system instructions, input messages) of a chat, Messages, completions or embeddings request."""
    system: list[dict[str, Any]] = _parts(request["system"]) if "system" in request else []
    messages: list[dict[str, Any]] = []
    for key in _INPUT_KEYS:
        value = request.get(key)
        if key == "messages" and isinstance(value, list):
            for message in value:
                if not isinstance(message, dict):
                    continue
                role = str(message.get("role", "user"))
                if role in ("system", "developer"):
                    system += _parts(message.get("content"))
                else:
                    messages.append({"role": role, "parts": _parts(message.get("content"))})
        elif value is not None and key != "messages":
            texts = value if isinstance(value, list) else [value]
            messages.append({"role": "user", "parts": [{"type": "text", "content": str(t)} for t in texts]})
    return system, messages


def _answer_output(answer: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Output messages of a whole OpenAI or Anthropic answer."""
    if answer is None:
        return []
    if isinstance(answer.get("choices"), list):
        out = []
        for choice in answer["choices"]:
            if isinstance(choice, dict):
                message = choice.get("message") or {}
                text = message.get("content") if isinstance(message, dict) else None
                if text is None:
                    text = choice.get("text")
                out.append(
                    {"role": "assistant", "parts": _parts(text), "finish_reason": str(choice.get("finish_reason"))}
                )
        return out
    if answer.get("type") == "message":
        reason = str(answer.get("stop_reason"))
        return [{"role": "assistant", "parts": _parts(answer.get("content")), "finish_reason": reason}]
    return []


def _stream_output(body: bytes) -> list[dict[str, Any]]:
    """The text a stream sent (OpenAI deltas or Anthropic text deltas), as one assistant message."""
    texts: list[str] = []
    for line in body.split(b"\n"):
        if not line.startswith(b"data:"):
            continue
        event = _json(line[5:].strip())
        if event is None:
            continue
        for choice in event.get("choices") or ():
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if isinstance(delta, dict) and isinstance(delta.get("content"), str):
                texts.append(delta["content"])
        delta = event.get("delta")
        if event.get("type") == "content_block_delta" and isinstance(delta, dict):
            if isinstance(delta.get("text"), str):
                texts.append(delta["text"])
    return [{"role": "assistant", "parts": [{"type": "text", "content": "".join(texts)}]}] if texts else []
