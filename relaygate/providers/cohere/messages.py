"""OpenAI chat `messages`, `tools` and `tool_choice` -> Cohere Chat v2 shapes.

Cohere v2 keeps OpenAI's roles (system, user, assistant, tool) and the function-tool layout, with
these differences: `developer` is a system message; user content parts are `text` and `image_url`
(same shape as OpenAI, for vision models); an assistant turn that calls tools carries its text as
`tool_plan`; tool results name `tool_call_id` and carry text; a function tool without `parameters` gets
an empty object schema (Cohere requires one). `tool_choice` is `REQUIRED` or `NONE`;
forcing one named function becomes `REQUIRED` with only that tool offered.
"""

from __future__ import annotations

from typing import Any

from relaygate.errors import BadRequest
from relaygate.wire_types import JSON


def _text_parts(content: Any, where: str, allowed: tuple[str, ...] = ("text",)) -> list[str]:
    """Texts of a content given as a string or a list of parts of the `allowed` types."""
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        raise BadRequest(f"'{where}' must be a string or a list of content parts", param=where)
    texts: list[str] = []
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in allowed:
            raise BadRequest(
                f"'{where}[{index}]' of type {kind!r} cannot be sent to Cohere here (supported: {', '.join(allowed)})",
                param=f"{where}[{index}].type",
            )
        value = part.get(kind) if kind == "refusal" else part.get("text")
        if not isinstance(value, str):
            raise BadRequest(f"'{where}[{index}]' has no text", param=f"{where}[{index}]")
        texts.append(value)
    return texts


def _user_content(content: Any, where: str) -> str | list[JSON]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise BadRequest(f"'{where}' must be a string or a list of content parts", param=where)
    parts: list[JSON] = []
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            parts.append({"type": "text", "text": part["text"]})
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if not isinstance(url, str) or not url:
                raise BadRequest(f"'{where}[{index}].image_url.url' is required", param=f"{where}[{index}].image_url")
            translated: JSON = {"url": url}
            detail = image.get("detail") if isinstance(image, dict) else None
            if detail in ("auto", "low", "high"):
                translated["detail"] = detail
            parts.append({"type": "image_url", "image_url": translated})
        else:
            raise BadRequest(
                f"'{where}[{index}]' of type {kind!r} is not supported by Cohere (text and image_url are)",
                param=f"{where}[{index}].type",
            )
    return parts


def _tool_calls(calls: Any, where: str) -> list[JSON]:
    if not isinstance(calls, list):
        raise BadRequest(f"'{where}' must be a list", param=where)
    translated: list[JSON] = []
    for index, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise BadRequest(f"'{where}[{index}].function.name' is required", param=f"{where}[{index}].function")
        arguments = function.get("arguments")
        translated.append(
            {
                "id": str(call.get("id") or f"call_{index}"),
                "type": "function",
                "function": {"name": function["name"], "arguments": arguments if isinstance(arguments, str) else "{}"},
            }
        )
    return translated


def _assistant(message: JSON, where: str) -> JSON:
    content = message.get("content")
    text = "".join(_text_parts(content, f"{where}.content", ("text", "refusal"))) if content is not None else ""
    calls = message.get("tool_calls")
    if calls:
        translated: JSON = {"role": "assistant", "tool_calls": _tool_calls(calls, f"{where}.tool_calls")}
        if text:
            translated["tool_plan"] = text
        return translated
    return {"role": "assistant", "content": text}


def to_cohere_messages(messages: Any) -> list[JSON]:
    """Cohere v2 `messages` for OpenAI `messages`; BadRequest names the first field it cannot carry."""
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty list", param="messages")
    translated: list[JSON] = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise BadRequest(f"'{where}' must be an object", param=where)
        role = message.get("role")
        if role in ("system", "developer"):
            texts = _text_parts(message.get("content"), f"{where}.content")
            translated.append({"role": "system", "content": "\n".join(texts)})
        elif role == "user":
            translated.append({"role": "user", "content": _user_content(message.get("content"), f"{where}.content")})
        elif role == "assistant":
            translated.append(_assistant(message, where))
        elif role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                raise BadRequest(f"'{where}.tool_call_id' is required for tool messages", param=f"{where}.tool_call_id")
            texts = _text_parts(message.get("content"), f"{where}.content")
            translated.append({"role": "tool", "tool_call_id": call_id, "content": "".join(texts)})
        else:
            raise BadRequest(
                f"'{where}.role' {role!r} is not supported by Cohere (system, developer, user, assistant and tool are)",
                param=f"{where}.role",
            )
    return translated


def _tool(tool: Any, index: int) -> tuple[JSON, bool]:
    """One Cohere tool and whether the caller asked for strict arguments."""
    where = f"tools[{index}]"
    function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise BadRequest(
            f"'{where}' must be a function tool with a name (Cohere serves function tools only)", param=where
        )
    translated: JSON = {"name": function["name"]}
    if isinstance(function.get("description"), str):
        translated["description"] = function["description"]
    # Cohere requires `parameters`; OpenAI lets a tool without arguments omit them.
    parameters = function.get("parameters")
    translated["parameters"] = parameters if isinstance(parameters, dict) else {"type": "object", "properties": {}}
    return {"type": "function", "function": translated}, function.get("strict") is True


def to_cohere_tools(tools: Any, tool_choice: Any) -> JSON:
    """The Cohere request fields for OpenAI `tools` and `tool_choice` (`tools`, `tool_choice`, `strict_tools`)."""
    if tools is None:
        if tool_choice not in (None, "auto", "none"):
            raise BadRequest("'tool_choice' needs 'tools'", param="tool_choice")
        return {}
    if not isinstance(tools, list):
        raise BadRequest("'tools' must be a list", param="tools")
    translated: list[JSON] = []
    strict = False
    for index, tool in enumerate(tools):
        one, is_strict = _tool(tool, index)
        translated.append(one)
        strict = strict or is_strict
    fields: JSON = {}
    if tool_choice == "none":
        fields["tool_choice"] = "NONE"
    elif tool_choice == "required":
        fields["tool_choice"] = "REQUIRED"
    elif isinstance(tool_choice, dict):
        function = tool_choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        chosen = [t for t in translated if t["function"]["name"] == name]
        if tool_choice.get("type") != "function" or not chosen:
            raise BadRequest("'tool_choice' must name one of the function tools", param="tool_choice")
        translated = chosen
        fields["tool_choice"] = "REQUIRED"
    elif tool_choice not in (None, "auto"):
        raise BadRequest("'tool_choice' must be auto, none, required or a function", param="tool_choice")
    if translated:
        fields["tools"] = translated
    if strict:
        fields["strict_tools"] = True
    return fields
