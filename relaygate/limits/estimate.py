"""How many tokens a request will use, guessed before the call so token limits can reserve them.

The guess only needs to be in the right range: it is reserved, and settled with the upstream's
reported usage afterwards (refunding or charging the difference). It must be cheap (it runs on the
hot path over the already-parsed body) and must not tokenize.

- Input: characters of text in the request / 4 (the usual English average for BPE tokenizers),
  plus 4 tokens per message for role and framing, plus a flat 256 per image/audio/file part (their
  base64 payloads are not text and are deliberately not counted). Tool definitions count by the
  length of their JSON.
- Output: `max_completion_tokens`, else `max_tokens`, else `max_output_tokens` (Responses API),
  capped at `completion_cap` (4096): a caller asking for 100k tokens rarely uses them, and an
  uncapped reservation would refuse requests a token limit could actually afford. Without any of
  these fields the output guess is `default_completion` (256); pass 0 for embeddings, rerank and
  moderation, which produce no completion tokens. Multiplied by `n` choices, clamped to `max_choices`
  (what the target accepts: 128 for OpenAI's API), so one request's estimate is bounded whatever it
  asks for (`"n": 1000000000` is estimated as 128 choices; the upstream refuses it, and the refusal
  gives the estimate back). Input is bounded by the request body size limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD_TOKENS = 4
NON_TEXT_PART_TOKENS = 256
DEFAULT_COMPLETION_TOKENS = 256
COMPLETION_CAP = 4096
MAX_CHOICES = 128  # OpenAI's API accepts n from 1 to 128

_NON_TEXT_TYPES = frozenset(
    {"image_url", "image", "input_image", "input_audio", "audio", "file", "input_file", "document"}
)
# Keys holding text the model reads (or containers of it). Anything else (ids, urls, base64) is skipped.
_TEXT_KEYS = ("text", "content", "arguments", "output", "refusal", "thinking", "tool_calls", "function")


@dataclass(frozen=True, slots=True)
class TokenEstimate:
    """Guessed input and output tokens (output includes the cap and `n`)."""

    input_tokens: int
    output_tokens: int

    @property
    def total(self) -> int:
        """What a tokens_per_* rule reserves."""
        return self.input_tokens + self.output_tokens


def estimate_tokens(
    body: Mapping[str, Any],
    *,
    default_completion: int = DEFAULT_COMPLETION_TOKENS,
    completion_cap: int = COMPLETION_CAP,
    max_choices: int = MAX_CHOICES,
) -> TokenEstimate:
    """Estimate an OpenAI-shaped request (chat, completions, embeddings, responses, /messages)."""
    chars = 0
    overhead = 0
    messages = body.get("messages")
    if isinstance(messages, list):
        overhead += MESSAGE_OVERHEAD_TOKENS * len(messages)
        chars += _text_chars(messages)
    for key in ("prompt", "input", "system", "instructions"):
        value = body.get(key)
        if value is not None:
            chars += _text_chars(value)
    for key in ("tools", "functions"):
        value = body.get(key)
        if value:
            chars += _json_chars(value)
    input_tokens = max(1, -(-chars // CHARS_PER_TOKEN) + overhead + _non_text_tokens(messages))

    requested = _first_int(body, ("max_completion_tokens", "max_tokens", "max_output_tokens"))
    output = default_completion if requested is None else min(requested, completion_cap)
    choices = body.get("n")
    if isinstance(choices, int) and not isinstance(choices, bool) and choices > 1:
        output *= min(choices, max_choices)
    return TokenEstimate(input_tokens, max(0, output))


def _text_chars(value: Any, depth: int = 0) -> int:
    """Characters of text in a message, a content part list or a prompt (token-id lists count 1 each)."""
    if isinstance(value, str):
        return len(value)
    if depth > 6:  # bodies are parsed JSON; deep nesting is not text anyone wrote
        return 0
    if isinstance(value, list):
        if value and isinstance(value[0], int):  # pre-tokenized prompt: ids, ~4 chars each
            return len(value) * CHARS_PER_TOKEN
        return sum(_text_chars(item, depth + 1) for item in value)
    if isinstance(value, dict):
        return sum(_text_chars(value[k], depth + 1) for k in _TEXT_KEYS if k in value)
    return 0


def _non_text_tokens(messages: Any) -> int:
    """A flat charge per image/audio/file part in chat messages."""
    if not isinstance(messages, list):
        return 0
    count = 0
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            count += sum(1 for p in content if isinstance(p, dict) and p.get("type") in _NON_TEXT_TYPES)
    return count * NON_TEXT_PART_TOKENS


def _json_chars(value: Any) -> int:
    try:
        return len(orjson.dumps(value))
    except TypeError:
        return 0


def _first_int(body: Mapping[str, Any], keys: tuple[str, ...]) -> int | None:
    for key in keys:
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return None
