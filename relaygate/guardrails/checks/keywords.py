"""The `keywords` check: a list of words or phrases, denied (`any`), required together (`all`), or
required at least once (`none` violates when no word occurs).

All words are one RE2 alternation, longest first (so "new york" wins over "new" where both fit),
scanned once: a DFA reads each byte once however many words there are (up to 10,000). Matching is
case-insensitive by default (Unicode simple case folding) and on whole words: a word is not glued
to a letter, digit, mark or underscore on either side, in any script (`\\b` would be ASCII-only in
RE2, so the neighbours are part of the pattern). Words match exactly as written: "new york" does
not match "new\\nyork".

Reasons give counts, never the words: a word list can itself be confidential (a project's codename).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from relaygate.guardrails.checks.base import PASSED, Action, Evaluation, Span, apply_masks
from relaygate.guardrails.checks.budgeted_search import Deadline, search_within
from relaygate.guardrails.checks.config_fields import (
    read_action,
    read_bool,
    read_choice,
    read_redaction_format,
    read_string_list,
    require_fields,
)
from relaygate.guardrails.checks.re2_text import EncodedText, Re2Pattern, compile_re2

Operator = Literal["any", "all", "none"]
OPERATORS: tuple[Operator, ...] = ("any", "all", "none")

MAX_WORDS = 10_000
MAX_ALL_WORDS = 100  # `all` searches each word missing from the combined scan on its own
MAX_WORD_CHARS = 256
DEFAULT_REPLACEMENT = "[KEYWORD_REDACTED]"
DEFAULT_BUDGET_SECONDS = 0.05
LABEL = "KEYWORD"
_FIELDS = ("words", "words_file", "operator", "case_sensitive", "whole_word", "action", "replacement")
_NOT_WORD = r"[^\pL\pN\pM_]"  # RE2 syntax: not a letter, digit or mark of any script, nor "_"


class KeywordCheck:
    """A compiled `keywords` check."""

    __slots__ = (
        "action",
        "max_match_chars",
        "operator",
        "words",
        "case_sensitive",
        "whole_word",
        "budget_seconds",
        "_pattern",
        "_pattern_chars",
        "_each_word",
        "_replacement",
    )

    def __init__(
        self,
        words: tuple[str, ...],
        operator: Operator,
        case_sensitive: bool,
        whole_word: bool,
        action: Action,
        replacement: str,
        budget_seconds: float = DEFAULT_BUDGET_SECONDS,
    ) -> None:
        self.words = words
        self.operator: Operator = operator
        self.case_sensitive = case_sensitive
        self.whole_word = whole_word
        self.action: Action = action
        self.budget_seconds = budget_seconds
        self._replacement = replacement
        longest = max(len(word) for word in words)
        # `all` and `none` verdicts are about the whole text: a window of it cannot decide.
        self.max_match_chars: int | None = longest if operator == "any" else None
        self._pattern_chars = longest + 2 if whole_word else longest  # with the neighbours the pattern reads
        self._pattern = self._compile(sorted(words, key=len, reverse=True))
        self._each_word = {self._key(word): self._compile([word]) for word in words} if operator == "all" else {}

    def evaluate(self, text: str) -> Evaluation:
        """Whether the words occur as the operator requires; the occurrences as spans (`any`, `all`).

        Raises CheckTimeout when the budget runs out first.
        """
        deadline = Deadline(self.budget_seconds, "keywords")
        data = EncodedText(text)
        if self.operator == "none":
            if self._next(self._pattern, data.data, 0, deadline) is not None:
                return PASSED
            return Evaluation(True, "contains none of the required keywords")
        found, seen = self._occurrences(self._pattern, data.data, deadline)
        if self.operator == "all":
            for key, pattern in self._each_word.items():
                if key in seen:
                    continue
                # Missing from the scan: absent, or overlapped by another word's occurrence.
                more, _ = self._occurrences(pattern, data.data, deadline)
                if not more:
                    return PASSED
                found.extend(more)
            found.sort()
        if not found:
            return PASSED
        spans = tuple(Span(data.char_offset(start), data.char_offset(end), LABEL) for start, end in found)
        count = len(seen) if self.operator == "any" else len(self.words)
        return Evaluation(True, f"found {len(spans)} occurrence(s) of {count} keyword(s)", spans)

    def mask(self, text: str, spans: tuple[Span, ...]) -> str:
        """`text` with each occurrence replaced by the replacement (`[KEYWORD_REDACTED]` by default)."""
        return apply_masks(text, spans, self._render)

    def _render(self, label: str) -> str:
        return self._replacement

    def _compile(self, words: list[str]) -> Re2Pattern:
        alternation = "|".join(_escape(word) for word in words)
        pattern = f"(?:^|{_NOT_WORD})({alternation})(?:{_NOT_WORD}|$)" if self.whole_word else f"({alternation})"
        return compile_re2(pattern if self.case_sensitive else "(?i)" + pattern, large=True)

    def _key(self, word: str) -> str:
        return _word_key(word, self.case_sensitive)

    def _next(self, pattern: Re2Pattern, data: bytes, pos: int, deadline: Deadline) -> tuple[int, int] | None:
        match = search_within(pattern, data, pos, self._pattern_chars, deadline)
        return None if match is None else (match.start(1), match.end(1))

    def _occurrences(
        self, pattern: Re2Pattern, data: bytes, deadline: Deadline
    ) -> tuple[list[tuple[int, int]], set[str]]:
        """Every occurrence (byte offsets) and the words seen (as `_key` gives them)."""
        found: list[tuple[int, int]] = []
        seen: set[str] = set()
        pos = 0
        # Resume at the word's end, not the match's: the neighbour after one word is the one before the next.
        while (occurrence := self._next(pattern, data, pos, deadline)) is not None:
            found.append(occurrence)
            seen.add(self._key(data[occurrence[0] : occurrence[1]].decode("utf-8", "replace")))
            pos = occurrence[1]
            deadline.check()
        return found, seen


def _word_key(word: str, case_sensitive: bool) -> str:
    """What makes two words the same word: `lower()`, not `casefold()`, which would also merge
    "straße" with "strasse", two words RE2's simple case folding keeps apart."""
    return word if case_sensitive else word.lower()


