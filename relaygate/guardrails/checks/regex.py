"""The `regex` check: an operator's own patterns, either denied (any match violates) or required
(`allow`: a text matching none of them violates).

Patterns run on RE2 (see `re2_text.py`): time linear in the text, whatever the pattern, so a
`(a+)+$` written by mistake cannot hang a request. What RE2 cannot run (lookaround,
backreferences) is refused when the config loads, naming the pattern. On top of that each
evaluation has a time budget (50 ms): one scan cannot be interrupted, but a check with many patterns
and many matches over a very large text stops between scans and raises `CheckTimeout` instead of
holding the request.

In `deny` mode the spans are every match of every pattern (overlaps are merged when masking), each
labelled with its pattern's name upper-cased. Most texts match nothing, so one RE2 scan with all the
patterns as alternatives answers that first; only a text that matches pays a scan per pattern.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from relaygate.guardrails.checks.base import PASSED, Action, Evaluation, Span, apply_masks
from relaygate.guardrails.checks.budgeted_search import Deadline, finditer_within, search_within
from relaygate.guardrails.checks.config_fields import (
    read_action,
    read_choice,
    read_redaction_format,
    render_format,
    require_fields,
)
from relaygate.guardrails.checks.re2_text import EncodedText, Re2Pattern, compile_re2, pattern_width

Mode = Literal["deny", "allow"]
MODES: tuple[Mode, ...] = ("deny", "allow")

MAX_PATTERNS = 20
MAX_PATTERN_CHARS = 1000
DEFAULT_BUDGET_SECONDS = 0.05
DEFAULT_REPLACEMENT = "[{NAME}_REDACTED]"
# YAML flag name -> (RE2 inline flag, Python flag for the parse that computes the width)
FLAGS: dict[str, tuple[str, re.RegexFlag]] = {
    "ignorecase": ("i", re.IGNORECASE),
    "multiline": ("m", re.MULTILINE),
    "dotall": ("s", re.DOTALL),
}
_FIELDS = ("patterns", "mode", "action", "replacement")
_PATTERN_FIELDS = ("name", "pattern", "flags")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


@dataclass(frozen=True, slots=True)
class NamedPattern:
    """One configured pattern, compiled."""

    name: str
    label: str  # the name upper-cased: what masking writes
    source: str  # the pattern with its flags inline, as RE2 reads it
    compiled: Re2Pattern
    max_chars: int | None  # the longest match; None: unbounded


class RegexCheck:
    """A compiled `regex` check."""

    __slots__ = ("action", "max_match_chars", "mode", "patterns", "budget_seconds", "_any", "_any_chars", "_redactions")

    def __init__(
        self,
        patterns: tuple[NamedPattern, ...],
        mode: Mode,
        action: Action,
        replacement: str,
        budget_seconds: float = DEFAULT_BUDGET_SECONDS,
    ) -> None:
        self.patterns = patterns
        self.mode: Mode = mode
        self.action: Action = action
        self.budget_seconds = budget_seconds
        widths = [pattern.max_chars for pattern in patterns]
        self._any_chars = None if None in widths else max(width for width in widths if width is not None)
        # An allow verdict is about the whole text (no span): a window of it cannot decide.
        self.max_match_chars: int | None = None if mode == "allow" else self._any_chars
        self._redactions = {pattern.label: render_format(replacement, "NAME", pattern.label) for pattern in patterns}
        try:
            self._any: Re2Pattern | None = compile_re2("|".join(f"(?:{pattern.source})" for pattern in patterns))
        except ValueError:  # too large for RE2's memory budget together: each pattern scans on its own
            self._any = None

    def evaluate(self, text: str) -> Evaluation:
        """deny: the matches (by pattern name); allow: whether any pattern matches.

        Raises CheckTimeout when the budget runs out first (see `budgeted_search.py`).
        """
        deadline = Deadline(self.budget_seconds, "regex")
        data = EncodedText(text)
        if self.mode == "allow":
            if self._matches_any(data.data, deadline):
                return PASSED
            return Evaluation(True, "does not match any allowed pattern")
        if self._any is not None and search_within(self._any, data.data, 0, self._any_chars, deadline) is None:
            return PASSED
        return self._denied(data, deadline)

    def mask(self, text: str, spans: tuple[Span, ...]) -> str:
        """`text` with each match replaced by its pattern's replacement (`[SSN_REDACTED]` by default)."""
        return apply_masks(text, spans, self._render)

    def _matches_any(self, data: bytes, deadline: Deadline) -> bool:
        if self._any is not None:
            return search_within(self._any, data, 0, self._any_chars, deadline) is not None
        for pattern in self.patterns:
            if search_within(pattern.compiled, data, 0, pattern.max_chars, deadline) is not None:
                return True
            deadline.check()
        return False

    def _denied(self, data: EncodedText, deadline: Deadline) -> Evaluation:
        found: list[tuple[int, int, str]] = []
        names: list[str] = []
        for pattern in self.patterns:
            deadline.check()
            before = len(found)
            for match in finditer_within(pattern.compiled, data.data, pattern.max_chars, deadline):
                found.append((match.start(), match.end(), pattern.label))
            if len(found) > before:
                names.append(pattern.name)
        if not found:
            return PASSED
        found.sort()  # increasing offsets: the byte -> character map reads the text once
        spans = tuple(Span(data.char_offset(start), data.char_offset(end), label) for start, end, label in found)
        return Evaluation(True, f"matched pattern(s): {', '.join(names)}", spans)

    def _render(self, label: str) -> str:
        redaction = self._redactions.get(label)
        return redaction if redaction is not None else label


