#!/usr/bin/env python3
"""What tracing adds to one request on the event loop: building and queueing its spans at finish.

    python bench/tracing_cost.py [--requests 20000]

A finished chat request as the pipeline leaves it (one answering attempt, usage, a rate-limit rule, a
JSON answer), recorded by the gateway's real span builder into the real export queue, whose exporter discards
batches (the export itself runs on the queue's thread, off the request path).
Cases: a plain chat (root + attempt), a virtual-model fallback (root + limits + 2 attempts), and the
plain chat with content capture on. Printed: microseconds per request (median of 5 runs).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan  # noqa: E402
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult  # noqa: E402
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_ON,  # noqa: E402
    ParentBased,  # noqa: E402
)

from relaygate.context import RequestContext  # noqa: E402
from relaygate.observe.record import record_from_context  # noqa: E402
from relaygate.observe.tracing.queue import SpanQueue  # noqa: E402
from relaygate.observe.tracing.spans import SpanBuilder  # noqa: E402
from relaygate.routing.router import AttemptRecord  # noqa: E402


class Discard(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def context(attempts: int) -> RequestContext:
    ctx = RequestContext("a" * 24, "POST", "/api/llm/chat/completions", route="/api/llm/chat/completions")
    ctx.operation, ctx.status, ctx.subject, ctx.token_id = "chat", 200, "user:alice@x.com", "rg-abc123"
    ctx.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    ctx.requested_model = ctx.resolved_model = "openai-main/gpt-4o"
    ctx.usage.input_tokens, ctx.usage.output_tokens = 12, 34
    ctx.request_body = orjson.dumps({"model": "openai-main/gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
    ctx.response_body = orjson.dumps(
        {
            "id": "x",
            "model": "gpt-4o",
            "choices": [{"message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 34},
        }
    )
    ctx.extra["provider_model"] = "gpt-4o"
    now = time.monotonic()
    outcomes = ["fallback"] * (attempts - 1) + ["success"]
    ctx.attempts = [
        AttemptRecord(f"acct-{i}/gpt-4o", 200, None, 1.0, False, "openai", outcome, now)
        for i, outcome in enumerate(outcomes)
    ]
    if attempts > 1:
        ctx.extra["limits"] = {"rate_limit": ["rpm"]}
        ctx.extra["routing"] = {"virtual_model": "vm/chat", "targets_tried": [a.target for a in ctx.attempts]}
    return ctx


def measure(builder: SpanBuilder, ctx: RequestContext, requests: int) -> float:
    record = record_from_context(ctx, 256 * 1024)
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(requests):
            builder.build(ctx, record)
        runs.append((time.perf_counter() - started) / requests * 1e6)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20_000)
    args = parser.parse_args()
    queue = SpanQueue(Discard(), max_queue=1_000_000, batch_size=512, schedule_delay=0.05)
    snapshot: Any = SimpleNamespace(models={}, proxies={})
    sampler, resource = ParentBased(ALWAYS_ON), Resource.create({"service.name": "relaygate"})
    plain = SpanBuilder(sampler, resource, queue.on_end, lambda: snapshot, capture_content=False)
    content = SpanBuilder(sampler, resource, queue.on_end, lambda: snapshot, capture_content=True)
    print("| case | spans | µs per request |\n|---|---|---|")
    print(f"| chat | 2 | {measure(plain, context(1), args.requests):.1f} |")
    print(f"| virtual-model fallback + rate limit | 4 | {measure(plain, context(2), args.requests):.1f} |")
    print(f"| chat, content captured | 2 | {measure(content, context(1), args.requests):.1f} |")
    print(f"(dropped {queue.dropped}, exported {queue.exported})")
    queue.shutdown(5.0)


if __name__ == "__main__":
    main()
