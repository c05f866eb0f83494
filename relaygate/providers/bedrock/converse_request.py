"""OpenAI chat request -> Bedrock Converse request body (`POST /model/{modelId}/converse[-stream]`).

Converse wants `system` blocks apart from `messages`, messages that alternate user/assistant and hold
content blocks (`text`, `image` with raw bytes, `toolUse`, `toolResult`), tools as `toolSpec`s and the
sampling knobs in `inferenceConfig` (`max_completion_tokens`/`max_tokens` -> maxTokens, `temperature`,
`top_p` -> topP, `stop` -> stopSequences). Model-specific parameters go in
`additionalModelRequestFields`: `top_k` (Claude's name for it) and whatever the caller sends there
itself; the Converse fields `guardrailConfig`, `performanceConfig` and `requestMetadata` pass through
when a caller sends them. `response_format: json_schema` becomes Converse structured output
(`outputConfig.textFormat`, the schema as JSON text). Input Bedrock cannot take (`n > 1`, `logprobs`,
`json_object` without a schema) is refused with a 400 naming the field rather than silently dropped.
"""

from __future__ import annotations

import binascii
from typing import Any

import orjson

from relaygate.errors import BadRequest
from relaygate.wire_types import JSON

# data: URL media types -> Converse ImageFormat enum (png | jpeg | gif | webp).
IMAGE_FORMATS = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}
_SYSTEM_ROLES = ("system", "developer")
_PASSTHROUGH = ("guardrailConfig", "performanceConfig", "requestMetadata")  # Converse fields, sent as given


def to_bedrock_converse_request(payload: JSON) -> JSON:
    """The Converse body for an OpenAI chat payload (the model id travels in the URL, not here)."""
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty array", param="messages")
    n = payload.get("n")
    if n is not None and n != 1:
        raise BadRequest("Bedrock returns one choice per request; 'n' must be 1", param="n")
    if payload.get("logprobs") is True or payload.get("top_logprobs"):
        raise BadRequest("Bedrock Converse does not return log probabilities", param="logprobs")
    output_config = _output_config(payload.get("response_format"))
    system: list[JSON] = []
    turns: list[JSON] = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise BadRequest(f"messages[{index}] must be an object", param=f"messages[{index}]")
        role = message.get("role")
        if role in _SYSTEM_ROLES:
            system.extend({"text": text} for text in _texts(message.get("content"), index) if text)
            continue
        if role == "user":
            _append(turns, "user", _user_blocks(message.get("content"), index), index)
        elif role == "assistant":
            _append(turns, "assistant", _assistant_blocks(message, index), index)
        elif role == "tool":
            _append(turns, "user", [_tool_result(message, index)], index)
        else:
            raise BadRequest(
                f"messages[{index}].role {role!r} is not supported by Bedrock Converse "
                "(use system, user, assistant or tool)",
                param=f"messages[{index}].role",
            )
    body: JSON = {"messages": turns}
    if system:
        body["system"] = system
    inference = _inference_config(payload)
    if inference:
        body["inferenceConfig"] = inference
    tool_config = _tool_config(payload, uses_tools=any(_has_tool_blocks(t) for t in turns))
    if tool_config is not None:
        body["toolConfig"] = tool_config
    if output_config is not None:
        body["outputConfig"] = output_config
    additional = _additional_fields(payload)
    if additional:
        body["additionalModelRequestFields"] = additional
    for name in _PASSTHROUGH:
        if isinstance(payload.get(name), dict):
            body[name] = payload[name]
    return body


def _additional_fields(payload: JSON) -> JSON:
    """`additionalModelRequestFields`: the caller's own, plus `top_k` unless the caller set it there."""
    given = payload.get("additionalModelRequestFields")
    if given is not None and not isinstance(given, dict):
        raise BadRequest("'additionalModelRequestFields' must be an object", param="additionalModelRequestFields")
    fields: JSON = dict(given or {})
    if payload.get("top_k") is not None:
        fields.setdefault("top_k", payload["top_k"])
    return fields


def _append(turns: list[JSON], role: str, blocks: list[JSON], index: int) -> None:
    """Converse needs alternating roles: consecutive same-role messages become one turn."""
    if not blocks:
        raise BadRequest(
            f"messages[{index}] has no content; Bedrock needs at least one non-empty block",
            param=f"messages[{index}].content",
        )
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": blocks})


