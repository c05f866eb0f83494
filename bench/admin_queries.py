#!/usr/bin/env python3
"""The admin API's heavy reads at scale: a usage query and the first log page over N synthetic rows.

    python bench/admin_queries.py --url postgresql://postgres@127.0.0.1:5432/bench --rows 1000000
    python bench/admin_queries.py --url sqlite:////tmp/bench.db --rows 1000000
    python bench/admin_queries.py --url ... --rows 10000000 --reuse   # measure an already filled log

Fill: `--rows` request-log rows spread evenly over the last `--days` (8) days, written by the log
store's own `write_many` in batches of `--batch` rows (PostgreSQL: one COPY per batch; SQLite:
executemany) which also fills `usage_rollup_1m` and `usage_rollup_1h` with the writer's aggregation
(`relaygate.observe.rollup`) in the same transaction: no hand-written SQL for the rollups. The rows
look like a busy gateway's: `--users` users with one token and one team each, each calling 3 of 20
models through 2 endpoints, one listed metadata key (`app`, one value per user), 3 % 4xx and 2 % 5xx.
Then (PostgreSQL) `VACUUM ANALYZE`, as autovacuum would have done on a live log.

Measure (`--repeat` times each, after one warm-up run; printed p50/p95/max in ms):
- usage, 7 days (hour-aligned) by model, hourly: requests, errors, tokens, cost, latency p50/p99;
- usage, 7 days by user, hourly, top 50 (the rest in `other`): requests, tokens, cost;
- the first log page (`first_log_page`: the store's `search`, as `GET /logs` calls it: the last
  hour, 50 rows, no bodies).
The numbers are the store call (planning, SQL, shaping), without HTTP. `--breakdown` adds, for the
two usage queries, the median run split into each statement's fetch and the Python around them.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from relaygate.database import is_postgres_url  # noqa: E402
from relaygate.observe import rollup, usage  # noqa: E402
from relaygate.observe.record import LogRecord  # noqa: E402
from relaygate.observe.store import open_log_store  # noqa: E402
from relaygate.observe.store.search import LogFilter  # noqa: E402

DAY = 86_400
HOUR = 3_600
MODELS = [f"acct{i % 4}/model-{i}" for i in range(20)]
APPS = ("chat", "search", "batch", "agents", "eval")
METADATA_KEYS = ("app",)


def first_log_page(store: Any) -> list[dict[str, Any]]:
    """The logs page's first request, as `GET /logs` makes it: the last hour, 50 rows, no bodies."""
    now = time.time()
    rows: list[dict[str, Any]] = store.search(LogFilter(start=now - 3600, end=now), None, 50)
    return rows


def synthetic(rng: random.Random, count: int, start: float, step: float, first: int, users: int) -> list[LogRecord]:
    out = []
    for i in range(first, first + count):
        user = rng.randrange(users)
        model = MODELS[(user * 3 + rng.randrange(3)) % len(MODELS)]
        roll = rng.random()
        status = 200 if roll < 0.95 else (429 if roll < 0.98 else 502)
        embeddings = model.endswith(("-7", "-13"))
        latency = rng.lognormvariate(6.2, 0.8)
        out.append(
            LogRecord(
                request_id=f"bench-{i}",
                time=start + i * step + rng.random() * step,
                method="POST",
                path="/api/llm/v1/embeddings" if embeddings else "/api/llm/v1/chat/completions",
                subject=f"user:u{user}@example.com",
                token_id=f"tok{user:05d}",
                requested_model=model,
                resolved_model=model if status != 502 else None,
                provider="openai",
                model_type="embedding" if embeddings else "chat",
                status=status,
                streaming=not embeddings and rng.random() < 0.5,
                input_tokens=rng.randint(20, 3000),
                output_tokens=None if embeddings else rng.randint(1, 1200),
                cost_usd=rng.random() / 500,
                latency_ms=latency,
                ttft_ms=latency * 0.3 if not embeddings else None,
                metadata={"app": APPS[user % len(APPS)], "request": f"r{i % 1000}"},
                error_type=None if status == 200 else ("rate_limited" if status == 429 else "upstream_error"),
                team=f"team-{user % 10}",
            )
        )
    return out


def row_count(store: Any) -> int:
    if hasattr(store, "database"):

        async def count(conn: Any) -> int:
            cursor = await conn.execute("SELECT count(*) FROM request_logs")
            return int((await cursor.fetchone())[0])

        return int(store.database.call(count, timeout=600))
    with store._read_lock:
        return int(store._read_conn.execute("SELECT count(*) FROM request_logs").fetchone()[0])


