"""A wire-faithful mock of Anthropic's Messages API (`POST /v1/messages`, `/v1/messages/count_tokens`).

Start it like the OpenAI mock: `async with AnthropicMock(key) as mock:` in the running loop, or
`with AnthropicMock(key).running() as mock:` from sync code. Point the `anthropic` SDK at `mock.url`
(its `base_url`), or a gateway's `provider-account/anthropic` `base_url` at it. Every request is recorded
(`mock.requests`, `mock.last()`), with the Anthropic usage the mock answered with (`recorded.usage`).

It validates as the real API does (messages and texts taken from the API reference, the SDK types and
errors the API is seen returning): `x-api-key` (or `Authorization: Bearer`, what SDK 2.x sends; x-api-key
wins when both come), `anthropic-version` (2023-06-01, 2026-10-21 — which refuses temperature/top_p/
top_k — and 2023-01-01), required `model`, `max_tokens`, `messages`, no unknown fields (`stream_options:
Extra inputs are not permitted`), roles user/assistant only (role "system" only on SYSTEM_ROLE_MODELS,
the models that take mid-conversation system messages), non-empty text, tool_use/tool_result pairing,
image sources, tool_choice naming a tool, thinking budgets below max_tokens, stop sequences with a
non-whitespace character, no thinking beside a forced tool_choice, and per model version
(`model_version`): `temperature` with `top_p` refused from Claude 4.1 on, adaptive thinking refused
before Claude 4.6.

Answers are deterministic (module helpers compute the same values for assertions):
- the last user text is echoed ("echo: <text>"); after tool results: "tool said: <results>";
- tools: tool_choice any/tool calls one tool; auto calls every tool whose name the last user text mentions
  (only the first with disable_parallel_tool_use), after a short text block. Inputs follow the input
  schema (`instance_for_schema`: strings are the user text) and stream as `input_json_delta` pieces of a
  few characters (the first one empty, as the API does);
- `output_config.format` json_schema: the text is a JSON instance of the schema;
- thinking (enabled/adaptive): a thinking block first ("Thinking about: <text>") with a signature;
- `stop_sequences` cut the text; `max_tokens` truncates it (one token per word);
- prompt caching: the prefix up to the last `cache_control` breakpoint (tools, system, messages order) is
  written to the cache the first time (`cache_creation_input_tokens`) and read afterwards
  (`cache_read_input_tokens`); `input_tokens` is the rest. Minimum cacheable lengths are not modelled.

Injection (thread-safe, cleared by `reset()`): `fail_next(status, ...)` (Anthropic error bodies, 529
overloaded by default message "Overloaded"), `fail_stream_after(events, error_type=...)` (an SSE `error`
event mid-stream, e.g. overloaded_error), `drop_stream_after(events)`, `delay_next(seconds)`,
`refuse_next()` (stop_reason refusal), `chunk_delay`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from tests.upstreams.mock_upstream import Fault, MockUpstream
from tests.upstreams.openai_mock import RecordedRequest, count_tokens, record_request, split_pieces

JSON = dict[str, Any]

VERSIONS = frozenset({"2023-01-01", "2023-06-01", "2026-10-21"})
SAMPLING_PARAMS = frozenset({"temperature", "top_p", "top_k"})  # removed by 2026-10-21
SYSTEM_ROLE_MODELS = frozenset({"claude-opus-4-8"})  # mid-conversation system messages
SAMPLING_PAIR_REFUSED_SINCE = (4, 1)  # "`temperature` and `top_p` cannot both be specified for this model"
ADAPTIVE_THINKING_SINCE = (4, 6)  # older models take only thinking {type: enabled, budget_tokens}
_NEW_STYLE_ID = re.compile(r"claude-(?:opus|sonnet|haiku)-(\d+)(?:-(\d{1,2}))?(?![\d.])")
_OLD_STYLE_ID = re.compile(r"claude-(\d+)(?:-(\d{1,2}))?-(?:opus|sonnet|haiku)")
MESSAGE_FIELDS = frozenset(
    {
        "model",
        "max_tokens",
        "messages",
        "cache_control",
        "container",
        "diagnostics",
        "inference_geo",
        "metadata",
        "output_config",
        "service_tier",
        "speed",
        "stop_sequences",
        "stream",
        "system",
        "thinking",
        "tool_choice",
        "tools",
        "user_profile_id",
        "workspace_id",
    }
)
COUNT_TOKENS_FIELDS = frozenset(
    {
        "model",
        "messages",
        "cache_control",
        "output_config",
        "speed",
        "system",
        "thinking",
        "tool_choice",
        "tools",
    }
)
BETA_FIELDS = frozenset({"context_management", "mcp_servers", "output_format", "betas"})
IMAGE_MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
BLOCK_TYPES = frozenset(
    {
        "text",
        "image",
        "document",
        "search_result",
        "tool_use",
        "tool_result",
        "thinking",
        "redacted_thinking",
        "server_tool_use",
        "web_search_tool_result",
        "container_upload",
    }
)
EFFORTS = frozenset({"low", "medium", "high", "xhigh", "max"})
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
TOOL_ID = re.compile(r"^[a-zA-Z0-9_-]+$")
IMAGE_TOKENS = 100  # per image or document block
JSON_PIECE = 7  # characters per input_json_delta

DEFAULT_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low to access the Anthropic API."),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "Not Found"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit."),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timed out"),
    529: ("overloaded_error", "Overloaded"),
}


# ---------------------------------------------------------------------------------------------------
# Deterministic content, shared with the tests that assert on it.


def model_version(model: str) -> tuple[int, int]:
    """(major, minor) of a Claude model id (`claude-sonnet-4-5-2025...`, `claude-3-7-sonnet-...`); (99, 0) for
    ids naming no version (the mock treats them as the newest models)."""
    found = _NEW_STYLE_ID.search(model) or _OLD_STYLE_ID.search(model)
    return (int(found.group(1)), int(found.group(2) or 0)) if found else (99, 0)


def anthropic_error(error_type: str, message: str, request_id: str = "req_mock") -> JSON:
    """Anthropic's error body."""
    return {"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id}


def blocks_of(content: Any) -> list[JSON]:
    """A message `content` (string shorthand or blocks) as blocks."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def text_of_blocks(content: Any) -> str:
    return " ".join(str(b.get("text", "")) for b in blocks_of(content) if b.get("type") == "text")


def last_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            text = text_of_blocks(message.get("content"))
            if text:
                return text
    return ""


def tool_results_text(message: Any) -> str | None:
    """The text of the tool results in a user message, None when it has none."""
    if not isinstance(message, dict) or message.get("role") != "user":
        return None
    results = [b for b in blocks_of(message.get("content")) if b.get("type") == "tool_result"]
    if not results:
        return None
    return " | ".join(text_of_blocks(b.get("content", "")) for b in results)


def echo_reply(text: str) -> str:
    return "echo: " + text


def tool_reply(results: str) -> str:
    return "tool said: " + results


def thinking_text(text: str) -> str:
    return "Thinking about: " + text


def signature_for(thinking: str) -> str:
    return base64.b64encode(hashlib.sha256(thinking.encode()).digest()).decode()


def instance_for_schema(schema: Any, text: str) -> Any:
    """A JSON value of `schema`; strings are the user's text, objects without properties echo it."""
    if not isinstance(schema, dict):
        return text
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties")
        if not isinstance(properties, dict) or not properties:
            return {"echo": text}
        return {name: instance_for_schema(sub, text) for name, sub in properties.items()}
    if kind == "array":
        return [instance_for_schema(schema.get("items"), text)]
    return {"integer": 1, "number": 1.5, "boolean": True, "null": None}.get(str(kind), text)


def json_pieces(data: str, size: int = JSON_PIECE) -> list[str]:
    """How the mock streams a tool input: an empty first fragment, then `size`-character pieces."""
    return [""] + [data[i : i + size] for i in range(0, len(data), size)]


def _block_tokens(block: JSON) -> int:
    kind = block.get("type")
    if kind == "text":
        return count_tokens(str(block.get("text", "")))
    if kind in ("image", "document"):
        return IMAGE_TOKENS
    if kind == "tool_use":
        return 1 + count_tokens(orjson.dumps(block.get("input", {})).decode().replace(",", " "))
    if kind == "tool_result":
        return 1 + sum(_block_tokens(b) for b in blocks_of(block.get("content", "")))
    if kind == "thinking":
        return count_tokens(str(block.get("thinking", "")))
    return 1


def prompt_segments(body: JSON) -> list[tuple[int, bool, bytes]]:
    """(tokens, cache breakpoint, identity) per cacheable piece, in caching order: tools, system, messages."""
    segments: list[tuple[int, bool, bytes]] = []
    for tool in body.get("tools") or []:
        if isinstance(tool, dict):
            schema = orjson.dumps(tool.get("input_schema")).decode()
            text = f"{tool.get('name', '')} {tool.get('description', '')} {schema}"
            segments.append((count_tokens(text), tool.get("cache_control") is not None, orjson.dumps(tool)))
    system = body.get("system")
    for block in blocks_of(system) if system is not None else []:
        segments.append((_block_tokens(block), block.get("cache_control") is not None, orjson.dumps(block)))
    for message in body.get("messages") or []:
        if isinstance(message, dict):
            segments.append((4, False, str(message.get("role")).encode()))  # per-turn framing
            for block in blocks_of(message.get("content")):
                segments.append((_block_tokens(block), block.get("cache_control") is not None, orjson.dumps(block)))
    if body.get("cache_control") is not None and segments:  # automatic caching: the last block
        tokens, _, identity = segments[-1]
        segments[-1] = (tokens, True, identity)
    return segments


def count_input_tokens(body: JSON) -> int:
    """What count_tokens answers: every prompt token (3 priming tokens included)."""
    return 3 + sum(tokens for tokens, _, _ in prompt_segments(body))


# ---------------------------------------------------------------------------------------------------
# Request validation: the first problem, as the API words it, or None.


def _validate(body: JSON, version: str, beta: bool, count_only: bool) -> str | None:
    allowed = COUNT_TOKENS_FIELDS if count_only else MESSAGE_FIELDS
    if version != "2026-10-21":
        allowed = allowed | SAMPLING_PARAMS
    if beta:
        allowed = allowed | BETA_FIELDS
    for name in body:
        if name not in allowed:
            return f"{name}: Extra inputs are not permitted"
    required = ("model", "messages") if count_only else ("model", "max_tokens", "messages")
    for name in required:
        if name not in body:
            return f"{name}: Field required"
    if not isinstance(body["model"], str) or not body["model"]:
        return "model: Input should be a valid string"
    if not count_only:
        max_tokens = body["max_tokens"]
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 0:
            return "max_tokens: Input should be a valid integer greater than or equal to 0"
        if "stream" in body and not isinstance(body["stream"], bool):
            return "stream: Input should be a valid boolean"
    for name, upper in (("temperature", 1), ("top_p", 1)):
        value = body.get(name)
        if value is not None and (not isinstance(value, int | float) or not 0 <= value <= upper):
            return f"{name}: Input should be less than or equal to {upper}"
    if (
        body.get("temperature") is not None
        and body.get("top_p") is not None
        and model_version(body["model"]) >= SAMPLING_PAIR_REFUSED_SINCE
    ):
        return "`temperature` and `top_p` cannot both be specified for this model. Please use only one."
    stop = body.get("stop_sequences")
    if stop is not None and (not isinstance(stop, list) or not all(isinstance(s, str) for s in stop)):
        return "stop_sequences: Input should be a valid list of strings"
    if stop and not all(stop):
        return "stop_sequences: each stop sequence must be non-empty"
    if stop and not all(s.strip() for s in stop):
        return "stop_sequences: each stop sequence must contain non-whitespace"
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            return "metadata: Input should be a valid dictionary"
        for key in metadata:
            if key != "user_id":
                return f"metadata.{key}: Extra inputs are not permitted"
    return (
        _validate_system(body.get("system"))
        or _validate_tools(body)
        or _validate_thinking(body)
        or _validate_output_config(body.get("output_config"))
        or _validate_messages(body)
    )


def _validate_system(system: Any) -> str | None:
    if system is None or isinstance(system, str):
        return None
    if not isinstance(system, list):
        return "system: Input should be a valid string or list of text blocks"
    for i, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text":
            return f"system.{i}.type: Input should be 'text'"
        if not block.get("text"):
            return "system: text content blocks must be non-empty"
    return None


def _validate_tools(body: JSON) -> str | None:
    tools = body.get("tools")
    names: list[str] = []
    if tools is not None:
        if not isinstance(tools, list):
            return "tools: Input should be a valid list"
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict):
                return f"tools.{i}: Input should be a valid dictionary"
            if tool.get("type") not in (None, "custom"):
                names.append(str(tool.get("name")))  # server tools (web_search_..., bash_...)
                continue
            for key in tool:
                if key not in (
                    "type",
                    "name",
                    "description",
                    "input_schema",
                    "cache_control",
                    "strict",
                    "input_examples",
                    "defer_loading",
                    "allowed_callers",
                    "eager_input_streaming",
                ):
                    return f"tools.{i}.custom.{key}: Extra inputs are not permitted"
            name = tool.get("name")
            if not isinstance(name, str) or not TOOL_NAME.match(name):
                return f"tools.{i}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'"
            schema = tool.get("input_schema")
            if not isinstance(schema, dict):
                return f"tools.{i}.custom.input_schema: Field required"
            if schema.get("type") != "object":
                return f"tools.{i}.custom.input_schema.type: Input should be 'object'"
            names.append(name)
    choice = body.get("tool_choice")
    if choice is not None:
        if not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none"):
            return (
                "tool_choice: Input tag found using 'type' does not match any of the expected tags: "
                "'auto', 'any', 'tool', 'none'"
            )
        if choice["type"] == "tool" and choice.get("name") not in names:
            return f"tool_choice.tool.name: Tool '{choice.get('name')}' not found in tools"
    return None