def _escape(word: str) -> str:
    """`word` as an RE2 literal."""
    return "".join(char if char.isalnum() or char == "_" else _escape_char(char) for char in word)


def _escape_char(char: str) -> str:
    return f"\\x{{{ord(char):x}}}"


def _read_words_file(value: Any) -> list[str]:
    """One word or phrase per line; blank lines and lines starting with `#` are skipped."""
    if not isinstance(value, str) or not value:
        raise ValueError("words_file: must be a path")
    try:
        lines = Path(value).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"words_file: cannot read {value}: {error}") from None
    words = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not words:
        raise ValueError(f"words_file: {value} holds no words")
    return words


def compile_keywords(config: Mapping[str, Any], *, budget_seconds: float = DEFAULT_BUDGET_SECONDS) -> KeywordCheck:
    """A `keywords` check from its config: `words` or `words_file`, `operator`, `case_sensitive`,
    `whole_word`, `action`, `replacement`. Words are stripped; duplicates (by case, unless
    case-sensitive) count once."""
    require_fields(config, _FIELDS)
    if "words" in config and "words_file" in config:
        raise ValueError("words_file: give words or words_file, not both")
    if "words_file" in config:
        words = _read_words_file(config["words_file"])
        field = "words_file"
    elif "words" in config:
        words, field = config["words"], "words"
    else:
        raise ValueError("words: required (a list of words, or words_file)")
    words = [word.strip() for word in read_string_list(words, field, MAX_WORDS, MAX_WORD_CHARS)]
    operator = read_choice(config, "operator", OPERATORS, "any")
    case_sensitive = read_bool(config, "case_sensitive", False)
    first_spelling: dict[str, str] = {}
    for word in words:
        first_spelling.setdefault(_word_key(word, case_sensitive), word)
    unique = tuple(first_spelling.values())
    if operator == "all" and len(unique) > MAX_ALL_WORDS:
        raise ValueError(f"words: operator all takes at most {MAX_ALL_WORDS} words, not {len(unique)}")
    action = read_action(config)
    if action == "mask" and operator == "none":
        raise ValueError("action: mask needs operator any or all (operator none finds nothing to mask)")
    return KeywordCheck(
        unique,
        operator,
        case_sensitive,
        read_bool(config, "whole_word", True),
        action,
        read_redaction_format(config, "replacement", DEFAULT_REPLACEMENT),
        budget_seconds,
    )
