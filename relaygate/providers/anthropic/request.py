"""An OpenAI chat-completions body -> an Anthropic Messages API body (pure; no HTTP).

Parameter table (OpenAI -> Anthropic):
- `max_completion_tokens` / `max_tokens` -> `max_tokens` (required upstream; DEFAULT_MAX_TOKENS = 4096
  when absent, or the thinking budget + 4096 when a native `thinking` budget is given).
- `temperature` (0..1 on Anthropic: higher is a 400 here), `top_p` -> same names; when both are given only
  `temperature` is sent (current Claude models refuse the pair: "cannot both be specified").
- `stop` (string or list) -> `stop_sequences` (an empty or whitespace-only sequence, which Anthropic refuses,
  is a 400 naming `stop`); `user` (else `safety_identifier`) -> `metadata.user_id`.
- `tools` (function) -> `{name, description, input_schema, strict}`; `tool_choice` auto/none/required/named
  -> auto/none/any/tool; `parallel_tool_calls: false` -> `disable_parallel_tool_use: true`.
- `response_format` json_schema -> `output_config.format` (structured outputs, no beta header); json_object
  has no native form and falls back to a forced tool `json_response` whose input comes back as the message
  content (see JSON_TOOL_NAME), so it is a 400 beside thinking (forced tools and thinking exclude each
  other); text -> nothing.
- `reasoning_effort` none -> nothing; minimal/low, medium, high, xhigh -> `thinking: {type: adaptive}` +
  `output_config.effort` (low for minimal) on models with adaptive thinking (Claude 4.6 and later, and
  model ids this adapter does not recognise); the older models (Claude 3.x, 4, 4.1, 4.5) only take
  `thinking: {type: enabled, budget_tokens}`, so they get the budget EFFORT_BUDGETS gives the effort
  (`max_tokens` defaulting to budget + 4096; under a smaller caller `max_tokens` the budget shrinks to fit,
  and below the 1024 minimum that is a 400 naming `max_tokens`).
- `service_tier` auto -> auto, default -> standard_only.
- `messages`: see content.py (system lifted, tool results as tool_result blocks, images, merging).
- Native Anthropic fields accepted as-is: `top_k`, `thinking`, `cache_control`, `output_config`,
  `inference_geo`, `speed`.
- Dropped (no effect on the answer): `stream_options` (Anthropic streams always carry usage), `store`,
  `metadata` (OpenAI stores it with `store`), `prompt_cache_key`, `prompt_cache_retention`, and the unset
  or neutral values of unsupported fields (`n: 1`, `logprobs: false`, penalties of 0, `logit_bias: {}`,
  `modalities: ["text"]`, nulls).
- Everything else (`n > 1`, `logprobs`, penalties, `logit_bias`, `seed`, audio, `prediction`,
  `web_search_options`, `verbosity`, legacy `functions`, unknown fields): a 400 naming the parameter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from relaygate.errors import BadRequest
from relaygate.providers.anthropic.content import to_anthropic_messages

DEFAULT_MAX_TOKENS = 4096
JSON_TOOL_NAME = "json_response"
_JSON_TOOL = {
    "name": JSON_TOOL_NAME,
    "description": "Respond with a single JSON object: the complete answer to the conversation.",
    "input_schema": {"type": "object"},
}
_EFFORTS = {"minimal": "low", "low": "low", "medium": "medium", "high": "high", "xhigh": "xhigh"}
# Thinking budgets for models without adaptive thinking (1024 is the API's minimum budget).
EFFORT_BUDGETS = {"low": 1024, "medium": 2048, "high": 4096, "xhigh": 8192}
MIN_THINKING_BUDGET = 1024
# Claude model ids naming a version: claude-<family>-<major>[-<minor>] (4.x on) or claude-<major>[-<minor>]-<family>.
_NEW_STYLE = re.compile(r"claude-(?:opus|sonnet|haiku)-(\d+)(?:-(\d{1,2}))?(?![\d.])")
_OLD_STYLE = re.compile(r"claude-(\d+)(?:-(\d{1,2}))?-(?:opus|sonnet|haiku)")
ADAPTIVE_SINCE = (4, 6)
_SERVICE_TIERS = {"auto": "auto", "default": "standard_only"}
_NATIVE = ("top_k", "thinking", "cache_control", "inference_geo", "speed")
_DROPPED = frozenset({"stream_options", "store", "metadata", "prompt_cache_key", "prompt_cache_retention"})
_HANDLED = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "stop",
        "stream",
        "user",
        "safety_identifier",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "reasoning_effort",
        "service_tier",
        "output_config",
        *_NATIVE,
    }
)
# Unsupported OpenAI fields and the values that mean "not used" (those are dropped, others refused).
_NEUTRAL: dict[str, tuple[object, ...]] = {
    "n": (None, 1),
    "logprobs": (None, False),
    "top_logprobs": (None, 0),
    "frequency_penalty": (None, 0),
    "presence_penalty": (None, 0),
    "logit_bias": (None, {}),
    "seed": (None,),
    "modalities": (None, ["text"]),
    "audio": (None,),
    "prediction": (None,),
    "web_search_options": (None,),
    "verbosity": (None,),
    "functions": (None, []),
    "function_call": (None,),
}


def to_anthropic_request(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The Messages API body for an OpenAI chat body (`model` already the provider's id)."""
    _refuse_unsupported(payload)
    system, messages = to_anthropic_messages(payload.get("messages"))
    thinking = payload.get("thinking")
    body: dict[str, Any] = {"model": payload.get("model"), "max_tokens": _max_tokens(payload, thinking)}
    if system is not None:
        body["system"] = system
    body["messages"] = messages
    for name in ("temperature", "top_p"):
        value = _unit_interval(payload.get(name), name)
        if value is not None and not (name == "top_p" and "temperature" in body):
            body[name] = value
    stop = _stop_sequences(payload.get("stop"))
    if stop:
        body["stop_sequences"] = stop
    user = payload.get("user") or payload.get("safety_identifier")
    if user is not None:
        if not isinstance(user, str):
            raise BadRequest("'user' must be a string", param="user")
        body["metadata"] = {"user_id": user}
    tools, tool_choice = _tools(payload)
    output_config = dict(payload["output_config"]) if isinstance(payload.get("output_config"), dict) else {}
    response_format = payload.get("response_format")
    if response_format is not None:
        json_tool = _response_format(response_format, output_config)
        if json_tool:
            if tools:
                raise BadRequest(
                    "response_format json_object cannot be combined with tools on Anthropic models "
                    "(it is served through a forced tool); use json_schema",
                    param="response_format",
                )
            tools, tool_choice = [dict(_JSON_TOOL)], {"type": "tool", "name": JSON_TOOL_NAME}
    effort = _effort(payload.get("reasoning_effort"))
    if effort is not None and has_adaptive_thinking(str(payload.get("model") or "")):
        output_config.setdefault("effort", effort)
        if thinking is None:
            thinking = {"type": "adaptive"}
    elif effort is not None and thinking is None:
        thinking = _effort_budget(payload, effort, body)
    if tools:
        body["tools"] = tools
    if tool_choice is not None:
        body["tool_choice"] = tool_choice
    if thinking is not None:
        if uses_json_tool(payload) and isinstance(thinking, dict) and thinking.get("type") != "disabled":
            raise BadRequest(
                "response_format json_object cannot be combined with thinking or reasoning_effort on "
                "Anthropic models (it is served through a forced tool, which thinking does not allow); "
                "use json_schema",
                param="response_format",
            )
        body["thinking"] = thinking
    if output_config:
        body["output_config"] = output_config
    for name in _NATIVE:
        if name != "thinking" and payload.get(name) is not None:
            body[name] = payload[name]
    tier = payload.get("service_tier")
    if tier is not None:
        if tier not in _SERVICE_TIERS:
            raise BadRequest(
                f"service_tier '{tier}' is not supported by Anthropic models (use auto or default)",
                param="service_tier",
            )
        body["service_tier"] = _SERVICE_TIERS[tier]
    if payload.get("stream") is True:
        body["stream"] = True
    return body


