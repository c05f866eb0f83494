"""Anthropic (`provider-account/anthropic`): wiring only; the translation lives in its sibling modules.

- chat: the OpenAI body becomes a Messages API body (request.py), POSTed to `{base}/v1/messages`; the
  answer comes back OpenAI-shaped (response.py, stream.py) and errors are classified (errors.py).
- messages / messages_count_tokens (the inbound Anthropic Messages API): the body goes out as the caller
  sent it (`model` already rewritten) to `{base}/v1/messages` or `{base}/v1/messages/count_tokens`, with
  the caller's `anthropic-version` (else our default) and `anthropic-beta` flags (added to any configured
  on the integration), and the raw Anthropic answer (body, stream or error) comes back untranslated.

Auth: api-key -> `x-api-key`, bearer-auth -> `Authorization: Bearer`, header -> the headers as given;
always `anthropic-version: 2023-06-01` unless the headers set one. 2023-06-01 is pinned because it still
accepts `temperature` and `top_p`, which version 2026-10-21 refuses.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson

from relaygate.providers.anthropic.errors import classify, map_status
from relaygate.providers.anthropic.request import JSON_TOOL_NAME, to_anthropic_request, uses_json_tool
from relaygate.providers.anthropic.response import translate_answer
from relaygate.providers.anthropic.stream import AnthropicStreamTranslator
from relaygate.providers.base import MESSAGES, MESSAGES_COUNT_TOKENS, UpstreamCall, UpstreamResponse
from relaygate.providers.credentials import secret_value
from relaygate.providers.translated import TranslatedResponse
from relaygate.upstream import relay

DEFAULT_BASE_URL = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"
MESSAGES_PATH = "/v1/messages"
COUNT_TOKENS_PATH = "/v1/messages/count_tokens"
# Caller headers forwarded on the native Messages paths.
_FORWARDED = ("anthropic-version", "anthropic-beta")


class AnthropicAdapter:
    """Chat translated to the Messages API; the Messages API itself relayed natively."""

    __slots__ = ()
    kind = "anthropic"
    max_choices = 1  # no `n`: n > 1 is refused (before any limit reserves it)
    operations: frozenset[str] = frozenset({"chat", MESSAGES.name, MESSAGES_COUNT_TOKENS.name})

    def configure(self, account: Any, auth: Any) -> tuple[dict[str, str], dict[str, Any]]:
        """Auth headers for every call of the account's models (no adapter options)."""
        if auth is None:
            raise ValueError("is required for anthropic (an api-key, bearer-auth or header credential)")
        if auth.type == "api-key":
            headers = {"x-api-key": secret_value(auth.api_key)}
        elif auth.type == "bearer-auth":
            headers = {"Authorization": f"Bearer {secret_value(auth.bearer_token)}"}
        elif auth.type == "header":
            headers = {name: secret_value(value) for name, value in auth.headers.items()}
        else:
            raise ValueError(f"type {auth.type} is not usable with anthropic (use api-key, bearer-auth or header)")
        if not any(name.lower() == "anthropic-version" for name in headers):
            headers["anthropic-version"] = ANTHROPIC_VERSION
        return headers, {}

    async def open(self, session: aiohttp.ClientSession, call: UpstreamCall) -> UpstreamResponse:
        target = call.target
        headers = {"Content-Type": "application/json", **dict(target.headers)}
        name = call.operation.name
        if name in (MESSAGES.name, MESSAGES_COUNT_TOKENS.name):
            path = MESSAGES_PATH if name == MESSAGES.name else COUNT_TOKENS_PATH
            _forward_caller_headers(headers, call.inbound_headers)
            body = orjson.dumps(call.payload)
            return await relay.send(
                session, "POST", target.base_url + path, headers=headers, data=body, model=target.name, caps=call.caps
            )
        payload = call.payload or {}
        request = to_anthropic_request(payload)
        json_tool = JSON_TOOL_NAME if uses_json_tool(payload) else None
        strict = call.strict_openai
        response = await relay.send(
            session,
            "POST",
            target.base_url + MESSAGES_PATH,
            headers=headers,
            data=orjson.dumps(request),
            model=target.name,
            caps=call.caps,
        )
        model = target.model_id
        return TranslatedResponse(
            response,
            body=lambda raw: translate_answer(raw, model, strict_openai=strict, json_tool=json_tool),
            stream=AnthropicStreamTranslator(
                model, strict_openai=strict, json_tool=json_tool, max_event_bytes=call.caps.sse_line_bytes
            )
            if call.stream
            else None,
            classify=classify,
            status=map_status,
        )


def _forward_caller_headers(headers: dict[str, str], inbound: tuple[tuple[str, str], ...]) -> None:
    """The caller's anthropic-version replaces ours; its anthropic-beta flags join the configured ones
    (names compared case-insensitively; the API reads anthropic-beta as a comma-separated list)."""
    found: dict[str, list[str]] = {}
    for name, value in inbound:
        lowered = name.lower()
        if lowered in _FORWARDED and value.strip():
            found.setdefault(lowered, []).append(value.strip())
    for lowered, values in found.items():
        existing = [k for k in headers if k.lower() == lowered]
        configured = [headers.pop(k) for k in existing]
        if lowered == "anthropic-beta":
            flags = [f.strip() for v in configured + values for f in v.split(",") if f.strip()]
            headers[lowered] = ",".join(dict.fromkeys(flags))
        else:
            headers[lowered] = values[-1]