def _validate_thinking(body: JSON) -> str | None:
    thinking = body.get("thinking")
    if thinking is None:
        return None
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind not in ("enabled", "disabled", "adaptive", "between_tools"):
        return (
            "thinking: Input tag found using 'type' does not match any of the expected tags: 'enabled', "
            "'disabled', 'between_tools', 'adaptive'"
        )
    choice = body.get("tool_choice")
    if kind in ("enabled", "adaptive") and isinstance(choice, dict) and choice.get("type") in ("any", "tool"):
        return "Thinking may not be enabled when tool_choice forces tool use."
    if kind == "adaptive" and model_version(str(body.get("model"))) < ADAPTIVE_THINKING_SINCE:
        return "thinking.type: 'adaptive' is not supported on this model; use 'enabled' with budget_tokens"
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or budget < 1024:
            return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
        max_tokens = body.get("max_tokens")
        if isinstance(max_tokens, int) and max_tokens <= budget:
            return (
                "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation "
                "at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-"
                "window-size"
            )
    return None


def _validate_output_config(config: Any) -> str | None:
    if config is None:
        return None
    if not isinstance(config, dict):
        return "output_config: Input should be a valid dictionary"
    for key in config:
        if key not in ("effort", "format"):
            return f"output_config.{key}: Extra inputs are not permitted"
    effort = config.get("effort")
    if effort is not None and effort not in EFFORTS:
        return "output_config.effort: Input should be 'low', 'medium', 'high', 'xhigh' or 'max'"
    fmt = config.get("format")
    if fmt is not None and (
        not isinstance(fmt, dict) or fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), dict)
    ):
        return "output_config.format: Input should be {type: 'json_schema', schema: {...}}"
    return None


