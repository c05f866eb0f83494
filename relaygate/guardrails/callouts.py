"""The guardrails that ask someone else: a `webhook` and an `llm_judge` (a model on this gateway).

Both are compiled here from their `config`; they run in `engine.py` (they are the only async checks).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

DEFAULT_WEBHOOK_TIMEOUT_MS = 2000
DEFAULT_JUDGE_TIMEOUT_MS = 10_000
JUDGE_PROMPT = (
    "You are a content policy checker. Policy:\n{policy}\n\n"
    "Does the following text violate the policy? Answer with one JSON object and nothing else: "
    '{{"violation": true|false, "reason": "<one short sentence>"}}.\n\nText:\n"""\n{text}\n"""'
)


@dataclass(frozen=True, slots=True)
class WebhookCheck:
    url: str
    headers: tuple[tuple[str, str], ...]
    timeout_ms: int


@dataclass(frozen=True, slots=True)
class JudgeCheck:
    model: str  # a model served by this gateway
    policy: str
    timeout_ms: int
    max_chars: int  # text beyond this is cut before it is sent to the judge


def _no_unknown(config: Mapping[str, Any], known: set[str]) -> None:
    unknown = sorted(set(config) - known)
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown field (expected one of {', '.join(sorted(known))})")


def compile_webhook(config: Mapping[str, Any]) -> WebhookCheck:
    """`{url, headers?, timeout_ms?}`: POST the stage's text and context, read `verdict`."""
    _no_unknown(config, {"url", "headers", "timeout_ms"})
    url = config.get("url")
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
        raise ValueError("url: must be an http(s) URL")
    headers = config.get("headers") or {}
    if not isinstance(headers, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise ValueError("headers: must map header names to strings")
    return WebhookCheck(url, tuple(headers.items()), _timeout(config, DEFAULT_WEBHOOK_TIMEOUT_MS))


def compile_judge(config: Mapping[str, Any]) -> JudgeCheck:
    """`{model, policy, timeout_ms?, max_chars?}`: ask a gateway model whether the text breaks `policy`."""
    _no_unknown(config, {"model", "policy", "timeout_ms", "max_chars"})
    model, policy = config.get("model"), config.get("policy")
    if not isinstance(model, str) or "/" not in model:
        raise ValueError("model: must name a model on this gateway (<account>/<model>)")
    if not isinstance(policy, str) or not policy.strip():
        raise ValueError("policy: must say, in words, what the text must not do")
    max_chars = config.get("max_chars", 20_000)
    if not isinstance(max_chars, int) or max_chars <= 0:
        raise ValueError("max_chars: must be a positive integer")
    return JudgeCheck(model, policy, _timeout(config, DEFAULT_JUDGE_TIMEOUT_MS), max_chars)


def _timeout(config: Mapping[str, Any], default: int) -> int:
    value = config.get("timeout_ms", default)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= 120_000:
        raise ValueError("timeout_ms: must be an integer from 1 to 120000")
    return value
