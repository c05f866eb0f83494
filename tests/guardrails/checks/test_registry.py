"""The registry compiles each text check by its integration type name."""

from __future__ import annotations

import pytest

from relaygate.guardrails.checks.keywords import KeywordCheck
from relaygate.guardrails.checks.pii import PiiCheck
from relaygate.guardrails.checks.regex import RegexCheck
from relaygate.guardrails.checks.registry import TEXT_CHECKS, compile_text_check
from relaygate.guardrails.checks.secrets import SecretsCheck


def test_each_type_compiles_its_check() -> None:
    assert set(TEXT_CHECKS) == {"regex", "keywords", "pii", "secrets"}
    assert isinstance(compile_text_check("regex", {"patterns": [{"name": "p", "pattern": "x"}]}), RegexCheck)
    assert isinstance(compile_text_check("keywords", {"words": ["x"]}), KeywordCheck)
    assert isinstance(compile_text_check("pii", {}), PiiCheck)
    assert isinstance(compile_text_check("secrets", {}), SecretsCheck)


def test_a_compiled_check_evaluates_and_masks() -> None:
    check = compile_text_check("pii", {"entities": ["email"], "action": "mask"})
    text = "reach me at ada@example.com"
    result = check.evaluate(text)
    assert result.maskable
    assert check.mask(text, result.spans) == "reach me at [EMAIL_REDACTED]"


def test_an_unknown_type_or_config_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="^type: unknown text check 'profanity'"):
        compile_text_check("profanity", {})
    with pytest.raises(ValueError, match="^entities"):
        compile_text_check("pii", {"entities": ["names"]})
