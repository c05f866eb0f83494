"""An integration's `type` and `config` -> the object that runs it, built once per config load.

Built-in checks come from `checks/`; the call-outs (`webhook`, `llm_judge`) from `callouts.py`. Every
builder refuses a bad `config` with `ValueError` naming the field, which `relaygate check` reports.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from relaygate.guardrails.callouts import compile_judge, compile_webhook
from relaygate.guardrails.checks.json_schema import compile_json_schema
from relaygate.guardrails.checks.length import compile_length
from relaygate.guardrails.checks.registry import TEXT_CHECKS
from relaygate.guardrails.checks.required_metadata import compile_required_metadata

_BUILDERS: dict[str, Callable[[Mapping[str, Any]], object]] = {
    **TEXT_CHECKS,
    "json_schema": compile_json_schema,
    "length": compile_length,
    "required_metadata": compile_required_metadata,
    "webhook": compile_webhook,
    "llm_judge": compile_judge,
}


def compile_check(type_name: str, config: Mapping[str, Any]) -> object:
    """The runnable check for one integration (ValueError: a bad config)."""
    builder = _BUILDERS.get(type_name)
    if builder is None:
        raise ValueError(f"unknown guardrail type {type_name!r}")
    return builder(config)
