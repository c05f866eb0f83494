"""The built-in text checks by integration type name, for the engine to compile a config's checks.

Only the span checks that share the `TextCheck` interface are here (`regex`, `keywords`, `pii`,
`secrets`); `json_schema`, `length` and `required_metadata` take other inputs (a whole answer, a
request payload, metadata) and are compiled through their own modules.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from relaygate.guardrails.checks.base import TextCheck
from relaygate.guardrails.checks.keywords import compile_keywords
from relaygate.guardrails.checks.pii import compile_pii
from relaygate.guardrails.checks.regex import compile_regex
from relaygate.guardrails.checks.secrets import compile_secrets

TEXT_CHECKS: Mapping[str, Callable[[Mapping[str, Any]], TextCheck]] = MappingProxyType(
    {
        "regex": compile_regex,
        "keywords": compile_keywords,
        "pii": compile_pii,
        "secrets": compile_secrets,
    }
)


def compile_text_check(type_name: str, config: Mapping[str, Any]) -> TextCheck:
    """The compiled check of integration type `type_name`; ValueError for an unknown type or a bad config."""
    compile_check = TEXT_CHECKS.get(type_name)
    if compile_check is None:
        raise ValueError(f"type: unknown text check {type_name!r} (expected one of: {', '.join(TEXT_CHECKS)})")
    return compile_check(config)
