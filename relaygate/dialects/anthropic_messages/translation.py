"""The inbound Messages API for non-Anthropic models: Anthropic request -> OpenAI chat, answer back.

Pure functions, no I/O. Wire formats follow Anthropic's API reference and the `anthropic` SDK types:
a request's `system`, content blocks (text, image base64/url, document, tool_use, tool_result), tools
and tool_choice become their OpenAI chat equivalents; an OpenAI `chat.completion` becomes an Anthropic
`message`. Errors in Anthropic's shape: errors.py.

Structured output (`output_config.format` json_schema) becomes `response_format`. Dropped on the way
to OpenAI (no portable equivalent): `top_k`, `thinking` and `output_config.effort` (the model's own
default applies), thinking blocks in history, `cache_control`, `service_tier`, `container`.
"""

from __future__ import annotations

import os

import orjson

from relaygate.errors import BadRequest
from relaygate.wire_types import JSON

_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
_ANTHROPIC_ONLY_BLOCKS = frozenset(
    {
        "server_tool_use",
        "web_search_tool_result",
        "web_fetch_tool_result",
        "code_execution_tool_result",
        "bash_code_execution_tool_result",
        "text_editor_code_execution_tool_result",
        "mcp_tool_use",
        "mcp_tool_result",
        "container_upload",
        "search_result",
        "tool_reference",
    }
)


def as_object(value: object) -> JSON:
    """`value` when it is a JSON object, else an empty one (wire fields are read defensively)."""
    return value if isinstance(value, dict) else {}


# -- request: Anthropic -> OpenAI ----------------------------------------------------------------------


def openai_request_from_messages(body: JSON, *, count_only: bool = False) -> JSON:
    """The OpenAI chat request for an Anthropic Messages request (400 naming the field it cannot map).

    `count_only`: the body is a `count_tokens` request, which has no `max_tokens` (none is sent).
    """
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages: Field required (a non-empty list)", param="messages")
    max_tokens = body.get("max_tokens")
    if count_only:
        max_tokens = None
    elif not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
        raise BadRequest("max_tokens: Field required (an integer)", param="max_tokens")
    out: list[JSON] = []
    system = _system_text(body.get("system"))
    if system is not None:
        out.append({"role": "system", "content": system})
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise BadRequest(f"messages.{index}.role must be 'user' or 'assistant'", param=f"messages.{index}.role")
        if message["role"] == "user":
            out.extend(_user_messages(message.get("content"), index))
        else:
            out.append(_assistant_message(message.get("content"), index))
    request: JSON = {"model": body.get("model"), "messages": out}
    if max_tokens is not None:
        request["max_tokens"] = max_tokens
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            request[name] = body[name]
    stops = body.get("stop_sequences")
    if isinstance(stops, list) and stops:
        request["stop"] = stops
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        request["user"] = metadata["user_id"]
    if body.get("stream") is True:
        request["stream"] = True
    output_format = as_object(as_object(body.get("output_config")).get("format"))
    if output_format.get("type") == "json_schema" and isinstance(output_format.get("schema"), dict):
        request["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": output_format["schema"]},
        }
    tools = body.get("tools")
    if isinstance(tools, list) and tools:
        request["tools"] = [_function_tool(tool, i) for i, tool in enumerate(tools)]
        _apply_tool_choice(body.get("tool_choice"), request)
    return request


def _system_text(system: object) -> str | None:
    if isinstance(system, str):
        return system or None
    if isinstance(system, list):
        texts = [b.get("text", "") for b in system if isinstance(b, dict) and b.get("type") == "text"]
        return "\n".join(t for t in texts if t) or None
    return None


def _image_url(block: JSON, where: str) -> JSON:
    source = block.get("source")
    if isinstance(source, dict) and source.get("type") == "base64":
        url = f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"
    elif isinstance(source, dict) and source.get("type") == "url" and isinstance(source.get("url"), str):
        url = source["url"]
    else:
        kind = source.get("type") if isinstance(source, dict) else None
        raise BadRequest(
            f"{where}.source: image source {kind!r} is only supported by Anthropic models (use base64 or url)",
            param=f"{where}.source",
        )
    return {"type": "image_url", "image_url": {"url": url}}


def _document_part(block: JSON, where: str) -> JSON:
    source = block.get("source")
    kind = source.get("type") if isinstance(source, dict) else None
    if isinstance(source, dict) and kind == "text":
        return {"type": "text", "text": str(source.get("data", ""))}
    if isinstance(source, dict) and kind == "base64":
        data = f"data:{source.get('media_type', 'application/pdf')};base64,{source.get('data', '')}"
        title = block.get("title")
        return {
            "type": "file",
            "file": {"filename": title if isinstance(title, str) else "document.pdf", "file_data": data},
        }
    raise BadRequest(
        f"{where}.source: document source {kind!r} is only supported by Anthropic models", param=f"{where}.source"
    )