def _compile_pattern(entry: Any, index: int, mode: Mode, names: set[str]) -> NamedPattern:
    where = f"patterns[{index}]"
    require_fields(entry, _PATTERN_FIELDS, f"{where}.")
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"{where}.name: must be a letter then letters, digits or _ (at most 64), not {name!r}")
    if name.upper() in names:
        raise ValueError(f"{where}.name: {name!r} is used by another pattern")
    names.add(name.upper())
    source = entry.get("pattern")
    if not isinstance(source, str) or not source:
        raise ValueError(f"{where}.pattern: must be a non-empty string")
    if len(source) > MAX_PATTERN_CHARS:
        raise ValueError(f"{where}.pattern: at most {MAX_PATTERN_CHARS} characters, not {len(source)}")
    flags = entry.get("flags", [])
    if not isinstance(flags, list) or any(flag not in FLAGS for flag in flags):
        raise ValueError(f"{where}.flags: must be a list of: {', '.join(FLAGS)}, not {flags!r}")
    python_flags = re.RegexFlag(0)
    for flag in flags:
        python_flags |= FLAGS[flag][1]
    try:
        shortest, longest = pattern_width(source, python_flags)
    except ValueError as error:
        raise ValueError(f"{where}.pattern: {name!r} is not a valid regular expression: {error}") from None
    if shortest == 0 and mode == "deny":
        raise ValueError(f"{where}.pattern: {name!r} matches the empty string, so it would deny every text")
    inline = "".join(sorted({FLAGS[flag][0] for flag in flags}))
    re2_source = f"(?{inline}){source}" if inline else source
    try:
        compiled = compile_re2(re2_source)
    except ValueError as error:
        raise ValueError(
            f"{where}.pattern: {name!r} uses syntax RE2 cannot run (no lookaround or backreferences): {error}"
        ) from None
    return NamedPattern(name, name.upper(), re2_source, compiled, longest)


def compile_regex(config: Mapping[str, Any], *, budget_seconds: float = DEFAULT_BUDGET_SECONDS) -> RegexCheck:
    """A `regex` check from its config: `patterns` [{name, pattern, flags?}], `mode`, `action`, `replacement`."""
    require_fields(config, _FIELDS)
    mode = read_choice(config, "mode", MODES, "deny")
    action = read_action(config)
    if action == "mask" and mode == "allow":
        raise ValueError("action: mask needs mode deny (an allow check finds nothing to mask)")
    entries = config.get("patterns")
    if not isinstance(entries, list) or not entries:
        raise ValueError("patterns: must be a non-empty list of {name, pattern, flags?}")
    if len(entries) > MAX_PATTERNS:
        raise ValueError(f"patterns: at most {MAX_PATTERNS}, not {len(entries)}")
    names: set[str] = set()
    patterns = tuple(_compile_pattern(entry, index, mode, names) for index, entry in enumerate(entries))
    replacement = read_redaction_format(config, "replacement", DEFAULT_REPLACEMENT)
    return RegexCheck(patterns, mode, action, replacement, budget_seconds)
