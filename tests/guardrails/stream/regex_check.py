"""A test-only text check backed by one regex, implementing the `TextCheck` protocol the built-ins follow."""

from __future__ import annotations

import re

from relaygate.guardrails.checks.base import Action, Evaluation, Span

# A PII-like email pattern of bounded width: at most 32 + 1 + 32 + 3 * 9 = 92 characters per match.
EMAIL_PATTERN = r"[A-Za-z0-9._%+-]{1,32}@[A-Za-z0-9-]{1,32}(?:\.[A-Za-z]{2,8}){1,3}"
EMAIL_MAX_CHARS = 92


class RegexCheck:
    """Finds every match of one pattern; masks each as `[{LABEL}_REDACTED]`; counts what it was asked."""

    def __init__(self, pattern: str, label: str, max_match_chars: int | None, action: Action = "block") -> None:
        self.pattern = re.compile(pattern)
        self.label = label
        self.max_match_chars = max_match_chars
        self.action: Action = action
        self.calls = 0
        self.chars_read = 0

    def evaluate(self, text: str) -> Evaluation:
        self.calls += 1
        self.chars_read += len(text)
        spans = tuple(Span(m.start(), m.end(), self.label) for m in self.pattern.finditer(text))
        if not spans:
            return Evaluation(False)
        return Evaluation(True, f"found {len(spans)} {self.label.lower()} value(s)", spans)

    def mask(self, text: str, spans: tuple[Span, ...]) -> str:
        out: list[str] = []
        position = 0
        for span in sorted(spans, key=lambda item: item.start):
            out.append(text[position : span.start])
            out.append(f"[{span.label}_REDACTED]")
            position = span.end
        out.append(text[position:])
        return "".join(out)


def email_check() -> RegexCheck:
    return RegexCheck(EMAIL_PATTERN, "EMAIL", EMAIL_MAX_CHARS)
