#!/usr/bin/env python3
"""Reading a non-streaming answer's usage and model: the whole parse it was vs `read_answer` now.

    python bench/usage_read.py [--repeat 200]

Answers, each as OpenAI sends it (compact JSON): a 475 KiB embeddings answer (16 x 1536 floats, the
case issue 11 measured at 1.2 ms), a 40 KiB chat completion, and the same chat completion as a
translator built it (its object handed over with the bytes). `old` is what the exchange did before:
`orjson.loads` of the whole body, the usage read, the model renamed from the parse. `new` is
`dialects.answer.read_answer`. Printed: median and best microseconds per answer over `--repeat` runs.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from relaygate.context import Usage  # noqa: E402
from relaygate.dialects.answer import read_answer  # noqa: E402
from relaygate.dialects.openai.usage import read_usage  # noqa: E402
from relaygate.http.model_field import rename_in_body  # noqa: E402

CALLER = "openai-main/embedder"
USAGE = {"prompt_tokens": 8000, "total_tokens": 8000}


def embeddings_answer() -> bytes:
    rng = random.Random(475)
    data = [
        {"object": "embedding", "index": i, "embedding": [rng.uniform(-0.1, 0.1) for _ in range(1536)]}
        for i in range(16)
    ]
    return orjson.dumps({"object": "list", "data": data, "model": "text-embedding-3-small", "usage": USAGE})


def chat_answer() -> dict[str, Any]:
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-4o-2024-08-06",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "word " * 8000, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 12,
            "completion_tokens": 8000,
            "total_tokens": 8012,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        },
        "service_tier": "default",
        "system_fingerprint": "fp_bench",
    }


def old(body: bytes) -> tuple[bytes, str | None]:
    """The exchange before issue 11: one whole parse for usage and model."""
    parsed = orjson.loads(body)
    read_usage(parsed.get("usage"), Usage())
    return rename_in_body(body, parsed, CALLER)


def timed(run: Callable[[], object], repeat: int) -> tuple[float, float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1e6)
    return statistics.median(samples), min(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    embeddings = embeddings_answer()
    chat = chat_answer()
    chat_body = orjson.dumps(chat)
    cases: list[tuple[str, bytes, dict[str, Any] | None]] = [
        (f"embeddings {len(embeddings) >> 10} KiB, relayed", embeddings, None),
        (f"chat {len(chat_body) >> 10} KiB, relayed", chat_body, None),
        (f"chat {len(chat_body) >> 10} KiB, translated", chat_body, chat),
    ]
    print(f"{'answer':<32}{'old median/best µs':>22}{'new median/best µs':>22}{'speed-up':>10}")
    for name, body, parsed in cases:
        assert read_answer(body, parsed, read_usage, Usage(), CALLER) == old(body)
        before = timed(lambda body=body: old(body), args.repeat)  # type: ignore[misc]
        after = timed(
            lambda body=body, parsed=parsed: read_answer(body, parsed, read_usage, Usage(), CALLER),  # type: ignore[misc]
            args.repeat,
        )
        print(
            f"{name:<32}{before[0]:>12.1f} /{before[1]:>7.1f}{after[0]:>14.1f} /{after[1]:>7.1f}"
            f"{before[0] / after[0]:>9.0f}x"
        )


if __name__ == "__main__":
    main()