def uses_json_tool(payload: Mapping[str, Any]) -> bool:
    """Whether the request asked for json_object output, answered through the forced JSON tool."""
    response_format = payload.get("response_format")
    return isinstance(response_format, dict) and response_format.get("type") == "json_object"


def has_adaptive_thinking(model: str) -> bool:
    """Whether `model` takes `thinking: {type: adaptive}` (Claude 4.6 on; unrecognised ids are assumed new)."""
    lowered = model.lower()
    found = _NEW_STYLE.search(lowered) or _OLD_STYLE.search(lowered)
    if found is None:
        return True
    return (int(found.group(1)), int(found.group(2) or 0)) >= ADAPTIVE_SINCE


def _effort_budget(payload: Mapping[str, Any], effort: str, body: dict[str, Any]) -> dict[str, Any]:
    """`thinking` for `reasoning_effort` on a model without adaptive thinking; `max_tokens` must stay above the
    budget: it is raised when the caller set none, and the budget shrinks to fit under the caller's."""
    budget = EFFORT_BUDGETS[effort]
    if not any(payload.get(name) is not None for name in ("max_completion_tokens", "max_tokens")):
        body["max_tokens"] = budget + DEFAULT_MAX_TOKENS
    elif body["max_tokens"] <= budget:
        budget = body["max_tokens"] - 1
        if budget < MIN_THINKING_BUDGET:
            raise BadRequest(
                f"reasoning_effort needs max_tokens above {MIN_THINKING_BUDGET} on model "
                f"{payload.get('model')} (its thinking budget counts inside max_tokens)",
                param="max_tokens",
            )
    return {"type": "enabled", "budget_tokens": budget}


