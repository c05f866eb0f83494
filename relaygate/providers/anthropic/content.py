"""OpenAI chat `messages` -> Anthropic `system` + `messages` made of content blocks.

What the Messages API requires and OpenAI does not: system/developer text lives in the top-level
`system` (every system/developer message is lifted there, in order, wherever it stood); only `user`
and `assistant` turns, so tool results become `tool_result` blocks of a user turn and consecutive
same-role turns are merged into one; assistant `tool_calls` become `tool_use` blocks whose `input` is
the parsed arguments object; no empty text blocks. Images: `data:` URLs become base64 sources, http(s)
URLs `url` sources; PDF `file` parts become `document` blocks. A `cache_control` on a content part or
on a message (the LiteLLM convention for prompt caching through the OpenAI shape) is kept on the block.
Assistant `thinking_blocks` (as this adapter returns them with `x-tfy-strict-openai: false`) go back as
thinking blocks first in the turn, as extended thinking with tools requires. Tool call ids other
providers minted are made Anthropic-safe (`tool_use_id`). Dropped, having no Messages API equivalent: a
message's `name`, an image part's `detail`, assistant `refusal` parts and `reasoning_content`.
"""

from __future__ import annotations

import binascii
import re
from base64 import b64decode
from typing import Any

import orjson

from relaygate.errors import BadRequest

Block = dict[str, Any]
IMAGE_MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)(?:;[\w.+-]+=[^;,]*)*;base64,(?P<data>.*)$", re.S)
_SYSTEM_ROLES = frozenset({"system", "developer"})
_TOOL_ID_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")


def to_anthropic_messages(messages: object) -> tuple[str | list[Block] | None, list[dict[str, Any]]]:
    """(system, messages) for the Messages API from OpenAI chat messages."""
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty list", param="messages")
    system: list[Block] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise BadRequest(f"messages[{i}] must be an object", param=f"messages[{i}]")
        role = message.get("role")
        if role in _SYSTEM_ROLES:
            system.extend(_system_blocks(message, i))
            continue
        if role == "user":
            content: str | list[Block] = _user_content(message.get("content"), f"messages[{i}].content")
            turn_role = "user"
        elif role == "assistant":
            content = _assistant_blocks(message, i)
            turn_role = "assistant"
        elif role == "tool":
            content = [_tool_result(message, i)]
            turn_role = "user"
        else:
            raise BadRequest(
                f"messages[{i}].role '{role}' is not supported by Anthropic models "
                "(use system, developer, user, assistant or tool)",
                param=f"messages[{i}].role",
            )
        content = _with_message_cache_control(content, message.get("cache_control"))
        if not content:
            continue  # nothing to send (e.g. an empty assistant turn); Anthropic refuses empty blocks
        if turns and turns[-1]["role"] == turn_role:
            turns[-1]["content"] = _as_blocks(turns[-1]["content"]) + _as_blocks(content)
        else:
            turns.append({"role": turn_role, "content": content})
    if not turns:
        raise BadRequest(
            "'messages' must contain at least one user, assistant or tool message for Anthropic "
            "models (system messages alone are not a conversation)",
            param="messages",
        )
    return _system_value(system), turns


def _system_value(blocks: list[Block]) -> str | list[Block] | None:
    if not blocks:
        return None
    if len(blocks) == 1 and set(blocks[0]) == {"type", "text"}:
        return str(blocks[0]["text"])
    return blocks


def _system_blocks(message: dict[str, Any], i: int) -> list[Block]:
    content = message.get("content")
    where = f"messages[{i}].content"
    if isinstance(content, str):
        blocks: list[Block] = [{"type": "text", "text": content}] if content else []
    elif isinstance(content, list):
        blocks = []
        for j, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text":
                raise BadRequest(
                    f"{where}[{j}]: system and developer messages may only hold text parts", param=f"{where}[{j}]"
                )
            block = _text_block(part, f"{where}[{j}]")
            if block is not None:
                blocks.append(block)
    else:
        raise BadRequest(f"{where} must be a string or a list of text parts", param=where)
    cache_control = message.get("cache_control")
    if cache_control is not None and blocks:
        blocks[-1]["cache_control"] = cache_control
    return blocks


