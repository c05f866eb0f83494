"""The `regex` check: deny and allow modes, flags, masking, the widths a streaming window needs,
config errors naming the field, and bounded run time (RE2, and a budget past which it stops)."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest

from relaygate.guardrails.checks.errors import CheckTimeout
from relaygate.guardrails.checks.regex import compile_regex

SSN = {"name": "ssn", "pattern": r"\b\d{3}-\d{2}-\d{4}\b"}
CODENAME = {"name": "codename", "pattern": r"project[ -]apollo", "flags": ["ignorecase"]}


def test_deny_reports_every_match_with_its_pattern_label() -> None:
    check = compile_regex({"patterns": [SSN, CODENAME]})
    text = "ssn 123-45-6789, Project Apollo, and 987-65-4321"
    result = check.evaluate(text)
    assert result.violated
    assert result.reason == "matched pattern(s): ssn, codename"
    assert [(text[span.start : span.end], span.label) for span in result.spans] == [
        ("123-45-6789", "SSN"),
        ("Project Apollo", "CODENAME"),
        ("987-65-4321", "SSN"),
    ]


def test_the_reason_names_patterns_never_the_matched_text() -> None:
    result = compile_regex({"patterns": [SSN]}).evaluate("my number is 123-45-6789")
    assert "123" not in result.reason


def test_deny_passes_a_text_without_matches() -> None:
    assert not compile_regex({"patterns": [SSN, CODENAME]}).evaluate("nothing here, 12-34").violated


def test_mask_writes_the_default_and_a_custom_replacement() -> None:
    text = "ssn 123-45-6789 and project apollo"
    check = compile_regex({"patterns": [SSN, CODENAME], "action": "mask"})
    assert check.action == "mask"
    assert check.mask(text, check.evaluate(text).spans) == "ssn [SSN_REDACTED] and [CODENAME_REDACTED]"
    custom = compile_regex({"patterns": [SSN], "action": "mask", "replacement": "<{NAME} removed>"})
    assert custom.mask(text, custom.evaluate(text).spans) == "ssn <SSN removed> and project apollo"


def test_overlapping_matches_of_two_patterns_are_masked_as_one_region() -> None:
    check = compile_regex(
        {"patterns": [{"name": "a", "pattern": "abcd"}, {"name": "b", "pattern": "cdef"}], "action": "mask"}
    )
    text = "xx abcdef yy"
    result = check.evaluate(text)
    assert len(result.spans) == 2
    assert check.mask(text, result.spans) == "xx [A_REDACTED] yy"


def test_flags_ignorecase_multiline_dotall() -> None:
    def violated(pattern: dict[str, Any], text: str) -> bool:
        return compile_regex({"patterns": [pattern]}).evaluate(text).violated

    assert not violated({"name": "p", "pattern": "secret"}, "SECRET")
    assert violated({"name": "p", "pattern": "secret", "flags": ["ignorecase"]}, "SECRET")
    assert not violated({"name": "p", "pattern": "^deny$"}, "first\ndeny\nlast")
    assert violated({"name": "p", "pattern": "^deny$", "flags": ["multiline"]}, "first\ndeny\nlast")
    assert not violated({"name": "p", "pattern": "a.b"}, "a\nb")
    assert violated({"name": "p", "pattern": "a.b", "flags": ["dotall"]}, "a\nb")


def test_a_patterns_flags_do_not_leak_into_the_others() -> None:
    check = compile_regex(
        {"patterns": [{"name": "a", "pattern": "abc", "flags": ["ignorecase"]}, {"name": "b", "pattern": "xyz"}]}
    )
    assert check.evaluate("ABC").violated
    assert not check.evaluate("XYZ").violated  # one combined scan runs first: its flags stay per pattern


def test_allow_mode_violates_only_when_no_pattern_matches() -> None:
    check = compile_regex(
        {"mode": "allow", "patterns": [{"name": "ticket", "pattern": r"JIRA-\d+"}, {"name": "ok", "pattern": "^ok"}]}
    )
    assert not check.evaluate("about JIRA-123 please").violated
    assert not check.evaluate("ok then").violated
    result = check.evaluate("about nothing")
    assert result.violated
    assert result.reason == "does not match any allowed pattern"
    assert result.spans == ()
    assert check.max_match_chars is None  # a whole-text verdict: no window can decide it


def test_offsets_are_characters_in_non_ascii_text() -> None:
    check = compile_regex({"patterns": [SSN]})
    text = "naïve résumé 日本 123-45-6789 😀 end"
    (span,) = check.evaluate(text).spans
    assert text[span.start : span.end] == "123-45-6789"


def test_a_lone_surrogate_does_not_break_evaluation() -> None:
    check = compile_regex({"patterns": [SSN]})
    text = "\ud800 123-45-6789"
    (span,) = check.evaluate(text).spans
    assert text[span.start : span.end] == "123-45-6789"


@pytest.mark.parametrize(
    ("patterns", "expected"),
    [
        ([{"name": "p", "pattern": r"\d{3}-\d{4}"}], 8),
        ([{"name": "p", "pattern": r"[a-z]{2,5}|x"}], 5),
        ([{"name": "p", "pattern": r"\d{3}-\d{4}"}, {"name": "q", "pattern": r"(?:ab){10}"}], 20),
        ([{"name": "p", "pattern": "a+"}], None),
        ([{"name": "p", "pattern": r"\d{3}"}, {"name": "q", "pattern": "x.*y"}], None),
    ],
)
def test_max_match_chars_is_the_widest_pattern_or_none_when_unbounded(
    patterns: list[dict[str, Any]], expected: int | None
) -> None:
    assert compile_regex({"patterns": patterns}).max_match_chars == expected


def test_a_catastrophic_backtracking_pattern_runs_in_linear_time() -> None:
    check = compile_regex({"patterns": [{"name": "evil", "pattern": "(a+)+$"}]})
    started = time.perf_counter()
    assert not check.evaluate("a" * 40 + "!").violated  # Python's re would take hours
    assert not check.evaluate("a" * 1_000_000 + "!").violated
    assert check.evaluate("a" * 1_000).violated
    assert time.perf_counter() - started < 2.0


def test_a_pattern_slow_on_re2_stops_at_its_budget_with_check_timeout() -> None:
    # RE2's DFA cannot hold this pattern's states on random a/b text: its NFA reads ~2 s per MB.
    check = compile_regex({"patterns": [{"name": "slow", "pattern": "a[ab]{300}c"}]}, budget_seconds=0.05)
    rng = random.Random(7)
    text = "".join(rng.choice("ab") for _ in range(1_000_000))
    started = time.perf_counter()
    with pytest.raises(CheckTimeout, match="50 ms"):
        check.evaluate(text)
    assert time.perf_counter() - started < 1.0
    assert not check.evaluate(text[:2000]).violated  # a prompt-sized text finishes well within it


def _error(config: dict[str, Any]) -> str:
    with pytest.raises(ValueError) as caught:
        compile_regex(config)
    return str(caught.value)


def test_config_errors_name_the_field() -> None:
    assert _error({"patterns": [SSN], "mdoe": "deny"}).startswith("mdoe: unknown field")
    assert _error({"patterns": []}).startswith("patterns:")
    assert _error({}).startswith("patterns:")
    assert _error({"patterns": [SSN], "mode": "block"}).startswith("mode:")
    assert _error({"patterns": [SSN], "action": "redact"}).startswith("action:")
    assert _error({"patterns": [SSN], "mode": "allow", "action": "mask"}).startswith("action:")
    assert _error({"patterns": [{"name": "p", "pattern": "x", "flag": []}]}).startswith("patterns[0].flag: unknown")
    assert _error({"patterns": [{"name": "p", "pattern": "x", "flags": ["verbose"]}]}).startswith("patterns[0].flags")
    assert _error({"patterns": [SSN, {"name": "SSN", "pattern": "x"}]}).startswith("patterns[1].name")
    assert _error({"patterns": [{"name": "9lives", "pattern": "x"}]}).startswith("patterns[0].name")
    assert _error({"patterns": [{"name": "p", "pattern": ""}]}).startswith("patterns[0].pattern")
    assert _error({"patterns": [{"name": "p", "pattern": "x" * 1001}]}).startswith("patterns[0].pattern: at most")
    many = [{"name": f"p{index}", "pattern": "x"} for index in range(21)]
    assert _error({"patterns": many}).startswith("patterns: at most 20")
    assert _error({"patterns": [SSN], "replacement": 3}).startswith("replacement:")


def test_a_bad_regex_is_refused_naming_the_pattern() -> None:
    message = _error({"patterns": [SSN, {"name": "broken", "pattern": "(unclosed"}]})
    assert message.startswith("patterns[1].pattern: 'broken' is not a valid regular expression")


@pytest.mark.parametrize("pattern", [r"foo(?=bar)", r"(?<!x)y", r"(a)\1", r"a++", r"(?>a)", r"a{1001}"])
def test_what_re2_cannot_run_is_refused_at_load(pattern: str) -> None:
    message = _error({"patterns": [{"name": "p", "pattern": pattern}]})
    assert message.startswith("patterns[0].pattern: 'p' uses syntax RE2 cannot run")


def test_a_deny_pattern_matching_the_empty_string_is_refused() -> None:
    assert "matches the empty string" in _error({"patterns": [{"name": "p", "pattern": "x*"}]})
    allowed = compile_regex({"mode": "allow", "patterns": [{"name": "p", "pattern": "^[a-z ]*$"}]})
    assert not allowed.evaluate("only lower case").violated
    assert allowed.evaluate("Not Only").violated
