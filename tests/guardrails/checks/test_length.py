"""The `length` check: character, word and estimated-token bounds on a text, and the output-token
cap on a request (lowered in mutate mode, blocked in validate mode)."""

from __future__ import annotations

from typing import Any

import pytest

from relaygate.guardrails.checks.length import compile_length, estimate_tokens


def test_character_bounds() -> None:
    check = compile_length({"min_chars": 3, "max_chars": 10})
    assert not check.evaluate("abc").violated
    assert not check.evaluate("a" * 10).violated
    assert check.evaluate("ab").reason == "2 characters, fewer than the 3 required"
    assert check.evaluate("a" * 11).reason == "11 characters, more than the 10 allowed"


def test_word_bounds_count_whitespace_separated_words() -> None:
    check = compile_length({"min_words": 2, "max_words": 3})
    assert not check.evaluate("two\nwords").violated
    assert check.evaluate("  one  ").reason == "1 words, fewer than the 2 required"
    assert check.evaluate("a b\tc d").reason == "4 words, more than the 3 allowed"


def test_input_tokens_are_estimated_as_a_quarter_of_the_characters_rounded_up() -> None:
    assert (estimate_tokens(""), estimate_tokens("abc"), estimate_tokens("abcd"), estimate_tokens("abcde")) == (
        0,
        1,
        1,
        2,
    )
    check = compile_length({"max_input_tokens": 2})
    assert not check.evaluate("a" * 8).violated
    assert check.evaluate("a" * 9).reason == "~3 tokens (estimated), more than the 2 allowed"


def test_an_output_cap_alone_passes_every_text() -> None:
    check = compile_length({"max_output_tokens": 100})
    assert not check.evaluate("x" * 100_000).violated
    assert check.action == "block" and check.max_match_chars is None


def test_cap_output_tokens_mutate_lowers_every_value_over_the_cap() -> None:
    check = compile_length({"max_output_tokens": 1000})
    payload: dict[str, Any] = {"messages": [], "max_tokens": 4000, "max_completion_tokens": 500}
    assert check.cap_output_tokens(payload, True) == ("mutate", "max_tokens lowered to the cap of 1000 output tokens")
    assert payload["max_tokens"] == 1000 and payload["max_completion_tokens"] == 500


def test_cap_output_tokens_validate_blocks_a_value_over_the_cap() -> None:
    check = compile_length({"max_output_tokens": 1000})
    payload: dict[str, Any] = {"messages": [], "max_completion_tokens": 1001}
    assert check.cap_output_tokens(payload, False) == (
        "block",
        "max_completion_tokens 1001 is over the cap of 1000 output tokens",
    )
    assert payload["max_completion_tokens"] == 1001  # validate never edits the request


def test_cap_output_tokens_passes_values_within_the_cap() -> None:
    check = compile_length({"max_output_tokens": 1000})
    for payload in ({"max_tokens": 1000}, {"max_output_tokens": 10, "input": "hi"}, {"max_tokens": "lots"}):
        before = dict(payload)
        assert check.cap_output_tokens(dict(payload), True) == ("pass", "")
        assert check.cap_output_tokens(payload, False) == ("pass", "")
        assert payload == before


def test_an_absent_limit_is_set_in_mutate_mode_and_passes_in_validate_mode() -> None:
    check = compile_length({"max_output_tokens": 256})
    chat: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    assert check.cap_output_tokens(chat, False) == ("pass", "")
    assert "max_completion_tokens" not in chat
    assert check.cap_output_tokens(chat, True) == (
        "mutate",
        "max_completion_tokens set to the cap of 256 output tokens",
    )
    assert chat["max_completion_tokens"] == 256
    responses: dict[str, Any] = {"model": "m", "input": "hi"}
    assert check.cap_output_tokens(responses, True)[0] == "mutate"
    assert responses["max_output_tokens"] == 256


def test_anthropic_max_tokens_is_capped() -> None:
    check = compile_length({"max_output_tokens": 1024})
    payload: dict[str, Any] = {"model": "claude", "max_tokens": 8192, "messages": []}
    assert check.cap_output_tokens(payload, True)[0] == "mutate"
    assert payload["max_tokens"] == 1024


def test_a_float_over_the_cap_counts_and_a_bool_does_not() -> None:
    check = compile_length({"max_output_tokens": 10})
    assert check.cap_output_tokens({"max_tokens": 20.0}, False)[0] == "block"
    assert check.cap_output_tokens({"max_tokens": True}, False) == ("pass", "")


def test_without_an_output_cap_requests_pass_untouched() -> None:
    check = compile_length({"max_chars": 10})
    payload: dict[str, Any] = {"messages": [], "max_tokens": 10**6}
    assert check.cap_output_tokens(payload, True) == ("pass", "")
    assert payload == {"messages": [], "max_tokens": 10**6}


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({}, "config"),
        ({"max_chars": 0}, "max_chars"),
        ({"max_words": -1}, "max_words"),
        ({"max_input_tokens": "10"}, "max_input_tokens"),
        ({"max_output_tokens": True}, "max_output_tokens"),
        ({"min_chars": 10, "max_chars": 5}, "min_chars"),
        ({"min_words": 3, "max_words": 2}, "min_words"),
        ({"max_char": 5}, "max_char"),
    ],
)
def test_config_errors_name_the_field(config: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError) as caught:
        compile_length(config)
    assert str(caught.value).startswith(f"{field}: ")