def _texts(content: Any, index: int) -> list[str]:
    """Text of a system/tool message: a string or a list of text parts."""
    if content is None:
        return []
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        texts: list[str] = []
        for j, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise BadRequest(
                    f"messages[{index}].content[{j}] must be a text part here", param=f"messages[{index}].content[{j}]"
                )
            texts.append(part["text"])
        return texts
    raise BadRequest(
        f"messages[{index}].content must be a string or an array of parts", param=f"messages[{index}].content"
    )


def _user_blocks(content: Any, index: int) -> list[JSON]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        raise BadRequest(
            f"messages[{index}].content must be a string or an array of parts", param=f"messages[{index}].content"
        )
    blocks: list[JSON] = []
    for j, part in enumerate(content):
        where = f"messages[{index}].content[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            if part["text"]:
                blocks.append({"text": part["text"]})
        elif kind == "image_url":
            blocks.append(_image_block(part.get("image_url"), where))
        else:
            raise BadRequest(
                f"{where}: content part type {kind!r} is not supported by Bedrock Converse (text and image_url are)",
                param=where,
            )
    return blocks


def _image_block(image_url: Any, where: str) -> JSON:
    """A data: URL image as raw bytes (base64 in the JSON body); Converse cannot fetch http URLs."""
    url = image_url.get("url") if isinstance(image_url, dict) else image_url
    param = f"{where}.image_url.url"
    if not isinstance(url, str) or not url:
        raise BadRequest(f"{param} is required", param=param)
    if not url.startswith("data:"):
        raise BadRequest(
            f"{param}: Bedrock Converse takes image bytes, not URLs; send the image as a "
            "data URL (data:image/png;base64,...)",
            param=param,
        )
    header, comma, data = url[5:].partition(",")
    media_type, _, encoding = header.partition(";")
    if not comma or encoding != "base64":
        raise BadRequest(f"{param} must be a base64 data URL (data:<type>;base64,<data>)", param=param)
    image_format = IMAGE_FORMATS.get(media_type.lower())
    if image_format is None:
        raise BadRequest(
            f"{param}: image type {media_type!r} is not supported by Bedrock (png, jpeg, gif, webp are)", param=param
        )
    try:
        raw = binascii.a2b_base64(data, strict_mode=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"{param} does not hold valid base64 data", param=param)
    if not raw:
        raise BadRequest(f"{param} holds an empty image", param=param)
    return {"image": {"format": image_format, "source": {"bytes": data}}}


def _assistant_blocks(message: JSON, index: int) -> list[JSON]:
    blocks: list[JSON] = []
    content = message.get("content")
    if isinstance(content, str):
        if content:
            blocks.append({"text": content})
    elif isinstance(content, list):
        for j, part in enumerate(content):
            text = part.get("text", part.get("refusal")) if isinstance(part, dict) else None
            if not isinstance(text, str):
                raise BadRequest(
                    f"messages[{index}].content[{j}] must be a text or refusal part",
                    param=f"messages[{index}].content[{j}]",
                )
            if text:
                blocks.append({"text": text})
    elif content is not None:
        raise BadRequest(
            f"messages[{index}].content must be a string, an array of parts or null", param=f"messages[{index}].content"
        )
    for j, call in enumerate(message.get("tool_calls") or ()):
        blocks.append(_tool_use(call, f"messages[{index}].tool_calls[{j}]"))
    return blocks


def _tool_use(call: Any, where: str) -> JSON:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not call.get("id"):
        raise BadRequest(f"{where} needs an id and a function name", param=where)
    arguments = function.get("arguments") or "{}"
    try:
        parsed = orjson.loads(arguments) if isinstance(arguments, str) else arguments
    except orjson.JSONDecodeError:
        raise BadRequest(f"{where}.function.arguments must be a JSON object", param=f"{where}.function.arguments")
    if not isinstance(parsed, dict):
        raise BadRequest(f"{where}.function.arguments must be a JSON object", param=f"{where}.function.arguments")
    return {"toolUse": {"toolUseId": str(call["id"]), "name": function["name"], "input": parsed}}


