"""Usage rollups: the log writer's per-minute and per-hour sums agree with the raw rows (SQLite and
PostgreSQL), every source answers a query alike, old schemas migrate, retention purges each table."""

from __future__ import annotations

import random
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from relaygate.observe import rollup, usage
from relaygate.observe.record import LogRecord
from relaygate.observe.request_metrics import DURATION_BUCKETS
from relaygate.observe.store.base import UsageStore
from relaygate.observe.store.postgres import PostgresLogStore
from relaygate.observe.store.sqlite import SCHEMA_VERSION, SQLiteLogStore
from tests.conftest import GatewayFactory

HOUR = 3600
NOW = float(int(time.time()) // HOUR * HOUR)
START = NOW - 6 * HOUR


def records(count: int, seed: int = 7, start: float = START, span: float = 6 * HOUR) -> list[LogRecord]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        status = rng.choice((200, 200, 200, 429, 500))
        subject = rng.choice(("user:a@x.com", "user:b@x.com", "virtualaccount:bot", None))
        proxy = rng.random() < 0.2
        out.append(
            LogRecord(
                request_id=f"r{i}",
                time=start + rng.random() * span,
                method="POST",
                path="/proxy-api/acct/search/v2/q"
                if proxy
                else rng.choice(("/api/llm/v1/chat/completions", "/v1/embeddings")),
                subject=subject,
                token_id=rng.choice(("t1", "t2")),
                requested_model=rng.choice(("m1", "m2", "virtual")),
                resolved_model=None if status == 500 else rng.choice(("acct/m1", "acct/m2")),
                provider="openai",
                status=status,
                input_tokens=rng.randint(1, 500),
                output_tokens=rng.choice((None, rng.randint(1, 900))),
                cost_usd=rng.choice((None, rng.random() / 100)),
                latency_ms=rng.choice((None, rng.expovariate(1 / 800))),
                ttft_ms=rng.choice((None, rng.expovariate(1 / 200))),
                metadata={"app": rng.choice(("a", "b", "c")), "env": rng.choice(("prod", "dev"))},
                error_type=None if status == 200 else ("rate_limited" if status == 429 else "upstream_error"),
                extra={"usage_details": {"cached_tokens": 3}} if rng.random() < 0.3 else {},
                team=rng.choice((None, "ml")),
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
    yield opened
    opened.close()


def _table(store: Any, table: str) -> list[dict[str, Any]]:
    columns = next(t.columns for t in rollup.ROLLUP_TABLES if t.name == table)
    sql = f"SELECT {', '.join(columns)} FROM {table}"
    if isinstance(store, SQLiteLogStore):
        rows = store._read_conn.execute(sql).fetchall()
    else:

        async def select(conn: Any) -> list[Any]:
            return await (await conn.execute(sql)).fetchall()

        rows = store.database.call(select)
    return [dict(zip(columns, row, strict=True)) for row in rows]


def test_rollup_tables_hold_the_sums_of_the_rows(store: Any) -> None:
    rows = records(1200)
    for start in range(0, len(rows), 250):  # several batches: upserts add to existing keys
        store.write_many(rows[start : start + 250])
    store.write_many(rows[:100])  # the same rows again (same keys): counted twice
    written = rows + rows[:100]
    assert len(rollup.ROLLUP_TABLES) == 6
    for table in rollup.ROLLUP_TABLES:
        width = rollup.WIDTHS[table.width]
        got = _table(store, table.name)
        assert all(r["bucket_start"] % width == 0 for r in got)
        keys = [tuple(r[c] for c in table.key_columns) for r in got]
        assert len(keys) == len(set(keys))
        assert sum(r["requests"] for r in got) == len(written)
        assert sum(r["errors"] for r in got) == sum(1 for r in written if r.status >= 400)
        assert sum(r["input_tokens"] for r in got) == sum(r.input_tokens or 0 for r in written)
        assert sum(r["output_tokens"] for r in got) == sum(r.output_tokens or 0 for r in written)
        assert sum(r["cache_read_tokens"] for r in got) == 3 * sum(1 for r in written if r.extra)
        assert sum(r["cost_usd"] for r in got) == pytest.approx(sum(r.cost_usd or 0 for r in written))
        lat = Counter()
        for r in got:
            for i, column in enumerate(rollup.LATENCY_COLUMNS):
                lat[i] += r[column]
        assert sum(lat.values()) == sum(1 for r in written if r.latency_ms is not None)
        # Bucket i counts latencies in (bound[i-1], bound[i]] seconds: the Prometheus histogram's bounds.
        assert len(rollup.LATENCY_COLUMNS) == len(DURATION_BUCKETS) + 1
        under_10ms = sum(1 for r in written if r.latency_ms is not None and r.latency_ms <= DURATION_BUCKETS[0] * 1000)
        assert lat[0] == under_10ms
        per_key: Counter[tuple[Any, ...]] = Counter()
        for r in written:
            bucket = int(r.time // width) * width
            dims = dict(zip(rollup.DIMENSIONS, rollup.dimensions_of(r, ("app",)), strict=True))
            per_key[(bucket, *(dims[d] for d in table.dimensions))] += 1
        assert {k: r["requests"] for k, r in zip(keys, got, strict=True)} == dict(per_key)
    one = next(r for r in _table(store, "usage_rollup_1h") if r["virtual_account"])
    assert one["virtual_account"] == "bot" and one["subject"] == "virtualaccount:bot"
    assert {r["endpoint"] for r in _table(store, "usage_rollup_1h")} == {
        "chat/completions",
        "embeddings",
        "acct/search",
    }
    assert {r["metadata"] for r in _table(store, "usage_rollup_1h")} == {'{"app":"a"}', '{"app":"b"}', '{"app":"c"}'}


QUERIES: list[dict[str, Any]] = [
    {"type": "distribution", "group_by": ["model"]},
    {"type": "distribution", "group_by": ["user", "metadata.app"], "limit": 3},
    {"type": "timeseries", "interval": "1h", "group_by": ["status_class"]},
    {"type": "timeseries", "interval": "1h", "group_by": ["endpoint"], "limit": 2},
    {"type": "timeseries", "interval": "1h", "group_by": ["team"], "limit": 1},
    {"type": "timeseries", "interval": "1h", "group_by": ["virtual_account"], "limit": 1},
    {"type": "timeseries", "interval": "1h", "group_by": ["metadata.app"], "limit": 2},
    {"type": "timeseries", "interval": "1h", "group_by": ["model", "status_class"], "limit": 3},
    {
        "type": "distribution",
        "group_by": ["virtual_account", "team"],
        "filters": [{"field": "error_type", "op": "is_null", "value": True}],
    },
    {
        "type": "distribution",
        "group_by": ["token"],
        "filters": [{"field": "metadata.app", "op": "in", "value": ["a", "b"]}],
    },
]


@pytest.mark.parametrize("query", QUERIES)
def test_every_source_gives_the_same_answer(store: Any, query: dict[str, Any]) -> None:
    """The hourly and minute rollups and the raw scan (the same aggregation, of the stored rows) agree."""
    store.write_many(records(800))
    aggregations = [*usage.AGGREGATIONS]
    answers = {}
    for source in ("rollup_1h", "rollup_1m", "raw"):
        plan = usage.plan_usage(
            {**query, "start": START, "end": NOW, "aggregations": aggregations},
            now=NOW,
            rolled_metadata=("app",) if source != "raw" else (),
        )
        if source == "rollup_1m":
            plan = usage.UsagePlan(**{**_fields(plan), "source": "rollup_1m"})
        if source == "raw" and plan.source != "raw":
            plan = usage.UsagePlan(**{**_fields(plan), "source": "raw"})
        assert plan.source == source
        answer = store.usage_query(plan)
        answers[source] = {k: v for k, v in answer.items() if k != "source"}
    assert _rounded(answers["rollup_1h"]) == _rounded(answers["rollup_1m"]) == _rounded(answers["raw"])
    total = answers["raw"]["totals"]
    assert total["requests"] == sum(p["requests"] for p in answers["raw"]["points"]) + (
        (answers["raw"]["other"] or {}).get("requests", 0)
    )


def _fields(plan: usage.UsagePlan) -> dict[str, Any]:
    return {name: getattr(plan, name) for name in usage.UsagePlan.__dataclass_fields__}


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def test_odd_characters_in_keys_do_not_fail_a_batch(store: Any) -> None:
    odd = records(5)
    odd[0].requested_model = odd[0].resolved_model = "nul\x00model"
    odd[1].metadata = {"app": 'quote" and \x00 nul'}
    odd[2].team = "équipe ☃"
    store.write_many(odd)
    assert sum(r["requests"] for r in _table(store, "usage_rollup_1h")) == 5
    assert any(r["team"] == "équipe ☃" for r in _table(store, "usage_rollup_1m"))


def test_other_is_the_exact_remainder(store: Any) -> None:
    store.write_many(records(600))
    base = {"type": "distribution", "group_by": ["user", "model"], "start": START, "end": NOW}
    full = store.usage_query(usage.plan_usage({**base, "limit": 1000}, now=NOW))
    top = store.usage_query(usage.plan_usage({**base, "limit": 3}, now=NOW))
    assert top["points"] == full["points"][:3]
    for name in ("requests", "errors", "input_tokens", "output_tokens"):
        assert top["other"][name] == sum(p[name] for p in full["points"][3:])
    assert top["other"]["groups"] == len(full["points"]) - 3
    assert top["other"]["cost_usd"] == pytest.approx(sum(p["cost_usd"] for p in full["points"][3:]))


def test_percentiles_come_from_the_histogram_buckets() -> None:
    bounds = (0.1, 0.2, 0.4)
    assert rollup.value_at_quantile([0, 10, 0, 0], bounds, 0.5) == pytest.approx(0.15)
    assert rollup.value_at_quantile([5, 0, 5, 0], bounds, 0.99) == pytest.approx(0.2 + 0.2 * 0.98)
    assert rollup.value_at_quantile([0, 0, 0, 4], bounds, 0.5) == 0.4  # +Inf answers the last bound
    assert rollup.value_at_quantile([0, 0, 0, 0], bounds, 0.5) is None


def test_dimensions_of_a_record() -> None:
    assert rollup.endpoint_of("/proxy-api/acct/ep/deep/path?x=1") == "acct/ep"
    assert rollup.endpoint_of("/api/llm/v1/chat/completions") == "chat/completions"
    assert rollup.endpoint_of("/api/llm/embeddings") == "embeddings"
    assert rollup.endpoint_of("/v1/responses") == "responses"
    record = LogRecord("r", NOW, "POST", "/api/llm/chat/completions", requested_model="m", status=502)
    record.metadata = {"b": "2", "a": "1", "z": "no"}
    dims = dict(zip(rollup.DIMENSIONS, rollup.dimensions_of(record, ("b", "a")), strict=True))
    assert dims["model"] == "m" and dims["status_class"] == "5xx" and dims["metadata"] == '{"a":"1","b":"2"}'


def test_a_schema_3_log_gains_the_rollup_tables(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    SQLiteLogStore(url).close()
    conn = sqlite3.connect(tmp_path / "old.db")
    conn.execute("DROP TABLE usage_rollup_1m")
    conn.execute("DROP TABLE usage_rollup_1h")
    conn.execute("PRAGMA user_version = 3")
    conn.commit()
    conn.close()
    store = SQLiteLogStore(url)
    store.write_many(records(10))
    store.close()
    conn = sqlite3.connect(tmp_path / "old.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
    assert conn.execute("SELECT SUM(requests) FROM usage_rollup_1h").fetchone()[0] == 10
    conn.close()


def test_the_postgres_migration_matches_the_code() -> None:
    """The migration freezes the columns the code writes (bucket bounds included): a change to the
    histogram bounds needs a new migration, and this test says so."""
    sql = resources.files("relaygate.migrations").joinpath("postgres/0006_usage_rollups.sql").read_text()
    for table in rollup.ROLLUP_TABLES:
        for index in table.index_ddl():
            assert index + ";" in sql
        ddl = table.ddl(integer="bigint", real="double precision")
        assert ddl.replace("CREATE TABLE IF NOT EXISTS", "CREATE TABLE") + ";" in sql


def test_the_writer_skips_rollups_when_switched_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAYGATE_ROLLUPS", "off")
    store = SQLiteLogStore(f"sqlite:///{tmp_path / 'log.db'}")
    store.write_many(records(20))
    assert store._read_conn.execute("SELECT COUNT(*) FROM usage_rollup_1m").fetchone()[0] == 0
    assert store._read_conn.execute("SELECT COUNT(*) FROM request_logs").fetchone()[0] == 20
    store.close()


def test_purge_deletes_whole_buckets_before_the_cutoff(store: Any) -> None:
    assert isinstance(store, UsageStore)
    old = records(50, seed=1, start=NOW - 10 * 86400, span=HOUR)
    recent = records(50, seed=2, start=NOW - 2 * HOUR, span=HOUR)
    store.write_many(old + recent)
    assert store.purge_rollups("1m", NOW - 7 * 86400) > 0
    assert sum(r["requests"] for r in _table(store, "usage_rollup_1m")) == 50
    assert sum(r["requests"] for r in _table(store, "usage_rollup_1h")) == 100  # its own retention
    assert store.purge_rollups("1h", NOW - 7 * 86400, batch=2) > 0
    assert sum(r["requests"] for r in _table(store, "usage_rollup_1h")) == 50
    assert store.purge_rollups("1m", NOW - 7 * 86400) == 0


GATEWAY = """
type: provider-account/mock
name: mock
integrations:
  - name: echo
    type: integration/model/mock
    model_id: echo-1
    model_types: [chat]
"""


def test_the_gateway_purges_each_rollup_table_on_its_own_retention(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(GATEWAY, start=False)
    gateway.serve_args = ["--rollup-1m-retention-days", "3", "--rollup-1h-retention-days", "20"]
    seeded = SQLiteLogStore(gateway.database_url)
    seeded.write_many(records(30, seed=3, start=NOW - 10 * 86400, span=HOUR))  # past 3 days, within 20
    seeded.write_many(records(30, seed=4, start=NOW - 30 * 86400, span=HOUR))  # past both
    seeded.close()
    gateway.start()
    conn = sqlite3.connect(gateway.db_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        minutes = conn.execute("SELECT COALESCE(SUM(requests), 0) FROM usage_rollup_1m").fetchone()[0]
        hours = conn.execute("SELECT COALESCE(SUM(requests), 0) FROM usage_rollup_1h").fetchone()[0]
        if (minutes, hours) == (0, 30):
            break
        time.sleep(0.1)
    conn.close()
    assert (minutes, hours) == (0, 30)


@pytest.mark.parametrize(
    ("query", "scoped", "table"),
    [
        ({"group_by": ["model"]}, False, "usage_rollup_1h_model"),
        (
            {"group_by": ["endpoint"], "filters": [{"field": "status_class", "op": "eq", "value": "5xx"}]},
            False,
            "usage_rollup_1h_model",
        ),
        ({"group_by": ["user"]}, False, "usage_rollup_1h_identity"),
        ({"group_by": ["team"]}, True, "usage_rollup_1h_identity"),
        ({"group_by": ["model"]}, True, "usage_rollup_1h"),
        ({"group_by": ["metadata.app"]}, False, "usage_rollup_1h"),
        ({"group_by": ["user", "model"]}, False, "usage_rollup_1h"),
        ({}, False, "usage_rollup_1h_model"),
    ],
)
def test_a_query_reads_the_narrowest_table_that_has_its_dimensions(
    query: dict[str, Any], scoped: bool, table: str
) -> None:
    scope = usage.Scope("user:a@x.com", ("ml",)) if scoped else None
    plan = usage.plan_usage(
        {**query, "type": "distribution", "start": START, "end": NOW}, now=NOW, rolled_metadata=("app",), scope=scope
    )
    assert plan.table == table
    minute = usage.plan_usage(
        {**query, "type": "timeseries", "interval": "5m", "start": START, "end": NOW},
        now=NOW,
        rolled_metadata=("app",),
        scope=scope,
    )
    assert minute.table == table.replace("_1h", "_1m")
