"""Golden files for the OpenAI <-> Bedrock translation, in tests/fixtures/golden/openai-to-bedrock/.

Inputs (`*.openai-request.json`, `*.bedrock-response.json`, `*.events.json`) are written by hand from
the Bedrock API reference; expected outputs are compared byte for byte (JSON normalised with sorted
keys). `RELAYGATE_REGENERATE_GOLDEN=1 python -m pytest tests/providers/bedrock` rewrites the expected
files (and the binary `*.eventstream` frames built from `*.events.json`); review the diff before keeping it.
"""

from __future__ import annotations

from typing import Any

import orjson

from tests.helpers.golden import GoldenDir

GOLDEN = GoldenDir("openai-to-bedrock")


def dump_json(value: Any) -> bytes:
    """The canonical form of expected JSON: indented, keys sorted."""
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def assert_golden_json(name: str, actual: Any) -> None:
    """`actual` in canonical form equals the golden file `name` byte for byte (rewritten when regenerating)."""
    GOLDEN.check_bytes(name, dump_json(actual))
