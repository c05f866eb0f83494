"""The one `JSON` alias, and the OpenAI fields the gateway itself reads, as TypedDicts.

The gateway relays bodies it does not own: it reads a handful of fields and passes the rest on
untouched, so bodies stay plain dicts (orjson's output) and these types say which keys it relies on.
Every field is optional (`total=False`): callers and upstreams omit them, and each reader checks the
value's type before trusting it.
"""

from __future__ import annotations

from typing import Any, TypedDict

JSON = dict[str, Any]  # a JSON object as orjson parses it


class StreamOptions(TypedDict, total=False):
    include_usage: bool  # the gateway always sets it upstream, and shows usage only when the caller did


class OpenAIRequestFields(TypedDict, total=False):
    """What the gateway reads of an OpenAI-compatible request body."""

    model: str  # "{account}/{integration}", a virtual model, an alias or an ngrok-dialect model
    stream: bool
    stream_options: StreamOptions
    n: int  # choices: bounded by the target's `max_choices` before the limits reserve
    max_tokens: int  # the output-token estimate a tokens rule reserves
    max_completion_tokens: int
    messages: list[JSON]  # counted for the input-token estimate
    prompt: str | list[str]
    input: str | list[str]


class PromptTokensDetails(TypedDict, total=False):
    cached_tokens: int
    cache_write_tokens: int
    cache_creation_tokens: int  # LiteLLM's name for cache writes


class CompletionTokensDetails(TypedDict, total=False):
    reasoning_tokens: int


class OpenAIUsage(TypedDict, total=False):
    """An answer's `usage` (Chat Completions names; the Responses API says input/output_tokens)."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    input_tokens: int
    output_tokens: int
    prompt_tokens_details: PromptTokensDetails
    completion_tokens_details: CompletionTokensDetails
    input_tokens_details: PromptTokensDetails
    output_tokens_details: CompletionTokensDetails
