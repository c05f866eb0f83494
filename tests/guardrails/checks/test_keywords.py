"""The `keywords` check: whole words in any script, case folding, the longest phrase first, the
any/all/none operators, word files, masking, config errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from relaygate.guardrails.checks.keywords import MAX_ALL_WORDS, compile_keywords


def occurrences(config: dict[str, Any], text: str) -> list[str]:
    return [text[span.start : span.end] for span in compile_keywords(config).evaluate(text).spans]


def test_whole_words_only_by_default() -> None:
    config = {"words": ["cat"]}
    assert occurrences(config, "a cat, the cat. (cat) cat") == ["cat", "cat", "cat", "cat"]
    assert occurrences(config, "cats concatenate bobcat cat_food cat9") == []


def test_whole_word_off_finds_the_word_inside_others() -> None:
    assert occurrences({"words": ["cat"], "whole_word": False}, "concatenate cats") == ["cat", "cat"]


def test_case_insensitive_by_default_and_case_sensitive_on_request() -> None:
    assert occurrences({"words": ["Apollo"]}, "APOLLO apollo Apollo") == ["APOLLO", "apollo", "Apollo"]
    assert occurrences({"words": ["Apollo"], "case_sensitive": True}, "APOLLO apollo Apollo") == ["Apollo"]
    assert occurrences({"words": ["straße"]}, "STRASSE Straße") == ["Straße"]  # simple case folding
    assert occurrences({"words": ["straße", "strasse"]}, "STRASSE Straße") == ["STRASSE", "Straße"]


def test_word_edges_are_unicode_aware() -> None:
    assert occurrences({"words": ["café"]}, "un café. cafés écafé") == ["café"]
    assert occurrences({"words": ["naïve"]}, "a naïve plan, naïveté") == ["naïve"]
    assert occurrences({"words": ["日本"]}, "東京は日本の首都") == []  # glued to other letters
    assert occurrences({"words": ["日本"]}, "东京 日本 首都") == ["日本"]


def test_punctuation_in_words_is_literal() -> None:
    assert occurrences({"words": ["c++"]}, "I write c++ and c++x and cxx") == ["c++"]
    assert occurrences({"words": ["a.b"]}, "axb a.b") == ["a.b"]
    assert occurrences({"words": ["$100"]}, "pay $100 now") == ["$100"]


def test_the_longest_phrase_wins_where_two_fit() -> None:
    check = compile_keywords({"words": ["new", "new york"], "action": "mask"})
    text = "New York is new, a New Yorker"
    result = check.evaluate(text)
    assert [text[span.start : span.end] for span in result.spans] == ["New York", "new", "New"]
    assert check.mask(text, result.spans) == ("[KEYWORD_REDACTED] is [KEYWORD_REDACTED], a [KEYWORD_REDACTED] Yorker")


def test_adjacent_words_share_the_separator_between_them() -> None:
    assert occurrences({"words": ["a", "b"]}, "a b a,b") == ["a", "b", "a", "b"]


def test_operator_any_reports_counts_never_the_words() -> None:
    result = compile_keywords({"words": ["apollo", "gemini"]}).evaluate("apollo, apollo and gemini")
    assert result.violated
    assert result.reason == "found 3 occurrence(s) of 2 keyword(s)"
    assert "apollo" not in result.reason


def test_operator_all_needs_every_word() -> None:
    check = compile_keywords({"words": ["alpha", "beta"], "operator": "all", "action": "mask"})
    assert not check.evaluate("alpha only").violated
    result = check.evaluate("beta then alpha")
    assert result.violated and len(result.spans) == 2
    assert check.max_match_chars is None  # a whole-text verdict


def test_operator_all_sees_a_word_overlapped_by_another() -> None:
    check = compile_keywords({"words": ["ab cd", "cd ef"], "operator": "all", "action": "mask"})
    text = "x ab cd ef y"
    result = check.evaluate(text)
    assert result.violated
    assert check.mask(text, result.spans) == "x [KEYWORD_REDACTED] y"


def test_operator_none_violates_when_no_word_occurs() -> None:
    check = compile_keywords({"words": ["ticket", "jira"], "operator": "none"})
    result = check.evaluate("please fix it")
    assert result.violated
    assert result.spans == ()
    assert result.reason == "contains none of the required keywords"
    assert not check.evaluate("see JIRA-12").violated


def test_words_file_skips_comments_and_blank_lines(tmp_path: Path) -> None:
    words_file = tmp_path / "words.txt"
    words_file.write_text("# banned words\napollo\n\n  gemini  \n# mercury\n", encoding="utf-8")
    check = compile_keywords({"words_file": str(words_file)})
    assert sorted(check.words) == ["apollo", "gemini"]
    assert not check.evaluate("mercury").violated


def test_duplicate_words_count_once_and_words_are_stripped() -> None:
    check = compile_keywords({"words": ["Apollo", "apollo", " apollo "]})
    assert check.words == ("Apollo",)
    assert compile_keywords({"words": ["Apollo", "apollo"], "case_sensitive": True}).words == ("Apollo", "apollo")


def test_max_match_chars_is_the_longest_word() -> None:
    assert compile_keywords({"words": ["a", "new york", "abc"]}).max_match_chars == 8
    assert compile_keywords({"words": ["a"], "operator": "none"}).max_match_chars is None


def test_a_custom_replacement() -> None:
    check = compile_keywords({"words": ["apollo"], "action": "mask", "replacement": "***"})
    text = "project apollo"
    assert check.mask(text, check.evaluate(text).spans) == "project ***"


def test_a_large_word_list_is_one_fast_scan() -> None:
    words = [f"word{index}" for index in range(10_000)]
    check = compile_keywords({"words": words})
    text = "filler " * 300 + "word9999 and word0"
    assert [text[span.start : span.end] for span in check.evaluate(text).spans] == ["word9999", "word0"]


def _error(config: dict[str, Any]) -> str:
    with pytest.raises(ValueError) as caught:
        compile_keywords(config)
    return str(caught.value)


def test_config_errors_name_the_field(tmp_path: Path) -> None:
    assert _error({}).startswith("words: required")
    assert _error({"words": []}).startswith("words: must be a non-empty list")
    assert _error({"words": ["ok", "  "]}).startswith("words[1]:")
    assert _error({"words": ["ok", 3]}).startswith("words[1]:")
    assert _error({"words": ["x"], "words_file": "f"}).startswith("words_file: give words or words_file")
    assert _error({"words_file": str(tmp_path / "missing.txt")}).startswith("words_file: cannot read")
    (tmp_path / "empty.txt").write_text("# nothing\n", encoding="utf-8")
    assert _error({"words_file": str(tmp_path / "empty.txt")}).startswith("words_file:")
    assert _error({"words": ["x"], "operator": "some"}).startswith("operator:")
    assert _error({"words": ["x"], "case_sensitive": "yes"}).startswith("case_sensitive:")
    assert _error({"words": ["x"], "whole_words": True}).startswith("whole_words: unknown field")
    assert _error({"words": ["x"], "operator": "none", "action": "mask"}).startswith("action:")
    assert _error({"words": ["x" * 257]}).startswith("words[0]: at most 256")
    too_many = [f"w{index}" for index in range(MAX_ALL_WORDS + 1)]
    assert _error({"words": too_many, "operator": "all"}).startswith("words: operator all")
