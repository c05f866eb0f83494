"""The one-statement grouped timeseries (`usage.ranked_sql`: ranking, top series and `other` per point
in one read) answers exactly what the three-statement path answers, on SQLite and PostgreSQL: many
users (more than `limit`), ties on the ranking, missing values, filters, scopes, several dimensions."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from relaygate.observe import usage
from relaygate.observe.record import LogRecord
from relaygate.observe.store.postgres import PostgresLogStore
from relaygate.observe.store.sqlite import SQLiteLogStore

HOUR = 3600
NOW = float(int(time.time()) // HOUR * HOUR)
START = NOW - 8 * HOUR


def records(count: int, seed: int = 13) -> list[LogRecord]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        user = int(rng.paretovariate(1.2)) % 60  # a long tail: many small users, a few big ones
        subject = None if user == 0 else f"user:u{user}@x.com"
        status = rng.choice((200, 200, 200, 200, 429, 502))
        out.append(
            LogRecord(
                request_id=f"r{i}",
                time=START + rng.random() * 8 * HOUR,
                method="POST",
                path=rng.choice(("/api/llm/v1/chat/completions", "/v1/embeddings")),
                subject=subject,
                token_id=f"t{user}-{rng.randrange(2)}",
                requested_model=f"m{user % 3}",
                resolved_model=None if status == 502 else f"acct/m{user % 3}",
                provider="openai",
                status=status,
                input_tokens=rng.randint(1, 500),
                output_tokens=rng.choice((None, rng.randint(1, 900))),
                cost_usd=rng.choice((None, rng.random() / 100)),
                latency_ms=rng.expovariate(1 / 800),
                ttft_ms=rng.choice((None, rng.expovariate(1 / 200))),
                metadata={"app": rng.choice(("a", "b"))},
                error_type=None if status == 200 else ("rate_limited" if status == 429 else "upstream_error"),
                team=None if user % 4 == 0 else f"team{user % 4}",
            )
        )
    # Ties: users with exactly one request each, in the same hour.
    for j in range(8):
        out.append(
            LogRecord(
                request_id=f"tie{j}",
                time=START + 2 * HOUR + j,
                method="POST",
                path="/api/llm/v1/chat/completions",
                subject=f"user:tie{7 - j}@x.com",
                token_id=f"tie{j}",
                requested_model="m1",
                resolved_model="acct/m1",
                provider="openai",
                status=200,
                input_tokens=10,
                cost_usd=0.001,
                latency_ms=100.0,
                team="team1",
            )
        )
    return out


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "sqlite":
        opened: Any = SQLiteLogStore(f"sqlite:///{tmp_path / 'log.db'}")
    else:
        opened = PostgresLogStore(request.getfixturevalue("pg_url"))
    opened.configure_rollups(lambda: ("app",))
    rows = records(3000)
    for first in range(0, len(rows), 500):
        opened.write_many(rows[first : first + 500])
    yield opened
    opened.close()


def _fetch(store: Any) -> tuple[usage.Dialect, usage.Fetch]:
    if isinstance(store, SQLiteLogStore):

        def fetch_sqlite(sql: str, params: list[Any]) -> list[Any]:
            return store._read_conn.execute(sql, params).fetchall()

        return "sqlite", fetch_sqlite

    def fetch_postgres(sql: str, params: list[Any]) -> list[Any]:
        async def select(conn: Any) -> list[Any]:
            return await (await conn.execute(sql, params)).fetchall()

        rows: list[Any] = store.database.call(select)
        return rows

    return "postgres", fetch_postgres


QUERIES: list[dict[str, Any]] = [
    {"group_by": ["user"], "aggregations": ["requests", "input_tokens", "output_tokens", "cost_usd"], "limit": 5},
    {"group_by": ["user"], "limit": 12},  # the tied one-request users straddle the cut
    {"group_by": ["user"], "aggregations": ["cost_usd", "requests"], "limit": 3},
    {"group_by": ["user"], "aggregations": ["input_tokens", "latency_p50", "error_rate"], "limit": 7},
    {"group_by": ["user"], "interval": "15m", "limit": 4, "start_minutes": 5},  # the minute rollup
    {"group_by": ["token"], "limit": 10},
    {"group_by": ["team"], "limit": 2},
    {"group_by": ["user", "team"], "limit": 6},
    {"group_by": ["user", "token"], "aggregations": ["cost_usd"], "limit": 9},
    {"group_by": ["user"], "limit": 4, "filters": [{"field": "team", "op": "in", "value": ["team1", "team2"]}]},
    {"group_by": ["user"], "limit": 4, "filters": [{"field": "user", "op": "ne", "value": "u1@x.com"}]},
    {"group_by": ["token"], "limit": 3, "scope": ("user:u2@x.com", ("team3",))},
    {"group_by": ["user"], "limit": 200},  # fewer groups than the limit: no `other`
]


@pytest.mark.parametrize("query", QUERIES)
def test_one_statement_answers_as_the_three_statements_do(store: Any, query: dict[str, Any]) -> None:
    query = dict(query)
    scope = query.pop("scope", None)
    start = START + 60 * query.pop("start_minutes", 0)
    request = {"type": "timeseries", "interval": "1h", "start": start, "end": NOW, **query}
    plan = usage.plan_usage(
        request,
        now=NOW,
        rolled_metadata=("app",),
        scope=usage.Scope(scope[0], scope[1]) if scope else None,
    )
    assert not plan.table.endswith("_model")
    dialect, fetch = _fetch(store)
    one = usage._run_ranked(plan, dialect, fetch)
    assert one is not None
    steps = usage._run_in_steps(plan, dialect, fetch)
    assert one == steps
    assert store.usage_query(plan) == steps
    if plan.limit < 200:
        assert one["other"] is not None and one["other"]["groups"] > 0
        assert len({tuple(p["group"].values()) for p in one["points"]}) == plan.limit


def test_plans_it_does_not_handle_take_the_three_statements(store: Any) -> None:
    base = {"type": "timeseries", "interval": "1h", "start": START, "end": NOW, "limit": 3}
    dialect, fetch = _fetch(store)
    for request in (
        {**base, "group_by": ["metadata.app"]},
        {**base, "group_by": ["user"], "aggregations": ["error_rate", "input_tokens"]},
        {**base, "group_by": ["user"], "aggregations": ["latency_p99"]},
    ):
        plan = usage.plan_usage(request, now=NOW, rolled_metadata=("app",))
        assert usage.ranked_sql(plan, dialect) is None
        assert store.usage_query(plan) == usage._run_in_steps(plan, dialect, fetch)
