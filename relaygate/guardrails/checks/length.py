"""The `length` check: bounds on a text's size (characters, words, estimated tokens) and a cap on the
output tokens a request may ask for.

Tokens are estimated, not counted: ceil(characters / 4), the usual English average for BPE
tokenizers (the rate limiter's estimate uses the same ratio). A tokenizer per model would be
exact but costs milliseconds per request; a size guardrail only needs the right order of magnitude.

`cap_output_tokens` enforces `max_output_tokens` on the request itself, on whichever of
`max_tokens` (OpenAI's older name, Anthropic's only one), `max_completion_tokens` (OpenAI chat) and
`max_output_tokens` (OpenAI Responses) it carries: `mutate` lowers a value over the cap to the cap,
`validate` blocks it. A request with none of them leaves the model's own default in force: `mutate`
then sets the cap (`max_output_tokens` on a Responses request, else `max_completion_tokens`, which
every provider adapter translates); `validate` lets it through, as it asked for nothing over the cap.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from relaygate.guardrails.checks.base import PASSED, Evaluation, Span
from relaygate.guardrails.checks.config_fields import read_positive_int, require_fields

CHARS_PER_TOKEN = 4
OUTPUT_TOKEN_KEYS = ("max_tokens", "max_completion_tokens", "max_output_tokens")
CapResult = Literal["pass", "mutate", "block"]
_FIELDS = ("max_chars", "min_chars", "max_words", "min_words", "max_input_tokens", "max_output_tokens")


def estimate_tokens(text: str) -> int:
    """ceil(len(text) / 4): an estimate (see the module docstring), never a count."""
    return -(-len(text) // CHARS_PER_TOKEN)


class LengthCheck:
    """A compiled `length` check (None: that bound is not set)."""

    __slots__ = (
        "action",
        "max_match_chars",
        "max_chars",
        "min_chars",
        "max_words",
        "min_words",
        "max_input_tokens",
        "max_output_tokens",
    )

    def __init__(
        self,
        *,
        max_chars: int | None = None,
        min_chars: int | None = None,
        max_words: int | None = None,
        min_words: int | None = None,
        max_input_tokens: int | None = None,
        max_output_tokens: int | None = None,
    ) -> None:
        self.action: Literal["block"] = "block"
        self.max_match_chars: int | None = None  # a size is a property of the whole text
        self.max_chars = max_chars
        self.min_chars = min_chars
        self.max_words = max_words
        self.min_words = min_words
        self.max_input_tokens = max_input_tokens
        self.max_output_tokens = max_output_tokens

    def evaluate(self, text: str) -> Evaluation:
        """Whether `text` is within the character, word and estimated-token bounds (the first one broken)."""
        chars = len(text)
        if self.max_chars is not None and chars > self.max_chars:
            return Evaluation(True, f"{chars} characters, more than the {self.max_chars} allowed")
        if self.min_chars is not None and chars < self.min_chars:
            return Evaluation(True, f"{chars} characters, fewer than the {self.min_chars} required")
        if self.max_words is not None or self.min_words is not None:
            words = len(text.split())
            if self.max_words is not None and words > self.max_words:
                return Evaluation(True, f"{words} words, more than the {self.max_words} allowed")
            if self.min_words is not None and words < self.min_words:
                return Evaluation(True, f"{words} words, fewer than the {self.min_words} required")
        if self.max_input_tokens is not None:
            tokens = estimate_tokens(text)
            if tokens > self.max_input_tokens:
                return Evaluation(True, f"~{tokens} tokens (estimated), more than the {self.max_input_tokens} allowed")
        return PASSED

    def mask(self, text: str, spans: tuple[Span, ...]) -> str:
        """Unchanged: this check finds no spans (its action is always block)."""
        return text

    def cap_output_tokens(self, payload: dict[str, Any], operation_is_mutate: bool) -> tuple[CapResult, str]:
        """("pass" | "mutate" | "block", reason) for the request `payload`; `mutate` edits it in place."""
        cap = self.max_output_tokens
        if cap is None:
            return "pass", ""
        present = [key for key in OUTPUT_TOKEN_KEYS if payload.get(key) is not None]
        over = [key for key in present if _is_number(payload[key]) and payload[key] > cap]
        if over and operation_is_mutate:
            for key in over:
                payload[key] = cap
            return "mutate", f"{', '.join(over)} lowered to the cap of {cap} output tokens"
        if over:
            return "block", f"{over[0]} {payload[over[0]]} is over the cap of {cap} output tokens"
        if present or not operation_is_mutate:
            return "pass", ""
        key = "max_output_tokens" if "input" in payload and "messages" not in payload else "max_completion_tokens"
        payload[key] = cap
        return "mutate", f"{key} set to the cap of {cap} output tokens"


def _is_number(value: Any) -> bool:
    """An int or float, not a bool (a string or other type is left for the upstream to refuse)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def compile_length(config: Mapping[str, Any]) -> LengthCheck:
    """A `length` check from its config: any of its six bounds (integers > 0), at least one."""
    require_fields(config, _FIELDS)
    bounds = {field: read_positive_int(config, field) for field in _FIELDS}
    if all(value is None for value in bounds.values()):
        raise ValueError(f"config: needs at least one of {', '.join(_FIELDS)}")
    for low, high in (("min_chars", "max_chars"), ("min_words", "max_words")):
        low_value, high_value = bounds[low], bounds[high]
        if low_value is not None and high_value is not None and low_value > high_value:
            raise ValueError(f"{low}: {low_value} is more than {high} ({high_value})")
    return LengthCheck(**bounds)
