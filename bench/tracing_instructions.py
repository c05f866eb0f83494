#!/usr/bin/env python3
"""Instructions the tracing of one chat request costs in-process, counted by callgrind: the capture at
finish (the request's thread) and the encoding of its spans into export batches (the export thread),
without the HTTP post (one per 256 chat requests under load) or the gateway around it.

    python bench/tracing_instructions.py [chat|fallback] [--capture-only]

Runs itself twice under `valgrind --tool=callgrind`, recording 0 and 1,000 requests through the real
`Tracing` recorder (a sender that encodes batches as the OTLP/HTTP one does, then drops them), and
prints the difference per request. Deterministic within ~1%: no network, no timers.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REQUESTS = 1000


def record(requests: int, case: str, capture_only: bool) -> None:
    """Record `requests` finished requests through a real `Tracing` and flush it."""
    from bench.tracing_cost import RESOURCE, SCOPE, context
    from relaygate.observe.record import record_from_context
    from relaygate.observe.tracing import tracer
    from relaygate.observe.tracing.config import TracingConfig
    from relaygate.observe.tracing.wire import TraceEncoder, encode_batch

    class Sender:
        def __init__(self) -> None:
            self.encoder = TraceEncoder(tracer._span_ids())

        def send(self, batch: Any) -> bool:
            if not capture_only:
                encode_batch(RESOURCE, SCOPE, [self.encoder.encode(trace) for trace in batch])
            return True

        def shutdown(self) -> None:
            pass

    tracer._sender = lambda protocol, env, resource, scope: Sender()  # type: ignore[assignment]
    ctx = context(2 if case == "fallback" else 1)
    finished = record_from_context(ctx, 256 * 1024)
    snapshot: Any = SimpleNamespace(models={}, proxies={})
    tracing = tracer.Tracing(TracingConfig(schedule_delay=3600.0), {}, lambda: snapshot)
    for _ in range(requests):
        tracing.record(ctx, finished)
    tracing.queue.force_flush()
    tracing.shutdown()


def instructions(requests: int, case: str, capture_only: bool) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        command = [sys.executable, __file__, case, "--requests", str(requests)]
        if capture_only:
            command.append("--capture-only")
        subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *command],
            check=True,
            capture_output=True,
            env=dict(os.environ, TRACING_INSTRUCTIONS_CHILD="1"),
        )
        totals = [
            int(line.split()[1]) for line in out.read_text().splitlines() if line.startswith(("summary:", "totals:"))
        ]
        return max(totals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("case", nargs="?", default="chat", choices=("chat", "fallback"))
    parser.add_argument("--capture-only", action="store_true", help="leave the encoding out")
    parser.add_argument("--requests", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if os.environ.get("TRACING_INSTRUCTIONS_CHILD"):
        record(args.requests or 0, args.case, args.capture_only)
        return
    empty = instructions(0, args.case, args.capture_only)
    full = instructions(REQUESTS, args.case, args.capture_only)
    part = "capture" if args.capture_only else "capture + encode + batch"
    print(f"{args.case}: {part}: {(full - empty) / REQUESTS:,.0f} instructions per request")


if __name__ == "__main__":
    main()
