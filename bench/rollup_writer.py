#!/usr/bin/env python3
"""What the usage rollups add to the log writer thread: microseconds per row, rollups on vs off.

    python bench/rollup_writer.py [--batches 40] [--batch 500] [--postgres postgresql://...]

The log writer hands `write_many` batches of up to 500 rows. Measured here, in this process, with
rows shaped like a gateway's (a few models, users, endpoints; metadata with one listed key):
`aggregate` (the Python aggregation alone: `Rollup.add` per row, then the hourly fold) and
`write_many` on a SQLite file (and PostgreSQL when `--postgres` is given) with `RELAYGATE_ROLLUPS=off`
and on. Printed: median microseconds per row over the batches (each batch a fresh store call).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from relaygate.observe import rollup  # noqa: E402
from relaygate.observe.record import LogRecord  # noqa: E402

MODELS = [f"openai-main/gpt-{i}" for i in range(6)]
USERS = [f"user:u{i}@example.com" for i in range(40)]


def batch(rng: random.Random, size: int, now: float) -> list[LogRecord]:
    """Rows as a gateway logs them: each user has one token and one team and calls 2 of the models
    (a model resolves to one target), so a 500-row batch (a second at 500 req/s) has ~200 keys."""
    out = []
    for i in range(size):
        status = 200 if rng.random() < 0.95 else 429
        user = rng.randrange(len(USERS))
        model = MODELS[(user + rng.randrange(2)) % len(MODELS)]
        out.append(
            LogRecord(
                request_id=f"{now}-{i}",
                time=now + i * 0.002,
                method="POST",
                path="/api/llm/v1/chat/completions",
                subject=USERS[user],
                token_id=f"tok{user}",
                requested_model=model,
                resolved_model=model,
                provider="openai",
                model_type="chat",
                status=status,
                input_tokens=rng.randint(10, 2000),
                output_tokens=rng.randint(1, 800),
                cost_usd=rng.random() / 1000,
                latency_ms=rng.expovariate(1 / 600),
                ttft_ms=rng.expovariate(1 / 150) if rng.random() < 0.5 else None,
                metadata={"app": rng.choice(("chat", "search", "batch")), "trace": f"x{i}"},
                error_type=None if status == 200 else "rate_limited",
                team=(None, "ml", "sre")[user % 3],
            )
        )
    return out


def per_row(samples: list[float], rows: int, cpu: list[float] | None = None) -> str:
    text = f"{statistics.median(samples) / rows * 1e6:7.2f} us/row (best {min(samples) / rows * 1e6:6.2f})"
    if cpu:
        text += f"  process CPU {statistics.median(cpu) / rows * 1e6:7.2f} us/row"
    return text


def aggregate_cost(batches: list[list[LogRecord]]) -> list[float]:
    samples = []
    for records in batches:
        start = time.perf_counter()
        minutes = rollup.Rollup(("app",), 60).add_all(records)
        minutes.rows()
        minutes.coarser(3600).rows()
        samples.append(time.perf_counter() - start)
    return samples


def store_cost(open_store: Any, batches: list[list[LogRecord]], enabled: bool) -> tuple[list[float], list[float]]:
    """Wall time of each `write_many`, and the CPU time this process spent on it (all threads: for
    PostgreSQL the store's loop thread too, not the server's work)."""
    os.environ["RELAYGATE_ROLLUPS"] = "on" if enabled else "off"
    store = open_store()
    store.configure_rollups(lambda: ("app",))
    samples: list[float] = []
    cpu: list[float] = []
    try:
        store.write_many(batches[0])  # warm: tables, statements, connections
        for records in batches[1:]:
            start, start_cpu = time.perf_counter(), time.process_time()
            store.write_many(records)
            samples.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
    finally:
        store.close()
        os.environ.pop("RELAYGATE_ROLLUPS", None)
    return samples, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--postgres", help="a PostgreSQL URL (its request_logs and rollups receive the rows)")
    args = parser.parse_args()
    rng = random.Random(13)
    now = time.time()
    batches = [batch(rng, args.batch, now + i) for i in range(args.batches)]
    print(f"{args.batches} batches of {args.batch} rows")
    print(f"aggregate (Python only)    {per_row(aggregate_cost(batches), args.batch)}")

    from relaygate.observe.store.sqlite import SQLiteLogStore

    with tempfile.TemporaryDirectory() as tmp:
        for enabled in (False, True, False, True):
            path = Path(tmp) / f"log-{enabled}-{time.monotonic_ns()}.db"
            samples, cpu = store_cost(lambda p=path: SQLiteLogStore(f"sqlite:///{p}"), batches, enabled)
            print(f"sqlite write_many rollups {'on ' if enabled else 'off'}   {per_row(samples, args.batch, cpu)}")
    if args.postgres:
        from relaygate.observe.store.postgres import PostgresLogStore

        for enabled in (False, True, False, True):
            samples, cpu = store_cost(lambda: PostgresLogStore(args.postgres), batches, enabled)
            print(f"postgres write_many rollups {'on ' if enabled else 'off'} {per_row(samples, args.batch, cpu)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
