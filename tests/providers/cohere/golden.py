"""Golden files for the OpenAI <-> Cohere translations (tests/fixtures/golden/openai-to-cohere/).

Each `*.json` case holds its inputs and the expected outputs; streams are a `<case>.cohere.sse`
(Cohere's bytes) with a `<case>.openai.json` (the OpenAI events: JSON payloads, or "[DONE]").
`RELAYGATE_REGENERATE_GOLDEN=1 python -m pytest tests/providers/cohere` rewrites the expected
outputs from the current code; review the diff before keeping it.
"""

from __future__ import annotations

from tests.helpers.golden import GoldenDir
from tests.helpers.sse import sse_events

GOLDEN = GoldenDir("openai-to-cohere")


def cohere_stream(base: str) -> bytes:
    return GOLDEN.read_bytes(f"{base}.cohere.sse")


def check_stream(base: str, actual: bytes) -> None:
    """The OpenAI events for `<base>.cohere.sse` equal `<base>.openai.json`."""
    GOLDEN.check_case_file(f"{base}.openai.json", sse_events(actual))
