#!/usr/bin/env python3
"""The CPU tracing adds to one request: capturing its trace at finish (on the event loop), then
encoding the spans and joining them into export batches (on the export thread, but the same process).

    python bench/tracing_cost.py [--requests 5000]

A finished chat request as the pipeline leaves it (usage, a JSON answer) is recorded by the gateway's
real span builder (the capture); the captured traces are then encoded by the OTLP encoder into
requests of 512 spans (the HTTP post of a batch is not counted: one per 512 spans). Cases: a plain chat
(root + attempt), a virtual-model fallback under a rate limit (root + limits + 2 attempts), and the
plain chat with content capture on. Printed: microseconds per request, median of 5 runs; the encoder
is new in each run, so its shape caches start empty (each run's first request fills them).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased  # noqa: E402
from opentelemetry.sdk.util.instrumentation import InstrumentationScope  # noqa: E402

from relaygate.context import RequestContext  # noqa: E402
from relaygate.observe.record import record_from_context  # noqa: E402
from relaygate.observe.tracing.spans import CapturedTrace, SpanBuilder  # noqa: E402
from relaygate.observe.tracing.tracer import _span_ids  # noqa: E402
from relaygate.observe.tracing.wire import TraceEncoder, encode_batch  # noqa: E402
from relaygate.routing.router import AttemptRecord  # noqa: E402

RESOURCE = Resource.create({"service.name": "relaygate"})
SCOPE = InstrumentationScope("relaygate")


def context(attempts: int) -> RequestContext:
    ctx = RequestContext("a" * 24, "POST", "/api/llm/chat/completions", route="/api/llm/chat/completions")
    ctx.operation, ctx.status, ctx.subject, ctx.token_id = "chat", 200, "user:alice@x.com", "rg-abc123"
    ctx.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    ctx.requested_model = ctx.resolved_model = "openai-main/gpt-4o"
    ctx.usage.input_tokens, ctx.usage.output_tokens = 12, 34
    ctx.request_body = orjson.dumps({"model": "openai-main/gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
    answer = {"role": "assistant", "content": "hello"}
    ctx.response_body = orjson.dumps(
        {"id": "x", "model": "gpt-4o", "choices": [{"message": answer, "finish_reason": "stop"}], "usage": {}}
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


def measure(capture: bool, ctx: RequestContext, requests: int) -> tuple[float, float]:
    """(capture µs, encode and batch µs) per request."""
    snapshot: Any = SimpleNamespace(models={}, proxies={})
    record = record_from_context(ctx, 256 * 1024)
    captures, encodes = [], []
    for _ in range(5):
        traces: list[CapturedTrace] = []

        def emit(trace: CapturedTrace, spans: int, traces: list[CapturedTrace] = traces) -> None:
            traces.append(trace)

        builder = SpanBuilder(ParentBased(ALWAYS_ON), emit, lambda: snapshot, capture, True)
        started = time.perf_counter()
        for _ in range(requests):
            builder.build(ctx, record)
        captures.append((time.perf_counter() - started) / requests * 1e6)
        encoder = TraceEncoder(_span_ids())
        per_batch = max(512 // traces[0].span_count, 1)
        started = time.perf_counter()
        for at in range(0, len(traces), per_batch):
            encode_batch(RESOURCE, SCOPE, [encoder.encode(trace) for trace in traces[at : at + per_batch]])
        encodes.append((time.perf_counter() - started) / requests * 1e6)
    return statistics.median(captures), statistics.median(encodes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=5_000)
    args = parser.parse_args()
    print(
        "| case | spans | capture µs (event loop) | encode + batch µs (export thread) | total µs |\n"
        "|---|---|---|---|---|"
    )
    for label, spans, capture, attempts in (
        ("chat", 2, False, 1),
        ("virtual-model fallback + rate limit", 4, False, 2),
        ("chat, content captured", 2, True, 1),
    ):
        captured, encode = measure(capture, context(attempts), args.requests)
        print(f"| {label} | {spans} | {captured:.1f} | {encode:.1f} | {captured + encode:.1f} |")


if __name__ == "__main__":
    main()