def _validate_messages(body: JSON) -> str | None:
    messages = body["messages"]
    if not isinstance(messages, list):
        return "messages: Input should be a valid list"
    if not messages:
        return "messages: at least one message is required"
    pending: list[str] = []  # tool_use ids the previous assistant turn asked for
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            return f"messages.{i}: Input should be a valid dictionary"
        role = message.get("role")
        if role == "system" and body["model"] in SYSTEM_ROLE_MODELS:
            continue
        if role == "system":
            return (
                'messages: Unexpected role "system". The Messages API accepts a top-level `system` '
                'parameter, not "system" as an input message role.'
            )
        if role not in ("user", "assistant"):
            return f"messages.{i}.role: Input should be 'user' or 'assistant'"
        content = message.get("content")
        if "content" not in message:
            return f"messages.{i}.content: Field required"
        if content == "" or content == []:
            if role == "user":
                return f"messages.{i}: user messages must have non-empty content"
            if i != len(messages) - 1:
                return (
                    f"messages.{i}: all messages must have non-empty content except for the optional final "
                    "assistant message"
                )
        if not isinstance(content, str | list):
            return f"messages.{i}.content: Input should be a valid string or list"
        problem = _validate_blocks(blocks_of(content), i, role, pending)
        if problem:
            return problem
        asked = [str(b.get("id")) for b in blocks_of(content) if b.get("type") == "tool_use"]
        answered = {str(b.get("tool_use_id")) for b in blocks_of(content) if b.get("type") == "tool_result"}
        missing = [tool_id for tool_id in pending if tool_id not in answered]
        if missing:
            return (
                f"messages.{i - 1}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                f"{', '.join(missing)}. Each `tool_use` block must have a corresponding `tool_result` block in "
                "the next message."
            )
        pending = asked if role == "assistant" else []
    if pending:
        return (
            f"messages.{len(messages) - 1}: `tool_use` ids were found without `tool_result` blocks immediately "
            f"after: {', '.join(pending)}. Each `tool_use` block must have a corresponding `tool_result` block "
            "in the next message."
        )
    return None


