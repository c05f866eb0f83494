"""Golden files for the OpenAI <-> Anthropic translations (tests/fixtures/golden/openai-to-anthropic/).

- `request_<case>.json`: `openai` (the chat body in) and `anthropic` (the Messages body expected out).
- `response_<case>.json`: `source` (where the Anthropic example comes from), `anthropic` (a Message as the
  API documents it), `options` (strict_openai, json_tool) and `openai` (the chat completion expected).
- `stream_<case>.anthropic.sse`: Anthropic's stream bytes (recorded fixtures of the SDK, the API docs);
  `stream_<case>.openai*.json`: `sse` (the input file), `options` and `events` (the OpenAI event payloads
  expected, "[DONE]" for the terminator).
`RELAYGATE_REGENERATE_GOLDEN=1 python -m pytest tests/providers/anthropic` rewrites the expected outputs
from the current code; review the diff before keeping it.
"""

from __future__ import annotations

from tests.helpers.golden import GoldenDir

GOLDEN = GoldenDir("openai-to-anthropic")
