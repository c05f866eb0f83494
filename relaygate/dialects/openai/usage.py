"""OpenAI usage objects (Chat Completions, Completions, Embeddings, Responses) read into the request's `Usage`."""

from __future__ import annotations

from typing import cast

from relaygate.context import Usage
from relaygate.wire_types import OpenAIUsage


def read_usage(value: object, into: Usage) -> None:
    """Normalise OpenAI (`prompt_tokens`) and newer (`input_tokens`) usage names.

    The keys are `OpenAIUsage`'s (mypy checks their spelling); each value's type is still checked,
    since an upstream may send anything.
    """
    if not isinstance(value, dict):
        return
    usage = cast(OpenAIUsage, value)
    prompt = usage.get("prompt_tokens", usage.get("input_tokens"))
    completion = usage.get("completion_tokens", usage.get("output_tokens"))
    if isinstance(prompt, int):
        into.input_tokens = prompt
    if isinstance(completion, int):
        into.output_tokens = completion
    elif isinstance(prompt, int) and into.output_tokens is None:
        into.output_tokens = 0  # embeddings and moderations produce no output tokens
    # Chat Completions say prompt/completion_tokens_details; the Responses API input/output_tokens_details.
    prompt_details = usage.get("prompt_tokens_details") or usage.get("input_tokens_details")
    if isinstance(prompt_details, dict):
        cached = prompt_details.get("cached_tokens")
        written = prompt_details.get("cache_write_tokens", prompt_details.get("cache_creation_tokens"))
        if isinstance(cached, int):
            into.cached_tokens = cached
        if isinstance(written, int):
            into.cache_write_tokens = written
    completion_details = usage.get("completion_tokens_details") or usage.get("output_tokens_details")
    if isinstance(completion_details, dict):
        reasoning = completion_details.get("reasoning_tokens")
        if isinstance(reasoning, int):
            into.reasoning_tokens = reasoning
