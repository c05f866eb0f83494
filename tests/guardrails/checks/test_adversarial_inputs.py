"""Every text check finishes on 1 MB of hostile input: long runs of the characters its patterns
start with, near-misses repeated, and multi-byte text. A regex or keyword check may instead stop at
its budget (CheckTimeout): that too is finishing. pytest-timeout is not installed, so each run is
timed and held to a generous bound (the real times are milliseconds to a few hundred)."""

from __future__ import annotations

import time

import pytest

from relaygate.guardrails.checks.base import TextCheck
from relaygate.guardrails.checks.errors import CheckTimeout
from relaygate.guardrails.checks.keywords import compile_keywords
from relaygate.guardrails.checks.pii import compile_pii
from relaygate.guardrails.checks.regex import compile_regex
from relaygate.guardrails.checks.secrets import KINDS, compile_secrets

SIZE = 1_000_000
BOUND_SECONDS = 10.0


def _repeat(piece: str) -> str:
    return (piece * (SIZE // len(piece) + 1))[:SIZE]


INPUTS = {
    "a": "a" * SIZE,
    "1": "1" * SIZE,
    "@": "@" * SIZE,
    ":": ":" * SIZE,
    "a@": _repeat("a@"),
    "local parts": _repeat("a" * 63 + "@"),
    "digit groups": _repeat("1111 "),
    "dashed digits": _repeat("123-"),
    "dotted digits": _repeat("1."),
    "hex colons": _repeat("1:"),
    "plus digits": _repeat("+1 "),
    "iban-like": _repeat("GB82 "),
    "key prefixes": _repeat("sk-ant-AKIAghp_xoxb-AIza"),
    "jwt parts": _repeat("eyJ."),
    "pem headers": _repeat("-----BEGIN PRIVATE KEY-----\n"),
    "base64": _repeat("Zx8Qp2Lm9Vt4Rk7Wn3Jb6Hc1Fd5Gs0Yu+/"),
    "secret assignments": _repeat("secret="),
    "multi-byte": _repeat("é日😀"),
}

CHECKS: dict[str, TextCheck] = {
    "pii": compile_pii({"action": "mask"}),
    "secrets": compile_secrets({"kinds": list(KINDS), "action": "mask"}),
    "keywords": compile_keywords({"words": ["apollo", "new york", "a", "1"], "action": "mask"}),
    "regex": compile_regex(
        {"patterns": [{"name": "ssn", "pattern": r"\b\d{3}-\d{2}-\d{4}\b"}, {"name": "run", "pattern": "(a+)+$"}]}
    ),
}


@pytest.mark.parametrize("input_name", INPUTS)
@pytest.mark.parametrize("check_name", CHECKS)
def test_each_check_finishes_on_a_megabyte_of_hostile_input(check_name: str, input_name: str) -> None:
    check, text = CHECKS[check_name], INPUTS[input_name]
    started = time.perf_counter()
    try:
        result = check.evaluate(text)
    except CheckTimeout:
        assert check_name in ("regex", "keywords"), "only checks with operator-written patterns have a budget"
    else:
        if result.spans:
            assert check.mask(text, result.spans)
    assert time.perf_counter() - started < BOUND_SECONDS