def _validate_blocks(blocks: list[JSON], i: int, role: str, pending: list[str]) -> str | None:
    for j, block in enumerate(blocks):
        kind = block.get("type")
        where = f"messages.{i}.content.{j}"
        if kind not in BLOCK_TYPES:
            return f"{where}: Input tag '{kind}' found using 'type' does not match any of the expected tags"
        if kind == "text" and not block.get("text"):
            return "messages: text content blocks must be non-empty"
        if kind == "image":
            problem = _validate_image(block.get("source"), where)
            if problem:
                return problem
        if kind in ("tool_use", "thinking", "redacted_thinking") and role != "assistant":
            return f"{where}: `{kind}` blocks are only allowed in assistant messages"
        if kind == "tool_use" and not isinstance(block.get("input"), dict):
            return f"{where}.tool_use.input: Input should be a valid dictionary"
        if kind == "tool_use" and not TOOL_ID.match(str(block.get("id", ""))):
            return f"{where}.tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'"
        if kind == "tool_result":
            if role != "user":
                return f"{where}: `tool_result` blocks are only allowed in user messages"
            if block.get("tool_use_id") not in pending:
                return (
                    f"{where}: unexpected `tool_use_id` found in `tool_result` blocks: "
                    f"{block.get('tool_use_id')}. Each `tool_result` block must have a corresponding `tool_use` "
                    "block in the previous message."
                )
    return None


