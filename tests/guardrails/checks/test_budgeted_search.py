"""Searching in windows gives exactly the matches of one scan of the whole text (at window edges
too), and the deadline stops a search between windows."""

from __future__ import annotations

import random

import pytest

from relaygate.guardrails.checks import budgeted_search
from relaygate.guardrails.checks.budgeted_search import Deadline, finditer_within, search_within
from relaygate.guardrails.checks.errors import CheckTimeout
from relaygate.guardrails.checks.re2_text import compile_re2, pattern_width


def _text(seed: int, size: int) -> bytes:
    rng = random.Random(seed)
    pieces = ["ab", "abba", "a", "b", " ", "\n", "é", "日本", "x", "ab ab", "bab"]
    return "".join(rng.choice(pieces) for _ in range(size)).encode()


@pytest.mark.parametrize(
    "pattern",
    [
        r"\bab{1,3}a\b",  # word boundaries read the neighbours outside the window
        r"b{2,5}$",  # end of text only, not end of window
        r"(?m)^ab",  # start of line
        r"a(?:b|é){2,6}",
        r"日本 ?x?",
        r"[^\n]{7}",  # a match can start inside a multi-byte character's window edge
        r"(?:ab){1,4}|bab",
    ],
)
@pytest.mark.parametrize("window", [16, 64, 1000])
def test_windows_find_what_one_scan_finds(monkeypatch: pytest.MonkeyPatch, pattern: str, window: int) -> None:
    monkeypatch.setattr(budgeted_search, "WINDOW_BYTES", window)
    compiled = compile_re2(pattern)
    width = pattern_width(pattern)[1]
    data = _text(window, 3000) + b"abb"  # so that `$` has something to match
    expected = [(match.start(), match.end()) for match in compiled.finditer(data)]
    found = [(match.start(), match.end()) for match in finditer_within(compiled, data, width, Deadline(60, "test"))]
    assert expected  # the pattern does occur
    assert found == expected


def test_search_from_a_position_finds_the_next_match(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(budgeted_search, "WINDOW_BYTES", 8)
    compiled = compile_re2("needle")
    data = b"x" * 100 + b"needle" + b"y" * 100 + b"needle"
    first = search_within(compiled, data, 0, 6, Deadline(60, "test"))
    assert first is not None and first.start() == 100
    second = search_within(compiled, data, 101, 6, Deadline(60, "test"))
    assert second is not None and second.start() == 206
    assert search_within(compiled, data, 207, 6, Deadline(60, "test")) is None


def test_an_unbounded_pattern_is_one_scan() -> None:
    compiled = compile_re2("a+b")
    data = b"x" * 50_000 + b"a" * 40_000 + b"b"
    match = search_within(compiled, data, 0, None, Deadline(60, "test"))
    assert match is not None and (match.start(), match.end()) == (50_000, 90_001)


def test_a_spent_deadline_stops_between_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(budgeted_search, "WINDOW_BYTES", 1024)
    compiled = compile_re2("needle")
    data = b"x" * 100_000 + b"needle"
    with pytest.raises(CheckTimeout, match="demo check exceeded its 0 ms budget"):
        search_within(compiled, data, 0, 6, Deadline(0, "demo"))
    small = b"x" * 100 + b"needle"  # one window: the deadline is never consulted
    assert search_within(compiled, small, 0, 6, Deadline(0, "demo")) is not None
