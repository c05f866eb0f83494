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