def _tool_result(message: JSON, index: int) -> JSON:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise BadRequest(
            f"messages[{index}].tool_call_id is required for role tool", param=f"messages[{index}].tool_call_id"
        )
    texts = [t for t in _texts(message.get("content"), index) if t]
    # A tool may legitimately return nothing; Converse rejects blank text, so say so in words.
    content = [{"text": t} for t in texts] or [{"text": "(empty result)"}]
    return {"toolResult": {"toolUseId": call_id, "content": content}}


def _has_tool_blocks(turn: JSON) -> bool:
    return any("toolUse" in block or "toolResult" in block for block in turn["content"])


def _inference_config(payload: JSON) -> JSON:
    config: JSON = {}
    max_tokens = payload.get("max_completion_tokens")
    if max_tokens is None:
        max_tokens = payload.get("max_tokens")
    if max_tokens is not None:
        config["maxTokens"] = max_tokens
    if payload.get("temperature") is not None:
        config["temperature"] = payload["temperature"]
    if payload.get("top_p") is not None:
        config["topP"] = payload["top_p"]
    stop = payload.get("stop")
    if isinstance(stop, str):
        config["stopSequences"] = [stop]
    elif isinstance(stop, list) and stop:
        config["stopSequences"] = stop
    return config


def _tool_config(payload: JSON, *, uses_tools: bool) -> JSON | None:
    """`toolConfig`, or None. `tool_choice: none` omits the tools, unless the history holds tool blocks:
    Converse then requires `toolConfig`, so the tools stay (with the model's own choice)."""
    tools = payload.get("tools")
    if not tools:
        if uses_tools:
            raise BadRequest(
                "the conversation holds tool calls or results, which Bedrock accepts only with 'tools' defined",
                param="tools",
            )
        return None
    if not isinstance(tools, list):
        raise BadRequest("'tools' must be an array", param="tools")
    choice = payload.get("tool_choice")
    if choice == "none" and not uses_tools:
        return None
    specs = [{"toolSpec": _tool_spec(tool, i)} for i, tool in enumerate(tools)]
    config: JSON = {"tools": specs}
    if choice == "required":
        config["toolChoice"] = {"any": {}}
    elif choice == "auto":
        config["toolChoice"] = {"auto": {}}
    elif isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name") if choice.get("type") == "function" else None
        if not isinstance(name, str):
            raise BadRequest(
                "'tool_choice' must be none, auto, required or {type: function, function: {name}}", param="tool_choice"
            )
        config["toolChoice"] = {"tool": {"name": name}}
    elif choice not in (None, "none"):
        raise BadRequest(f"'tool_choice' {choice!r} is not supported", param="tool_choice")
    return config


def _tool_spec(tool: Any, index: int) -> JSON:
    function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise BadRequest(f"tools[{index}] must be a function tool with a name", param=f"tools[{index}]")
    parameters = function.get("parameters")
    spec: JSON = {
        "name": function["name"],
        "inputSchema": {"json": parameters if isinstance(parameters, dict) else {"type": "object", "properties": {}}},
    }
    if function.get("description"):
        spec["description"] = function["description"]
    return spec


def _output_config(response_format: Any) -> JSON | None:
    """`outputConfig` for a `json_schema` response format (Converse structured output; the schema travels
    as JSON text), None for text; `json_object` has no Converse counterpart and is refused."""
    if response_format is None:
        return None
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "text":
        return None
    if kind != "json_schema":
        raise BadRequest(
            f"response_format {kind!r} is not supported by Bedrock Converse (text and json_schema "
            "are); describe the format in the prompt or use a tool",
            param="response_format",
        )
    spec = response_format.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, dict) else None
    if not isinstance(schema, dict):
        raise BadRequest(
            "'response_format.json_schema.schema' must be a JSON schema object",
            param="response_format.json_schema.schema",
        )
    definition: JSON = {"schema": orjson.dumps(schema).decode()}
    for name in ("name", "description"):
        if isinstance(spec.get(name), str) and spec[name]:
            definition[name] = spec[name]
    return {"textFormat": {"type": "json_schema", "structure": {"jsonSchema": definition}}}