def _user_content(content: object, where: str) -> str | list[Block]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise BadRequest(f"{where} must be a string or a list of content parts", param=where)
    blocks: list[Block] = []
    for j, part in enumerate(content):
        block = _part_block(part, f"{where}[{j}]")
        if block is not None:
            blocks.append(block)
    return blocks


def _part_block(part: object, where: str) -> Block | None:
    """One OpenAI content part as an Anthropic block (None for an empty text part)."""
    if not isinstance(part, dict):
        raise BadRequest(f"{where} must be an object", param=where)
    kind = part.get("type")
    if kind == "text":
        return _text_block(part, where)
    if kind == "image_url":
        block = _image_block(part.get("image_url"), f"{where}.image_url")
    elif kind == "file":
        block = _document_block(part.get("file"), f"{where}.file")
    elif kind == "input_audio":
        raise BadRequest(f"{where}: audio input is not supported by Anthropic models", param=where)
    else:
        raise BadRequest(f"{where}: content part type '{kind}' is not supported by Anthropic models", param=where)
    if part.get("cache_control") is not None:
        block["cache_control"] = part["cache_control"]
    return block


def _text_block(part: dict[str, Any], where: str) -> Block | None:
    text = part.get("text")
    if not isinstance(text, str):
        raise BadRequest(f"{where}.text must be a string", param=f"{where}.text")
    if not text:
        return None
    block: Block = {"type": "text", "text": text}
    if part.get("cache_control") is not None:
        block["cache_control"] = part["cache_control"]
    return block


def _image_block(image: object, where: str) -> Block:
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url:
        raise BadRequest(f"{where}.url must be an image URL or a data: URL", param=f"{where}.url")
    if url.startswith("data:"):
        mime, data = _data_url(url, f"{where}.url")
        if mime not in IMAGE_MEDIA_TYPES:
            raise BadRequest(
                f"{where}.url: image type '{mime}' is not supported by Anthropic models "
                f"(use {', '.join(sorted(IMAGE_MEDIA_TYPES))})",
                param=f"{where}.url",
            )
        return {"type": "image", "source": {"type": "base64", "media_type": mime, "data": data}}
    if url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise BadRequest(f"{where}.url must be an http(s) URL or a base64 data: URL", param=f"{where}.url")


def _document_block(file: object, where: str) -> Block:
    data_url = file.get("file_data") if isinstance(file, dict) else None
    if not isinstance(data_url, str):
        raise BadRequest(
            f"{where}: only inline files (file_data as a base64 data: URL) are supported by "
            "Anthropic models; file_id refers to OpenAI's file store",
            param=where,
        )
    mime, data = _data_url(data_url, f"{where}.file_data")
    if mime != "application/pdf":
        raise BadRequest(
            f"{where}.file_data: file type '{mime}' is not supported by Anthropic models (PDF only)",
            param=f"{where}.file_data",
        )
    return {"type": "document", "source": {"type": "base64", "media_type": mime, "data": data}}


def _data_url(url: str, where: str) -> tuple[str, str]:
    match = _DATA_URL.match(url)
    if match is None:
        raise BadRequest(f"{where} must be a base64 data: URL (data:<type>;base64,<data>)", param=where)
    data = match.group("data")
    try:
        b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"{where} holds invalid base64 data", param=where)
    return match.group("mime").lower(), data


