"""Anthropic usage objects (`message.usage`, `message_delta.usage`, an answer's `usage`) as the request's `Usage`."""

from __future__ import annotations

from relaygate.context import Usage

_INPUT_KEYS = ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")


def read_messages_usage(usage: object, into: Usage, seen: dict[str, int] | None = None) -> None:
    """Anthropic usage into `into`; `seen` keeps the latest value per field across stream events.

    `input_tokens` becomes every input token (uncached + cache reads + cache writes), with the reads and
    writes also kept apart (`cached_tokens`, `cache_write_tokens`) so cost prices them at their own rates;
    `output_tokens_details.thinking_tokens` becomes `reasoning_tokens`.
    """
    if not isinstance(usage, dict):
        return
    latest = seen if seen is not None else {}
    for key in (*_INPUT_KEYS, "output_tokens"):
        value = usage.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            latest[key] = value
    details = usage.get("output_tokens_details")
    if isinstance(details, dict) and isinstance(details.get("thinking_tokens"), int):
        into.reasoning_tokens = details["thinking_tokens"]
    if any(key in latest for key in _INPUT_KEYS):
        into.input_tokens = sum(latest.get(key, 0) for key in _INPUT_KEYS)
    if "cache_read_input_tokens" in latest:
        into.cached_tokens = latest["cache_read_input_tokens"]
    if "cache_creation_input_tokens" in latest:
        into.cache_write_tokens = latest["cache_creation_input_tokens"]
    if "output_tokens" in latest:
        into.output_tokens = latest["output_tokens"]