def fill(store: Any, args: argparse.Namespace, now: float) -> None:
    """Rows by `write_many` (COPY / executemany; its rollup upserts are off for the fill: see `main`),
    and the rollups by the writer's own `Rollup` aggregation over `--rollup-span` rows at a time,
    added with the store's `write_rollups` (the same upserts the writer runs, on fewer, fuller keys)."""
    rng = random.Random(20261207)
    start = now - args.days * DAY
    step = args.days * DAY / args.rows
    began = time.monotonic()
    minutes = rollup.Rollup(METADATA_KEYS, rollup.WIDTHS["1m"])
    pending = 0
    for first in range(0, args.rows, args.batch):
        count = min(args.batch, args.rows - first)
        records = synthetic(rng, count, start, step, first, args.users)
        store.write_many(records)
        minutes.add_all(records)
        pending += count
        if pending >= args.rollup_span or first + count >= args.rows:
            store.write_rollups(minutes)
            minutes = rollup.Rollup(METADATA_KEYS, rollup.WIDTHS["1m"])
            pending = 0
        if (first // args.batch) % 20 == 0:
            done = first + count
            rate = done / (time.monotonic() - began)
            print(f"  {done:>10,} rows  {rate:,.0f} rows/s", flush=True)
    print(f"filled {args.rows:,} rows in {time.monotonic() - began:.0f} s", flush=True)
    if hasattr(store, "database"):

        async def vacuum(conn: Any) -> None:
            await conn.set_autocommit(True)
            for table in ("request_logs", *(t.name for t in rollup.ROLLUP_TABLES)):
                await conn.execute(f"VACUUM ANALYZE {table}")

        store.database.call(vacuum, timeout=3600)


_GENERATE = """
INSERT INTO request_logs (request_id, "time", method, path, subject, token_id, requested_model, resolved_model,
    provider, model_type, status, streaming, input_tokens, output_tokens, cost_usd, cost_unknown, latency_ms,
    ttft_ms, metadata, error_type, truncated, extra, team)
SELECT 'bench-' || i, %(start)s + i * %(step)s + random() * %(step)s, 'POST',
    CASE WHEN m IN (7, 13) THEN '/api/llm/v1/embeddings' ELSE '/api/llm/v1/chat/completions' END,
    'user:u' || u || '@example.com', 'tok' || lpad(u::text, 5, '0'),
    'acct' || (m %% 4) || '/model-' || m,
    CASE WHEN roll >= 0.98 THEN NULL ELSE 'acct' || (m %% 4) || '/model-' || m END,
    'openai', CASE WHEN m IN (7, 13) THEN 'embedding' ELSE 'chat' END,
    CASE WHEN roll < 0.95 THEN 200 WHEN roll < 0.98 THEN 429 ELSE 502 END,
    m NOT IN (7, 13) AND random() < 0.5,
    20 + floor(random() * 2981)::int,
    CASE WHEN m IN (7, 13) THEN NULL ELSE 1 + floor(random() * 1200)::int END,
    random() / 500, false, latency,
    CASE WHEN m IN (7, 13) THEN NULL ELSE latency * 0.3 END,
    jsonb_build_object('app', (ARRAY['chat', 'search', 'batch', 'agents', 'eval'])[1 + u %% 5],
                       'request', 'r' || (i %% 1000)),
    CASE WHEN roll < 0.95 THEN NULL WHEN roll < 0.98 THEN 'rate_limited' ELSE 'upstream_error' END,
    false, '{}'::jsonb, 'team-' || (u %% 10)
FROM (
    SELECT i, u, (u * 3 + floor(random() * 3)::int) %% 20 AS m, random() AS roll,
        exp(6.2 + 0.8 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())) AS latency
    FROM (SELECT i, floor(random() * %(users)s)::int AS u FROM generate_series(%(first)s, %(last)s) AS i) AS ids
) AS drawn
"""


def fill_postgres(args: argparse.Namespace, now: float) -> None:
    """PostgreSQL at 10 M rows: the rows generated by the server (`_GENERATE`: the same shape as
    `synthetic`), then read back 6 hours at a time and aggregated by the raw-scan path of usage
    queries (`usage.raw_record` + `rollup.Rollup`, the writer's aggregation); every table's rows of
    that window COPYed into the (empty) rollup tables, which is what the writer's upserts would hold."""
    import psycopg

    start = now - args.days * DAY
    step = args.days * DAY / args.rows
    began = time.monotonic()
    with psycopg.connect(args.url, autocommit=True) as conn:
        for first in range(0, args.rows, 1_000_000):
            last = min(first + 1_000_000, args.rows) - 1
            params = {"start": start, "step": step, "users": args.users, "first": first, "last": last}
            conn.execute(_GENERATE, params)
            print(f"  {last + 1:>10,} rows generated  {time.monotonic() - began:.0f} s", flush=True)
        window = 6 * HOUR
        edge = (start // window) * window
        while edge < now + window:
            minutes = rollup.Rollup(METADATA_KEYS, rollup.WIDTHS["1m"])
            columns = ", ".join(f'"{c}"' for c in usage.RAW_COLUMNS)
            with conn.transaction(), conn.cursor(name="bench_rollup") as cursor:
                cursor.itersize = 20_000
                cursor.execute(
                    f'SELECT {columns} FROM request_logs WHERE "time" >= %s AND "time" < %s', (edge, edge + window)
                )
                minutes.add_all(usage.raw_record(row) for row in cursor)
            with conn.transaction(), conn.cursor() as cursor:
                for table, rows in minutes.table_rows():
                    with cursor.copy(f"COPY {table.name} ({', '.join(table.columns)}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
            edge += window
        print(f"rollups filled  {time.monotonic() - began:.0f} s", flush=True)
        for table in ("request_logs", *(t.name for t in rollup.ROLLUP_TABLES)):
            conn.execute(f"VACUUM ANALYZE {table}")
    print(f"filled {args.rows:,} rows in {time.monotonic() - began:.0f} s", flush=True)


def measure(name: str, run: Any, repeat: int) -> dict[str, Any]:
    result = run()  # warm-up (and the answer, for the printout)
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    p95 = samples[max(0, int(round(0.95 * len(samples))) - 1)]
    line = f"{name:<44} p50 {statistics.median(samples):8.1f} ms  p95 {p95:8.1f} ms  max {samples[-1]:8.1f} ms"
    if isinstance(result, dict):
        line += f"  [{result['source']}, {len(result['points'])} points]"
    print(line, flush=True)
    return {"name": name, "p50": statistics.median(samples), "p95": p95}


def breakdown(name: str, store: Any, plan: usage.UsagePlan, repeat: int) -> None:
    """Where a rollup query's time goes: each statement's `fetch` (SQL, transfer, row parsing), and
    the rest (planning the statements, ranking, folding `other`, building the points) in Python."""
    real = usage.run_rollup_query
    fetches: list[float] = []

    def timed(plan: usage.UsagePlan, dialect: usage.Dialect, fetch: usage.Fetch) -> dict[str, Any]:
        def timed_fetch(sql: str, params: list[Any]) -> Any:
            start = time.perf_counter()
            rows = fetch(sql, params)
            fetches.append((time.perf_counter() - start) * 1000)
            return rows

        return real(plan, dialect, timed_fetch)

    usage.run_rollup_query = timed  # type: ignore[assignment]
    try:
        store.usage_query(plan)
        samples = []
        for _ in range(repeat):
            fetches.clear()
            start = time.perf_counter()
            store.usage_query(plan)
            total = (time.perf_counter() - start) * 1000
            samples.append((total, list(fetches), total - sum(fetches)))
    finally:
        usage.run_rollup_query = real  # type: ignore[assignment]
    samples.sort(key=lambda sample: sample[0])
    total, sql, python = samples[len(samples) // 2]
    statements = " + ".join(f"{t:.1f}" for t in sql)
    print(f"  {name} (the median run): {total:.1f} ms = SQL {statements} + Python {python:.1f}")
    pythons = sorted(sample[2] for sample in samples)
    print(f"    Python over the runs: p50 {statistics.median(pythons):.1f} ms, max {pythons[-1]:.1f} ms", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="postgresql://... or sqlite:///path (a scratch database)")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=float, default=8.0)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--batch", type=int, default=20_000)
    parser.add_argument("--rollup-span", type=int, default=200_000, help="rows aggregated per rollup upsert")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--reuse", action="store_true", help="measure the rows already there (no fill)")
    parser.add_argument(
        "--breakdown", action="store_true", help="also split the usage queries' time into SQL per statement and Python"
    )
    parser.add_argument(
        "--generate",
        action="store_true",
        help="PostgreSQL: generate the rows in the server and fill the rollups from them (fast, for 10 M)",
    )
    args = parser.parse_args()
    os.environ["RELAYGATE_ROLLUPS"] = "off"  # the fill adds the rollups itself, per --rollup-span rows
    store = open_log_store(args.url)
    store.configure_rollups(lambda: METADATA_KEYS)  # type: ignore[attr-defined]
    now = time.time()
    try:
        if not args.reuse and args.generate and is_postgres_url(args.url):
            fill_postgres(args, now)
        elif not args.reuse:
            fill(store, args, now)
        total = row_count(store)
        kind = "PostgreSQL" if is_postgres_url(args.url) else "SQLite"
        print(f"{kind}: {total:,} request-log rows", flush=True)
        end = (now // HOUR) * HOUR
        week = {"start": end - 7 * DAY, "end": end, "type": "timeseries", "interval": "1h"}
        by_model = usage.plan_usage(
            {
                **week,
                "group_by": ["model"],
                "aggregations": ["requests", "errors", "input_tokens", "output_tokens", "cost_usd"]
                + ["latency_p50", "latency_p99"],
            },
            now=now,
            rolled_metadata=METADATA_KEYS,
        )
        by_user = usage.plan_usage(
            {
                **week,
                "group_by": ["user"],
                "aggregations": ["requests", "input_tokens", "output_tokens", "cost_usd"],
                "limit": 50,
            },
            now=now,
            rolled_metadata=METADATA_KEYS,
        )
        measure("usage 7 d by model, hourly", lambda: store.usage_query(by_model), args.repeat)  # type: ignore[attr-defined]
        measure("usage 7 d by user (top 50), hourly", lambda: store.usage_query(by_user), args.repeat)  # type: ignore[attr-defined]
        measure("first log page (search, last hour, 50 rows)", lambda: first_log_page(store), args.repeat)
        if args.breakdown:
            breakdown("usage 7 d by model, hourly", store, by_model, args.repeat)
            breakdown("usage 7 d by user (top 50), hourly", store, by_user, args.repeat)
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