def _refuse_unsupported(payload: Mapping[str, Any]) -> None:
    for name, value in payload.items():
        if name in _HANDLED or name in _DROPPED:
            continue
        neutral = _NEUTRAL.get(name)
        if neutral is None:
            raise BadRequest(f"parameter '{name}' is not supported for Anthropic models", param=name)
        if value is not None and not any(value == ok for ok in neutral if ok is not None):
            hint = " (Anthropic returns one choice)" if name == "n" else ""
            raise BadRequest(f"parameter '{name}' is not supported for Anthropic models{hint}", param=name)


def _max_tokens(payload: Mapping[str, Any], thinking: object) -> int:
    for name in ("max_completion_tokens", "max_tokens"):
        value = payload.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise BadRequest(f"'{name}' must be a positive integer", param=name)
        return value
    if isinstance(thinking, dict) and thinking.get("type") == "enabled":
        budget = thinking.get("budget_tokens")
        if isinstance(budget, int) and not isinstance(budget, bool):
            return budget + DEFAULT_MAX_TOKENS
    return DEFAULT_MAX_TOKENS


def _unit_interval(value: object, name: str) -> float | int | None:
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 1:
        raise BadRequest(f"'{name}' must be a number from 0 to 1 for Anthropic models", param=name)
    return value


def _stop_sequences(stop: object) -> list[str]:
    if stop is None:
        return []
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise BadRequest("'stop' must be a string or a list of strings", param="stop")
    for sequence in stops:
        if not sequence.strip():
            raise BadRequest(
                f"stop sequence {sequence!r} is not supported by Anthropic models (each stop sequence "
                "must contain a non-whitespace character)",
                param="stop",
            )
    return list(stops)


def _tools(payload: Mapping[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    raw_tools = payload.get("tools")
    tools: list[dict[str, Any]] = []
    if raw_tools is not None:
        if not isinstance(raw_tools, list):
            raise BadRequest("'tools' must be a list", param="tools")
        tools = [_tool(tool, i) for i, tool in enumerate(raw_tools)]
    choice = _tool_choice(payload.get("tool_choice"), bool(tools))
    if payload.get("parallel_tool_calls") is False and tools:
        choice = choice or {"type": "auto"}
        if choice["type"] != "none":
            choice["disable_parallel_tool_use"] = True
    return tools, choice


def _tool(tool: object, i: int) -> dict[str, Any]:
    if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(tool.get("function"), dict):
        raise BadRequest(f"tools[{i}]: only function tools are supported by Anthropic models", param=f"tools[{i}]")
    function = tool["function"]
    name = function.get("name")
    if not isinstance(name, str) or not name:
        raise BadRequest(f"tools[{i}].function.name is required", param=f"tools[{i}].function.name")
    schema = function.get("parameters")
    if schema is None:
        schema = {"type": "object", "properties": {}}
    elif not isinstance(schema, dict):
        raise BadRequest(
            f"tools[{i}].function.parameters must be a JSON schema object", param=f"tools[{i}].function.parameters"
        )
    elif "type" not in schema:
        schema = {"type": "object", **schema}
    out: dict[str, Any] = {"name": name}
    if function.get("description"):
        out["description"] = function["description"]
    out["input_schema"] = schema
    if function.get("strict") is True:
        out["strict"] = True
    if tool.get("cache_control") is not None:
        out["cache_control"] = tool["cache_control"]
    return out


def _tool_choice(choice: object, has_tools: bool) -> dict[str, Any] | None:
    if choice is None:
        return None
    if not has_tools:
        if choice in ("auto", "none"):
            return None  # nothing to choose from: the same answer either way
        raise BadRequest("tool_choice needs tools", param="tool_choice")
    if choice == "auto":
        return {"type": "auto"}
    if choice == "none":
        return {"type": "none"}
    if choice == "required":
        return {"type": "any"}
    if isinstance(choice, dict) and choice.get("type") == "function":
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if isinstance(name, str) and name:
            return {"type": "tool", "name": name}
    raise BadRequest(
        "tool_choice must be auto, none, required or {type: function, function: {name}} for Anthropic models",
        param="tool_choice",
    )


def _response_format(response_format: object, output_config: dict[str, Any]) -> bool:
    """Apply `response_format`; True when it needs the forced JSON tool."""
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "text":
        return False
    if kind == "json_object":
        return True
    if kind == "json_schema":
        assert isinstance(response_format, dict)
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise BadRequest("response_format.json_schema.schema is required", param="response_format.json_schema")
        output_config.setdefault("format", {"type": "json_schema", "schema": schema})
        return False
    raise BadRequest("response_format must be text, json_object or json_schema", param="response_format")


def _effort(effort: object) -> str | None:
    if effort is None or effort == "none":
        return None
    if effort not in _EFFORTS:
        raise BadRequest(
            f"reasoning_effort '{effort}' is not supported for Anthropic models (use none, {', '.join(_EFFORTS)})",
            param="reasoning_effort",
        )
    return _EFFORTS[str(effort)]