def _validate_image(source: Any, where: str) -> str | None:
    if not isinstance(source, dict):
        return f"{where}.image.source: Field required"
    if source.get("type") == "base64":
        if source.get("media_type") not in IMAGE_MEDIA_TYPES:
            return (
                f"{where}.image.source.base64.media_type: Input should be 'image/jpeg', 'image/png', "
                "'image/gif' or 'image/webp'"
            )
        try:
            base64.b64decode(str(source.get("data", "")), validate=True)
        except (binascii.Error, ValueError):
            return (
                f"{where}.image.source.base64: The image was specified using the image/... media type, but "
                "the image data is not valid base64"
            )
        return None
    if source.get("type") == "url":
        url = source.get("url")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            return f"{where}.image.source.url.url: Input should be a valid URL"
        return None
    if source.get("type") == "file":
        return None
    return (
        f"{where}.image.source: Input tag '{source.get('type')}' found using 'type' does not match any of "
        "the expected tags: 'base64', 'url', 'file'"
    )


# ---------------------------------------------------------------------------------------------------
# The answer: content blocks, stop reason and usage.


@dataclass
class Reply:
    blocks: list[JSON]
    stop_reason: str
    stop_sequence: str | None
    usage: JSON
    stop_details: JSON | None = None


def _tool_calls(body: JSON, user_text: str) -> list[JSON]:
    """The tools this turn calls (see the module docstring)."""
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and t.get("type") in (None, "custom")]
    choice = body.get("tool_choice") or {"type": "auto"}
    if not tools or choice.get("type") == "none":
        return []
    if choice.get("type") == "tool":
        return [t for t in tools if t.get("name") == choice.get("name")][:1]
    if choice.get("type") == "any":
        return tools[:1]
    called = [t for t in tools if str(t.get("name")) in user_text]
    return called[:1] if choice.get("disable_parallel_tool_use") else called