def _user_part(block: object, where: str) -> JSON | None:
    """One user content block as an OpenAI content part (None: nothing to send)."""
    if not isinstance(block, dict):
        raise BadRequest(f"{where} must be a content block object", param=where)
    kind = block.get("type")
    if kind == "text":
        return {"type": "text", "text": str(block.get("text", ""))}
    if kind == "image":
        return _image_url(block, where)
    if kind == "document":
        return _document_part(block, where)
    if kind in ("thinking", "redacted_thinking"):
        return None
    if kind in _ANTHROPIC_ONLY_BLOCKS:
        raise BadRequest(
            f"{where}: content block type {kind!r} is only supported by Anthropic models", param=f"{where}.type"
        )
    raise BadRequest(f"{where}: unsupported content block type {kind!r}", param=f"{where}.type")


def _tool_result(block: JSON, where: str) -> tuple[JSON, list[JSON]]:
    """The OpenAI tool message for a tool_result block, and its images (tool messages carry only text)."""
    tool_use_id = block.get("tool_use_id")
    if not isinstance(tool_use_id, str):
        raise BadRequest(f"{where}.tool_use_id: Field required", param=f"{where}.tool_use_id")
    content = block.get("content")
    texts: list[str] = []
    images: list[JSON] = []
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for j, part in enumerate(content):
            converted = _user_part(part, f"{where}.content.{j}")
            if converted is None:
                continue
            if converted["type"] == "text":
                texts.append(converted["text"])
            else:
                images.append(converted)
    text = "\n".join(texts)
    if block.get("is_error") is True:
        text = "Error: " + text if text else "Error"
    return {"role": "tool", "tool_call_id": tool_use_id, "content": text}, images


def _user_messages(content: object, index: int) -> list[JSON]:
    """A user turn: its tool results first (as OpenAI tool messages), then the rest as one user message."""
    where = f"messages.{index}.content"
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    if not isinstance(content, list):
        raise BadRequest(f"{where} must be a string or a list of content blocks", param=where)
    tools: list[JSON] = []
    parts: list[JSON] = []
    for j, block in enumerate(content):
        if isinstance(block, dict) and block.get("type") == "tool_result":
            message, images = _tool_result(block, f"{where}.{j}")
            tools.append(message)
            parts.extend(images)
            continue
        if isinstance(block, dict) and block.get("type") == "tool_use":
            raise BadRequest(f"{where}.{j}: tool_use blocks belong in assistant messages", param=f"{where}.{j}.type")
        part = _user_part(block, f"{where}.{j}")
        if part is not None:
            parts.append(part)
    if not parts:
        return tools
    if len(parts) == 1 and parts[0]["type"] == "text":
        return [*tools, {"role": "user", "content": parts[0]["text"]}]
    return [*tools, {"role": "user", "content": parts}]


def _assistant_message(content: object, index: int) -> JSON:
    where = f"messages.{index}.content"
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    if not isinstance(content, list):
        raise BadRequest(f"{where} must be a string or a list of content blocks", param=where)
    texts: list[str] = []
    calls: list[JSON] = []
    for j, block in enumerate(content):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "tool_use":
            assert isinstance(block, dict)
            arguments = orjson.dumps(block.get("input") if isinstance(block.get("input"), dict) else {})
            calls.append(
                {
                    "id": str(block.get("id", "")),
                    "type": "function",
                    "function": {"name": str(block.get("name", "")), "arguments": arguments.decode()},
                }
            )
        elif kind in ("thinking", "redacted_thinking"):
            continue
        elif kind in _ANTHROPIC_ONLY_BLOCKS:
            raise BadRequest(
                f"{where}.{j}: content block type {kind!r} is only supported by Anthropic models",
                param=f"{where}.{j}.type",
            )
        else:
            raise BadRequest(
                f"{where}.{j}: content block type {kind!r} cannot appear in an assistant message sent to this model",
                param=f"{where}.{j}.type",
            )
    message: JSON = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        message["tool_calls"] = calls
    return message


def _function_tool(tool: object, index: int) -> JSON:
    where = f"tools.{index}"
    if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
        raise BadRequest(f"{where}.name: Field required", param=f"{where}.name")
    kind = tool.get("type")
    if kind not in (None, "custom"):
        raise BadRequest(
            f"{where}: tool type {kind!r} is a server tool only Anthropic models provide", param=f"{where}.type"
        )
    function: JSON = {"name": tool["name"]}
    if isinstance(tool.get("description"), str):
        function["description"] = tool["description"]
    schema = tool.get("input_schema")
    function["parameters"] = schema if isinstance(schema, dict) else {"type": "object", "properties": {}}
    return {"type": "function", "function": function}


