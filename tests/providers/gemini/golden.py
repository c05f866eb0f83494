"""Golden files for the OpenAI <-> Gemini translation (tests/fixtures/golden/openai-to-gemini/).

- `requests/*.json`: `{"openai": <chat request>, "vertex": bool, "gemini": <expected GenerateContentRequest>}`
- `responses/*.json`: `{"gemini": <GenerateContentResponse>, "openai": <expected chat.completion>}`
- `streams/<name>.gemini.sse` (Gemini SSE bytes) -> `streams/<name>.openai.sse` (expected OpenAI SSE)
- `embeddings/*.json`: `{"vertex": bool, "openai": <request>, "upstream_request": ..., "upstream_response": ...,
  "openai_response": ...}`

Set RELAYGATE_REGENERATE_GOLDEN=1 to rewrite the expected halves from the current translators (then review
the diff). Translations run with a fixed `created` and counting tool-call ids so outputs are stable.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from tests.helpers.golden import GoldenDir

GOLDEN = GoldenDir("openai-to-gemini")
MODEL = "gemini-2.5-flash"


def counting_ids() -> Callable[[], str]:
    """Tool-call ids call_0001, call_0002, ... (deterministic stand-in for random ids)."""
    counter = itertools.count(1)
    return lambda: f"call_{next(counter):04d}"


def stem(name: str) -> str:
    """A case's id: its file name up to the first dot."""
    return name.rpartition("/")[2].split(".")[0]