def plan_reply(body: JSON, ids: Callable[[], str], refuse: bool = False) -> Reply:
    """What the mock answers to a valid Messages request (`ids()` names tool_use blocks)."""
    messages = body["messages"]
    user_text = last_user_text(messages)
    blocks: list[JSON] = []
    thinking = body.get("thinking") or {}
    thinking_tokens = 0
    if thinking.get("type") in ("enabled", "adaptive") and not refuse:
        shown = thinking_text(user_text) if thinking.get("display") != "omitted" else ""
        blocks.append({"type": "thinking", "thinking": shown, "signature": signature_for(thinking_text(user_text))})
        thinking_tokens = count_tokens(thinking_text(user_text))
    results = tool_results_text(messages[-1])
    calls = [] if refuse or results is not None else _tool_calls(body, user_text)
    fmt = (body.get("output_config") or {}).get("format")
    if refuse:
        text = "I can't help with that."
    elif results is not None:
        text = tool_reply(results)
    elif calls:
        text = (
            f"Calling {', '.join(str(t['name']) for t in calls)}."
            if (body.get("tool_choice") or {}).get("type", "auto") == "auto"
            else ""
        )
    elif isinstance(fmt, dict):
        text = orjson.dumps(instance_for_schema(fmt.get("schema"), user_text)).decode()
    else:
        text = echo_reply(user_text)
    stop_reason, stop_sequence = ("refusal" if refuse else "tool_use" if calls else "end_turn"), None
    for sequence in body.get("stop_sequences") or []:
        at = text.find(sequence) if sequence else -1
        if at != -1 and not calls:
            text, stop_reason, stop_sequence = text[:at], "stop_sequence", sequence
    pieces = split_pieces(text)
    limit = body["max_tokens"] - thinking_tokens
    if len(pieces) > max(limit, 0):
        text, calls, stop_reason, stop_sequence = "".join(pieces[: max(limit, 0)]), [], "max_tokens", None
    if text:
        blocks.append({"type": "text", "text": text})
    for tool in calls:
        name = str(tool["name"])
        blocks.append(
            {
                "type": "tool_use",
                "id": ids(),
                "name": name,
                "input": instance_for_schema(tool.get("input_schema"), user_text),
            }
        )
    output = (
        thinking_tokens + len(split_pieces(text)) + sum(_block_tokens(b) for b in blocks if b["type"] == "tool_use")
    )
    usage: JSON = {"output_tokens": max(output, 1)}
    if thinking_tokens:
        usage["output_tokens_details"] = {"thinking_tokens": thinking_tokens}
    details = {"type": "refusal", "category": None, "explanation": "This request was refused."} if refuse else None
    return Reply(blocks, stop_reason, stop_sequence, usage, details)


@dataclass
class _StreamFault:
    after_events: int
    remaining: int
    mode: str  # "drop" | "error"
    error_type: str
    message: str