def _assistant_blocks(message: dict[str, Any], i: int) -> list[Block]:
    blocks: list[Block] = []
    thinking = message.get("thinking_blocks")
    if isinstance(thinking, list):
        for block in thinking:
            if isinstance(block, dict) and block.get("type") == "thinking" and block.get("signature"):
                blocks.append(
                    {"type": "thinking", "thinking": block.get("thinking") or "", "signature": block["signature"]}
                )
            elif isinstance(block, dict) and block.get("type") == "redacted_thinking" and block.get("data"):
                blocks.append({"type": "redacted_thinking", "data": block["data"]})
    content = message.get("content")
    where = f"messages[{i}].content"
    if isinstance(content, str):
        if content:
            blocks.append({"type": "text", "text": content})
    elif isinstance(content, list):
        for j, part in enumerate(content):
            if isinstance(part, dict) and part.get("type") == "refusal":
                continue  # the model's own refusal text; nothing the model needs back
            if not isinstance(part, dict) or part.get("type") != "text":
                raise BadRequest(f"{where}[{j}]: assistant messages may only hold text parts", param=f"{where}[{j}]")
            block = _text_block(part, f"{where}[{j}]")
            if block is not None:
                blocks.append(block)
    elif content is not None:
        raise BadRequest(f"{where} must be a string, a list of text parts or null", param=where)
    tool_calls = message.get("tool_calls")
    if tool_calls is not None:
        if not isinstance(tool_calls, list):
            raise BadRequest(f"messages[{i}].tool_calls must be a list", param=f"messages[{i}].tool_calls")
        blocks.extend(_tool_use(call, f"messages[{i}].tool_calls[{j}]") for j, call in enumerate(tool_calls))
    if message.get("function_call") is not None:
        raise BadRequest(
            f"messages[{i}].function_call is the legacy function-calling form; use tool_calls",
            param=f"messages[{i}].function_call",
        )
    return blocks


def _tool_use(call: object, where: str) -> Block:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(call, dict) or not isinstance(function, dict):
        raise BadRequest(f"{where} must be a function tool call", param=where)
    call_id, name = call.get("id"), function.get("name")
    if not isinstance(call_id, str) or not call_id:
        raise BadRequest(f"{where}.id is required", param=f"{where}.id")
    if not isinstance(name, str) or not name:
        raise BadRequest(f"{where}.function.name is required", param=f"{where}.function.name")
    arguments = function.get("arguments")
    if arguments is None or arguments == "":
        parsed: object = {}
    elif isinstance(arguments, str):
        try:
            parsed = orjson.loads(arguments)
        except orjson.JSONDecodeError:
            raise BadRequest(
                f"{where}.function.arguments must be a JSON object (Anthropic needs the parsed input)",
                param=f"{where}.function.arguments",
            )
    else:
        parsed = arguments
    if not isinstance(parsed, dict):
        raise BadRequest(f"{where}.function.arguments must encode a JSON object", param=f"{where}.function.arguments")
    return {"type": "tool_use", "id": tool_use_id(call_id), "name": name, "input": parsed}


def _tool_result(message: dict[str, Any], i: int) -> Block:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise BadRequest(f"messages[{i}].tool_call_id is required", param=f"messages[{i}].tool_call_id")
    block: Block = {"type": "tool_result", "tool_use_id": tool_use_id(call_id)}
    content = message.get("content")
    if isinstance(content, list):
        parts = _user_content(content, f"messages[{i}].content")
        if parts:
            block["content"] = parts
    elif isinstance(content, str):
        if content:
            block["content"] = content
    elif content is not None:
        raise BadRequest(f"messages[{i}].content must be a string or a list of parts", param=f"messages[{i}].content")
    return block


def tool_use_id(call_id: str) -> str:
    """A tool call id as Anthropic accepts it (`^[a-zA-Z0-9_-]+$`): ids minted by other providers may hold
    other characters; call and result map the same way, so they still pair up."""
    return _TOOL_ID_UNSAFE.sub("_", call_id)


def _as_blocks(content: str | list[Block]) -> list[Block]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return content


def _with_message_cache_control(content: str | list[Block], cache_control: object) -> str | list[Block]:
    """A message-level `cache_control` marks the message's last block."""
    if cache_control is None:
        return content
    blocks = _as_blocks(content)
    if blocks:
        blocks[-1] = {**blocks[-1], "cache_control": cache_control}
    return blocks