def _apply_tool_choice(choice: object, request: JSON) -> None:
    if not isinstance(choice, dict):
        return
    kind = choice.get("type")
    if kind == "auto":
        request["tool_choice"] = "auto"
    elif kind == "any":
        request["tool_choice"] = "required"
    elif kind == "none":
        request["tool_choice"] = "none"
    elif kind == "tool" and isinstance(choice.get("name"), str):
        request["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    else:
        raise BadRequest(f"tool_choice.type {kind!r} is not one of auto, any, tool, none", param="tool_choice.type")
    if choice.get("disable_parallel_tool_use") is True and kind != "none":
        request["parallel_tool_calls"] = False


# -- response: OpenAI -> Anthropic ----------------------------------------------------------------------


def message_id_from(openai_id: object) -> str:
    """An Anthropic-looking message id derived from the upstream's id (random when it has none)."""
    if isinstance(openai_id, str) and openai_id:
        if openai_id.startswith("msg_"):
            return openai_id
        return "msg_" + openai_id.removeprefix("chatcmpl-")
    return "msg_" + os.urandom(12).hex()


def stop_reason_from(finish_reason: object, matched_stop: object = None) -> tuple[str, str | None]:
    """(stop_reason, stop_sequence) for an OpenAI finish_reason.

    OpenAI's "stop" covers both a natural end and a stop sequence; servers such as vLLM say which
    sequence matched in the choice's `stop_reason`, which makes it "stop_sequence".
    """
    if finish_reason == "stop" and isinstance(matched_stop, str) and matched_stop:
        return "stop_sequence", matched_stop
    return _STOP_REASONS.get(finish_reason, "end_turn") if isinstance(finish_reason, str) else "end_turn", None


def usage_from_openai(usage: object) -> JSON:
    """Anthropic usage from the gateway's normalised OpenAI usage (prompt_tokens include cache reads/writes;
    `cache_creation_tokens`, else OpenAI's `cache_write_tokens`, are the writes; reasoning tokens become
    `output_tokens_details.thinking_tokens`, inside `output_tokens` as on both APIs)."""
    if not isinstance(usage, dict):
        return {"input_tokens": 0, "output_tokens": 0}
    prompt = usage.get("prompt_tokens", usage.get("input_tokens"))
    completion = usage.get("completion_tokens", usage.get("output_tokens"))
    details = as_object(usage.get("prompt_tokens_details"))
    cached = details.get("cached_tokens")
    cached = cached if isinstance(cached, int) else 0
    created = details.get("cache_creation_tokens", details.get("cache_write_tokens"))
    created = created if isinstance(created, int) else 0
    prompt = prompt if isinstance(prompt, int) else 0
    out: JSON = {
        "input_tokens": max(prompt - cached - created, 0),
        "output_tokens": completion if isinstance(completion, int) else 0,
        "cache_creation_input_tokens": created,
        "cache_read_input_tokens": cached,
    }
    reasoning = as_object(usage.get("completion_tokens_details")).get("reasoning_tokens")
    if isinstance(reasoning, int) and not isinstance(reasoning, bool) and reasoning > 0:
        out["output_tokens_details"] = {"thinking_tokens": reasoning}
    return out


def tool_input_from(arguments: object) -> JSON:
    """A tool call's JSON arguments as the `input` object (a non-object or broken JSON gives {})."""
    if isinstance(arguments, dict):
        return arguments
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        parsed = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def messages_response_from_openai(openai_body: JSON, model: str) -> JSON:
    """The Anthropic message for an OpenAI `chat.completion` (first choice), reported as `model`."""
    choices = openai_body.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
    message = as_object(choice.get("message"))
    content: list[JSON] = []
    text = message.get("content")
    if isinstance(text, list):  # some servers answer with content parts
        text = "".join(p.get("text", "") for p in text if isinstance(p, dict))
    if isinstance(text, str) and text:
        content.append({"type": "text", "text": text})
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal:
        content.append({"type": "text", "text": refusal})
    for call in message.get("tool_calls") or ():
        if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
            continue
        function = as_object(call["function"])
        content.append(
            {
                "type": "tool_use",
                "id": str(call.get("id") or "toolu_" + os.urandom(12).hex()),
                "name": str(function.get("name", "")),
                "input": tool_input_from(function.get("arguments")),
            }
        )
    stop_reason, stop_sequence = stop_reason_from(choice.get("finish_reason"), choice.get("stop_reason"))
    return {
        "id": message_id_from(openai_body.get("id")),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": usage_from_openai(openai_body.get("usage")),
    }