class AnthropicMock(MockUpstream[RecordedRequest]):
    """The mock server; requires `x-api-key: <api_key>` (or a bearer token) when `api_key` is set."""

    def __init__(self, api_key: str | None = None, *, host: str = "127.0.0.1") -> None:
        super().__init__(host)
        self.api_key = api_key
        self._faults: list[Fault] = []
        self._stream_faults: list[_StreamFault] = []
        self._refusals = 0
        self._cache: set[bytes] = set()

    def _thread_name(self) -> str:
        return f"anthropic-mock-{id(self)}"

    def last(self, path_suffix: str = "/v1/messages") -> RecordedRequest:
        return super().last(path_suffix)

    # -- behaviour injection -----------------------------------------------------------------------

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self._faults.clear()
            self._stream_faults.clear()
            self._refusals = 0
            self._cache.clear()

    def fail_next(
        self,
        status: int,
        *,
        error_type: str | None = None,
        message: str | None = None,
        body: JSON | bytes | None = None,
        count: int = 1,
        headers: dict[str, str] | None = None,
        path: str | None = None,
    ) -> None:
        """Answer the next `count` requests (whose path ends with `path`, if given) with an Anthropic error."""
        default_type, default_message = DEFAULT_ERRORS.get(status, ("api_error", "Internal server error"))
        if body is None:
            body = anthropic_error(error_type or default_type, message or default_message, self._request_id())
        raw = body if isinstance(body, bytes) else orjson.dumps(body)
        with self._lock:
            self._faults.append(Fault(status, raw, count, dict(headers or {}), path))

    def fail_stream_after(
        self, events: int, *, error_type: str = "overloaded_error", message: str = "Overloaded", count: int = 1
    ) -> None:
        """Send an SSE `error` event after `events` events of the next stream(s), then end the stream."""
        with self._lock:
            self._stream_faults.append(_StreamFault(events, count, "error", error_type, message))

    def drop_stream_after(self, events: int, *, count: int = 1) -> None:
        """Close the connection after `events` events (no error event, no message_stop)."""
        with self._lock:
            self._stream_faults.append(_StreamFault(events, count, "drop", "", ""))

    def refuse_next(self, count: int = 1) -> None:
        """The next `count` answers stop with `refusal` (streaming classifiers intervened)."""
        with self._lock:
            self._refusals += count

    def _take_refusal(self) -> bool:
        with self._lock:
            if self._refusals > 0:
                self._refusals -= 1
                return True
        return False

    def _request_id(self) -> str:
        return f"req_{next(self._ids):024x}"

    def _tool_id(self) -> str:
        return f"toolu_{hashlib.sha256(str(next(self._ids)).encode()).hexdigest()[:24]}"

    # -- HTTP --------------------------------------------------------------------------------------

    async def _record(self, request: web.Request) -> RecordedRequest:
        return await record_request(request)

    def _error(self, recorded: RecordedRequest, status: int, error_type: str, message: str) -> web.Response:
        return self._json(recorded, anthropic_error(error_type, message, self._request_id()), status)

    def _json(self, recorded: RecordedRequest, payload: Any, status: int = 200) -> web.Response:
        recorded.status = status
        recorded.completed = True
        return web.Response(
            status=status,
            body=orjson.dumps(payload),
            content_type="application/json",
            headers={"request-id": self._request_id()},
        )

    async def _answer(self, request: web.Request, recorded: RecordedRequest) -> web.StreamResponse:
        count_only = request.path == "/v1/messages/count_tokens"
        if request.path not in ("/v1/messages", "/v1/messages/count_tokens"):
            return self._error(recorded, 404, "not_found_error", "Not Found")
        if request.method != "POST":
            return self._error(recorded, 405, "invalid_request_error", f"Method Not Allowed: {request.method}")
        fault = self._take(self._faults, lambda f: f.matches(request.path))
        if fault is not None:
            recorded.status, recorded.completed = fault.status, True
            return fault.response({"request-id": self._request_id()})
        denied = self._check_auth(request)
        if denied is not None:
            return self._error(recorded, 401, "authentication_error", denied)
        version = request.headers.get("anthropic-version")
        if not version:
            return self._error(recorded, 400, "invalid_request_error", "anthropic-version: header is required")
        if version not in VERSIONS:
            return self._error(recorded, 400, "invalid_request_error", f"anthropic-version: Invalid value '{version}'")
        body = recorded.json
        if not isinstance(body, dict):
            return self._error(
                recorded,
                400,
                "invalid_request_error",
                "There was an issue with the format of your request: the body must be a JSON object",
            )
        problem = _validate(body, version, bool(request.headers.get("anthropic-beta")), count_only)
        if problem is not None:
            return self._error(recorded, 400, "invalid_request_error", problem)
        if count_only:
            return self._json(recorded, {"input_tokens": count_input_tokens(body)})
        reply = plan_reply(body, self._tool_id, refuse=self._take_refusal())
        reply.usage = self._usage(body) | reply.usage
        recorded.usage = {k: v for k, v in reply.usage.items() if isinstance(v, int)}
        message_id = f"msg_{hashlib.sha256(str(next(self._ids)).encode()).hexdigest()[:24]}"
        if body.get("stream"):
            return await self._stream(request, recorded, body["model"], message_id, reply)
        message: JSON = {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": reply.blocks,
            "stop_reason": reply.stop_reason,
            "stop_sequence": reply.stop_sequence,
            "usage": reply.usage,
        }
        if reply.stop_details is not None:
            message["stop_details"] = reply.stop_details
        return self._json(recorded, message)

    def _check_auth(self, request: web.Request) -> str | None:
        if self.api_key is None:
            return None
        key = request.headers.get("x-api-key")
        if key is None:
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                key = token.strip()
        if key is None:
            return "x-api-key header is required"
        return None if key == self.api_key else "invalid x-api-key"

    def _usage(self, body: JSON) -> JSON:
        """Input side of the usage, prompt caching simulated on the breakpoints."""
        segments = prompt_segments(body)
        total = 3 + sum(tokens for tokens, _, _ in segments)
        breakpoints = [i for i, (_, cached, _) in enumerate(segments) if cached]
        read = write = 0
        if breakpoints:
            prefix = segments[: breakpoints[-1] + 1]
            key = hashlib.sha256(str(body["model"]).encode() + b"".join(p for _, _, p in prefix)).digest()
            tokens = sum(t for t, _, _ in prefix)
            with self._lock:
                hit = key in self._cache
                self._cache.add(key)
            read, write = (tokens, 0) if hit else (0, tokens)
        return {
            "input_tokens": total - read - write,
            "cache_creation_input_tokens": write,
            "cache_read_input_tokens": read,
            "cache_creation": {"ephemeral_5m_input_tokens": write, "ephemeral_1h_input_tokens": 0},
            "service_tier": "standard",
        }

    # -- streaming ---------------------------------------------------------------------------------

    def stream_events(self, model: str, message_id: str, reply: Reply) -> list[JSON]:
        """The SSE events (as JSON) the mock streams for a reply, in order."""
        start_usage = {k: v for k, v in reply.usage.items() if k not in ("output_tokens", "output_tokens_details")}
        events: list[JSON] = [
            {
                "type": "message_start",
                "message": {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {**start_usage, "output_tokens": 1},
                },
            }
        ]
        for index, block in enumerate(reply.blocks):
            kind = block["type"]
            if kind == "text":
                events.append(
                    {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}
                )
                deltas = [{"type": "text_delta", "text": piece} for piece in split_pieces(block["text"])]
            elif kind == "thinking":
                events.append(
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {"type": "thinking", "thinking": "", "signature": ""},
                    }
                )
                deltas = [{"type": "thinking_delta", "thinking": p} for p in split_pieces(block["thinking"])]
                deltas.append({"type": "signature_delta", "signature": block["signature"]})
            else:
                events.append(
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}},
                    }
                )
                deltas = [
                    {"type": "input_json_delta", "partial_json": p}
                    for p in json_pieces(orjson.dumps(block["input"]).decode())
                ]
            if index == 0:
                events.append({"type": "ping"})
            events.extend({"type": "content_block_delta", "index": index, "delta": d} for d in deltas)
            events.append({"type": "content_block_stop", "index": index})
        delta: JSON = {"stop_reason": reply.stop_reason, "stop_sequence": reply.stop_sequence}
        if reply.stop_details is not None:
            delta["stop_details"] = reply.stop_details
        end_usage = {k: v for k, v in reply.usage.items() if k in ("output_tokens", "output_tokens_details")}
        events.append({"type": "message_delta", "delta": delta, "usage": end_usage})
        events.append({"type": "message_stop"})
        return events

    async def _stream(
        self, request: web.Request, recorded: RecordedRequest, model: str, message_id: str, reply: Reply
    ) -> web.StreamResponse:
        fault = self._take(self._stream_faults)
        response = web.StreamResponse(
            status=200,
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                "request-id": self._request_id(),
            },
        )
        recorded.status = 200
        await response.prepare(request)
        for index, event in enumerate(self.stream_events(model, message_id, reply)):
            if fault is not None and index == fault.after_events:
                if fault.mode == "error":
                    error = {"type": "error", "error": {"type": fault.error_type, "message": fault.message}}
                    await response.write(b"event: error\ndata: " + orjson.dumps(error) + b"\n\n")
                    await response.write_eof()
                    return response
                if request.transport is not None:
                    request.transport.abort()
                return response
            if index and self.chunk_delay:
                await asyncio.sleep(self.chunk_delay)
            await response.write(b"event: " + event["type"].encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n")
        await response.write_eof()
        recorded.completed = True
        return response
