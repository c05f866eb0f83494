"""The usage answer's shaping (`usage.shape`, `rows_from_sql`, the top-N fold in `run_rollup_query`)
gives exactly what the code before its speed-ups gave (`reference_*` below, kept as it was), on real
rows in SQLite and PostgreSQL: many users (more than `limit`), ties on the ranking, missing values,
filters, scopes, several dimensions, distributions, the model table and the raw scan."""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Any

import pytest

from relaygate.observe import usage
from relaygate.observe.record import LogRecord
from relaygate.observe.store.postgres import PostgresLogStore
from relaygate.observe.store.sqlite import SQLiteLogStore
from tests.helpers.postgres import fresh_schema

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


# -- the reference: the code as it was before the speed-ups -------------------------------------------


def reference_rows_from_sql(
    plan: usage.UsagePlan, rows: Iterable[Sequence[Any]]
) -> list[tuple[Any, tuple[Any, ...], list[float]]]:
    first = 1 + len(plan.group_by)
    out = []
    for row in rows:
        if row[first] is None:
            continue
        group = tuple([None if v == "" else v for v in row[1:first]])
        out.append((row[0], group, list(row[first:])))
    return out


def reference_shape(
    plan: usage.UsagePlan, rows: Iterable[tuple[Any, tuple[Any, ...], list[float]]], folded: usage.Folded | None = None
) -> dict[str, Any]:
    """The answer: top `limit` groups by the ranking aggregation, the rest summed into `other`
    (or `folded`, when the rows hold only the top groups)."""
    width = len(plan.value_columns)
    layout = usage._Layout.of(plan)
    series: dict[tuple[Any, ...], dict[Any, list[float]]] = {}
    for ts, group, values in rows:
        by_ts = series.get(group)
        if by_ts is None:
            by_ts = series[group] = {}
        acc = by_ts.get(ts)
        if acc is None:
            by_ts[ts] = values
        else:
            usage._add(acc, values)
    totals = {group: usage._sum(by_ts.values(), width) for group, by_ts in series.items()}
    ranked = sorted(totals, key=lambda g: (-usage._rank_value(plan, layout, totals[g]), tuple(str(v) for v in g)))
    top, rest = ranked[: plan.limit], ranked[plan.limit :]
    timeseries = plan.type == "timeseries"
    keyed: list[tuple[Any, int, dict[str, Any]]] = []
    for rank, group in enumerate(top):
        named = dict(zip(plan.group_by, group, strict=True))
        for ts, values in series[group].items():
            point: dict[str, Any] = {"ts": float(ts), "group": named} if timeseries else {"group": named}
            point.update(usage._aggregate(plan, layout, values))
            keyed.append((ts if timeseries else 0, rank, point))
    keyed.sort(key=lambda item: (item[0], item[1]))
    points = [point for _, _, point in keyed]
    other: dict[str, Any] | None = None
    if rest and folded is None:
        folded = usage.Folded(len(rest), [0.0] * width, {})
        for group in rest:
            usage._add(folded.total, totals[group])
            for ts, values in series[group].items():
                usage._add(folded.by_ts.setdefault(ts, [0.0] * width), values)
    everything = usage._sum([totals[group] for group in top], width)
    if folded is not None and folded.groups:
        usage._add(everything, folded.total)
        by_ts_other = folded.by_ts
        other = {"groups": folded.groups, **usage._aggregate(plan, layout, folded.total)}
        if plan.type == "timeseries":
            other["points"] = [
                {"ts": float(ts), **usage._aggregate(plan, layout, by_ts_other[ts])} for ts in sorted(by_ts_other)
            ]
    return {
        "type": plan.type,
        "interval": plan.interval_name,
        "start": float(plan.range_start),
        "end": float(plan.range_end),
        "source": plan.source,
        "capped": plan.capped,
        "group_by": list(plan.group_by),
        "aggregations": list(plan.aggregations),
        "points": points,
        "other": other,
        "totals": usage._aggregate(plan, layout, everything),
    }


def reference_query(plan: usage.UsagePlan, dialect: usage.Dialect, fetch: usage.Fetch) -> dict[str, Any]:
    if plan.type == "distribution" or not plan.group_by:
        sql, params = usage.rollup_sql(plan, dialect)
        return reference_shape(plan, reference_rows_from_sql(plan, fetch(sql, params)))
    if plan.table.endswith("_model"):
        sql, params = usage.rollup_sql(plan, dialect)
        rows = reference_rows_from_sql(plan, fetch(sql, params))
        if len({group for _, group, _ in rows}) <= plan.limit:
            return reference_shape(plan, rows)
    totals_plan = replace(plan, type="distribution")
    sql, params = usage.rollup_sql(totals_plan, dialect)
    totals = reference_rows_from_sql(totals_plan, fetch(sql, params))
    if len(totals) <= plan.limit:
        sql, params = usage.rollup_sql(plan, dialect)
        return reference_shape(plan, reference_rows_from_sql(plan, fetch(sql, params)))
    layout = usage._Layout.of(plan)
    totals.sort(key=lambda row: (-usage._rank_value(plan, layout, row[2]), tuple(str(v) for v in row[1])))
    top, rest = totals[: plan.limit], totals[plan.limit :]
    sql, params = usage.rollup_sql(plan, dialect, only=[group for _, group, _ in top])
    rows = reference_rows_from_sql(plan, fetch(sql, params))
    everything_plan = replace(
        plan,
        group_by=(),
        table=usage._table_for(plan.source, [f.field for f in plan.filters], plan.scope is not None),
    )
    sql, params = usage.rollup_sql(everything_plan, dialect)
    width = len(plan.value_columns)
    folded = usage.Folded(len(rest), usage._sum([values for _, _, values in rest], width), {})
    by_ts = folded.by_ts
    for ts, _, values in reference_rows_from_sql(everything_plan, fetch(sql, params)):
        by_ts[ts] = values
    for ts, _, values in rows:
        remainder = by_ts.get(ts)
        if remainder is not None:
            by_ts[ts] = [a - b for a, b in zip(remainder, values, strict=True)]
    requests, cost = layout.index["requests"], layout.index.get("cost_usd")
    for ts in list(by_ts):
        if by_ts[ts][requests] < 1:
            del by_ts[ts]
        elif cost is not None:
            by_ts[ts][cost] = max(0.0, by_ts[ts][cost])
    return reference_shape(plan, rows, folded)


