"""Golden files for the inbound Messages API translation (tests/fixtures/golden/anthropic-to-openai/).

Each case is a pair `<kind>/<name>.in.<ext>` -> `<kind>/<name>.out.<ext>`: `request` (Anthropic request
-> OpenAI chat request), `response` (OpenAI chat.completion -> Anthropic message) and `stream` (OpenAI
chunk SSE -> Anthropic SSE). `RELAYGATE_REGENERATE_GOLDEN=1 pytest tests/dialects/anthropic_messages`
rewrites the `.out` files from the current code (review the diff before committing).
"""

from __future__ import annotations

from tests.helpers.golden import GoldenDir

GOLDEN = GoldenDir("anthropic-to-openai")


def cases(kind: str, ext: str) -> list[str]:
    """Names of the cases of one kind (those with an input file)."""
    return [name.removeprefix(f"{kind}/").removesuffix(f".in.{ext}") for name in GOLDEN.names(f"{kind}/*.in.{ext}")]
