"""What every built-in text check gives the guardrail engine.

A check is compiled once from its integration's `config` when the config loads (bad patterns,
schemas and kinds are refused there, as `ValueError` with a message naming the field), then run per
request over plain text. It never raises on any text: its run time and memory are bounded by the
text's length (regexes run under a time budget, see `regex.py`).

`evaluate` says whether the text violates the check and, where the violation is a set of spans
(a pattern, an entity, a keyword, a secret), which spans: the engine masks those spans when the
integration's `operation` is `mutate` and the check's `action` is `mask`, and blocks or flags
otherwise. `max_match_chars` is the longest text one span can cover (None: unbounded), so a
streaming window can hold back enough text that a value split across chunks is still seen whole.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

Action = Literal["block", "mask"]


@dataclass(frozen=True, slots=True)
class Span:
    """One finding: text[start:end], with the label masking writes (`[{LABEL}_REDACTED]`)."""

    start: int
    end: int
    label: str  # e.g. "EMAIL", "AWS_ACCESS_KEY", a regex pattern's name upper-cased


@dataclass(frozen=True, slots=True)
class Evaluation:
    """A check's verdict on one text."""

    violated: bool
    reason: str = ""  # short, names what was found (never the found value: reasons are logged)
    spans: tuple[Span, ...] = ()  # what to mask; empty when the violation is not span-shaped

    @property
    def maskable(self) -> bool:
        return self.violated and bool(self.spans)


PASSED = Evaluation(False)


class TextCheck(Protocol):
    """A compiled built-in check."""

    action: Action
    # The longest text one span can cover; None: unbounded (such a check cannot run in window mode).
    max_match_chars: int | None

    def evaluate(self, text: str) -> Evaluation: ...

    def mask(self, text: str, spans: tuple[Span, ...]) -> str:
        """`text` with every span replaced by this check's redaction text."""
        ...


def apply_masks(text: str, spans: tuple[Span, ...], render: Callable[[str], str]) -> str:
    """`text` with each span replaced by `render(span.label)`: one implementation for every check.

    Spans may come in any order and may overlap (two checks' findings, say): overlapping spans are
    merged into one masked region, written with the label of the span that starts first, so no
    character of either finding survives. Spans are clipped to the text; empty ones are ignored.
    """
    if not spans:
        return text
    ordered = sorted(spans, key=_span_start) if len(spans) > 1 else spans
    parts: list[str] = []
    cursor = 0  # text[:cursor] is already written (or masked)
    region_start = region_end = -1
    region_label = ""
    size = len(text)
    for span in ordered:
        start, end = max(span.start, 0), min(span.end, size)
        if end <= start:
            continue
        if start < region_end:  # overlaps the region being built: widen it
            region_end = max(region_end, end)
            continue
        if region_end > region_start:
            parts.append(text[cursor:region_start])
            parts.append(render(region_label))
            cursor = region_end
        region_start, region_end, region_label = start, end, span.label
    if region_end > region_start:
        parts.append(text[cursor:region_start])
        parts.append(render(region_label))
        cursor = region_end
    parts.append(text[cursor:])
    return "".join(parts)


def _span_start(span: Span) -> tuple[int, int]:
    return span.start, span.end