# -- the comparison ---------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"], scope="module")
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One store per backend for the whole module, filled once: every test here only reads it."""
    if request.param == "sqlite":
        opened: Any = SQLiteLogStore(f"sqlite:///{tmp_path_factory.mktemp('usage') / 'log.db'}")
    else:
        opened = PostgresLogStore(fresh_schema(request.getfixturevalue("pg_database")))
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


SUMS = ["requests", "input_tokens", "output_tokens", "cost_usd"]
QUERIES: list[dict[str, Any]] = [
    {"group_by": ["user"], "aggregations": SUMS, "limit": 5},
    {"group_by": ["user"], "limit": 12},  # the tied one-request users straddle the cut
    {"group_by": ["user"], "aggregations": ["cost_usd", "requests"], "limit": 3},
    {"group_by": ["user"], "aggregations": ["input_tokens", "latency_p50", "error_rate"], "limit": 7},
    {"group_by": ["user"], "aggregations": ["error_rate", "ttft_p90"], "limit": 7},  # ranked by a rate
    {"group_by": ["user"], "interval": "15m", "limit": 4, "start_minutes": 5},  # the minute rollup
    {"group_by": ["token"], "limit": 10},
    {"group_by": ["team"], "limit": 2},
    {"group_by": ["user", "team"], "limit": 6},
    {"group_by": ["user", "token"], "aggregations": ["cost_usd"], "limit": 9},
    {"group_by": ["metadata.app"], "limit": 1},
    {"group_by": ["model"], "aggregations": [*SUMS, "latency_p99"], "limit": 2},
    {"group_by": ["model", "status_class"], "limit": 50},
    {"group_by": ["user"], "limit": 4, "filters": [{"field": "team", "op": "in", "value": ["team1", "team2"]}]},
    {"group_by": ["user"], "limit": 4, "filters": [{"field": "user", "op": "ne", "value": "u1@x.com"}]},
    {"group_by": ["token"], "limit": 3, "scope": ("user:u2@x.com", ("team3",))},
    {"group_by": ["user"], "limit": 200},  # fewer groups than the limit: no `other`
    {"group_by": [], "aggregations": [*SUMS, "error_rate", "latency_p95"]},
    {"type": "distribution", "group_by": ["user"], "limit": 5},
    {"type": "distribution", "group_by": ["model", "user"], "aggregations": ["cost_usd", "latency_p50"], "limit": 8},
]


@pytest.mark.parametrize("query", QUERIES)
def test_the_answer_is_the_reference_answer(store: Any, query: dict[str, Any]) -> None:
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
    dialect, fetch = _fetch(store)
    expected = reference_query(plan, dialect, fetch)
    assert store.usage_query(plan) == expected
    assert usage.run_rollup_query(plan, dialect, fetch) == expected
    if query.get("group_by") == ["user"] and plan.limit < 200:
        assert expected["other"] is not None and expected["other"]["groups"] > 0


@pytest.mark.parametrize("query", QUERIES[:4] + QUERIES[-2:])
def test_the_raw_scan_is_shaped_as_before(store: Any, query: dict[str, Any]) -> None:
    request = {"type": "timeseries", "interval": "1h", "start": START, "end": NOW, **query}
    plan = replace(usage.plan_usage(request, now=NOW, rolled_metadata=("app",)), source="raw", table="")
    dialect, _ = _fetch(store)
    answer = store.usage_query(plan)
    sql, params = usage.raw_sql(plan, dialect)
    agg = usage.raw_rollup(plan)
    if isinstance(store, SQLiteLogStore):
        rows = store._read_conn.execute(sql, params).fetchall()
    else:

        async def select(conn: Any) -> list[Any]:
            return await (await conn.execute(sql, params)).fetchall()

        rows = store.database.call(select)
    agg.add_all(usage.raw_record(row) for row in rows)
    assert answer == reference_shape(plan, usage.rows_from_rollup(plan, agg))


def test_the_collector_is_back_as_it_was_after_a_query(store: Any) -> None:
    import gc

    plan = usage.plan_usage(
        {"type": "timeseries", "interval": "1h", "start": START, "end": NOW, "group_by": ["user"], "limit": 3},
        now=NOW,
    )
    assert gc.isenabled()
    store.usage_query(plan)
    assert gc.isenabled()
    gc.disable()
    try:
        store.usage_query(plan)
        assert not gc.isenabled()  # the application's choice stands
    finally:
        gc.enable()
    dialect, _ = _fetch(store)

    def failing(sql: str, params: list[Any]) -> list[Any]:
        raise RuntimeError("the database went away")

    with pytest.raises(RuntimeError):
        usage.run_rollup_query(plan, dialect, failing)
    assert gc.isenabled()
