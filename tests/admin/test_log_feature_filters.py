"""The `cache` and `guardrail_result` log filters: on SQLite and PostgreSQL stores (and the live tail's
in-memory `LogFilter.matches`, which must agree with the SQL), and through `GET /logs` on rows that
real cached, blocked and flagged requests wrote. Also the store's opt-in bodies for search pages."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from relaygate.observe.record import LogRecord
from relaygate.observe.store.base import LogStore
from relaygate.observe.store.search import CACHE_STATUSES, GUARDRAIL_RESULTS, LogFilter
from relaygate.observe.store.sqlite import SQLiteLogStore
from tests.admin.admin_config import ADMIN, CONFIG, USER, start
from tests.admin.guardrails_config import CACHE, EMAIL, GUARDRAILS, SECRET
from tests.conftest import GatewayFactory
from tests.helpers.log_records import log_record


@pytest.fixture(params=["sqlite", "postgres"])
def log_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LogStore]:
    if request.param == "sqlite":
        store: LogStore = SQLiteLogStore(f"sqlite:///{tmp_path / 'relaygate.db'}")
    else:
        from relaygate.observe.store.postgres import PostgresLogStore

        store = PostgresLogStore(str(request.getfixturevalue("pg_url")))
    yield store
    store.close()


def _verdicts(*results: str) -> list[dict[str, Any]]:
    return [
        {"name": f"g/{i}", "stage": "input", "result": r, "latency_ms": 0.1, "reason": ""}
        for i, r in enumerate(results)
    ]


EXTRAS: list[dict[str, Any]] = [
    {"cache": {"status": "hit", "rule": "r", "key_prefix": "abc"}},
    {"cache": {"status": "miss", "rule": "r"}, "guardrails": _verdicts("pass", "block")},
    {"guardrails": _verdicts("flag")},
    {},
    {"cache": {"status": "bypass", "reason": "endpoint is not cached"}, "guardrails": _verdicts("mutate", "pass")},
    {"cache": "hit", "guardrails": {"result": "block"}},  # odd shapes match nothing
    {"routing": {"strategy": "weight"}, "guardrails": _verdicts("error", "skipped")},
]


def _records() -> list[LogRecord]:
    return [
        log_record(i, extra=extra, request_body=b'{"n": %d}' % i if i % 2 else None) for i, extra in enumerate(EXTRAS)
    ]


@pytest.mark.parametrize("cache", [None, *CACHE_STATUSES])
@pytest.mark.parametrize("guardrail_result", [None, *GUARDRAIL_RESULTS])
def test_store_filters_agree_with_the_live_tail_filter(
    log_store: LogStore, cache: str | None, guardrail_result: str | None
) -> None:
    records = _records()
    log_store.write_many(records)
    flt = LogFilter(cache=cache, guardrail_result=guardrail_result)
    found = {row["request_id"] for row in log_store.search(flt, None, 100)}
    assert found == {r.request_id for r in records if flt.matches(r)}


def test_store_filters_pick_the_expected_rows(log_store: LogStore) -> None:
    log_store.write_many(_records())

    def ids(**filters: Any) -> list[str]:
        return sorted(row["request_id"] for row in log_store.search(LogFilter(**filters), None, 100))

    assert ids(cache="hit") == ["req-0"]
    assert ids(cache="miss") == ["req-1"]
    assert ids(guardrail_result="block") == ["req-1"]
    assert ids(guardrail_result="pass") == ["req-1", "req-4"]
    assert ids(guardrail_result="error") == ids(guardrail_result="skipped") == ["req-6"]
    assert ids(cache="bypass", guardrail_result="mutate") == ["req-4"]
    assert ids(cache="miss", guardrail_result="flag") == []
    assert ids(cache="hit", subjects=("user:alice@x.com",), start=1_700_000_000.0) == ["req-0"]


def test_search_returns_bodies_only_when_asked(log_store: LogStore) -> None:
    log_store.write_many(_records())
    plain = log_store.search(LogFilter(), None, 100)
    assert all("request_body" not in row for row in plain)
    full = {row["request_id"]: row for row in log_store.search(LogFilter(), None, 100, bodies=True)}
    assert full["req-1"]["request_body"] == '{"n": 1}' and full["req-0"]["request_body"] is None
    assert full["req-1"]["has_bodies"] is True and "response_body" in full["req-1"]
    page = log_store.search(LogFilter(guardrail_result="pass"), (1_700_000_004.0, 10**9), 1, bodies=True)
    assert [row["request_id"] for row in page] == ["req-4"]


def test_get_logs_filters_rows_of_real_cached_blocked_and_flagged_requests(gateway_factory: GatewayFactory) -> None:
    gateway = start(gateway_factory, CONFIG + GUARDRAILS + CACHE)
    alice, bob = gateway.create_token(user=ADMIN), gateway.create_token(user=USER)

    def chat(token: str, text: str) -> str:
        answer = gateway.request(
            "POST",
            "/api/llm/chat/completions",
            token=token,
            json={"model": "mock/echo", "messages": [{"role": "user", "content": text}]},
            headers={"x-tfy-cache-config": '{"type": "exact-match"}'},
        )
        return str(answer.headers["x-request-id"])

    miss = chat(bob, "cache this filter question")
    time.sleep(0.2)  # the entry is written after the answer
    hit = chat(bob, "cache this filter question")
    blocked = chat(bob, f"my key is {SECRET}")
    flagged = chat(alice, "a watchlist word")
    masked = chat(alice, f"write to {EMAIL}")

    def ids(token: str, path: str = "/logs", **params: str) -> set[str]:
        deadline = time.monotonic() + 5
        while True:
            answer = gateway.request("GET", f"/api/admin/v1{path}?{urlencode(params)}", token=token)
            assert answer.status == 200, answer.body
            rows = answer.json()["data"]
            if len(gateway.request("GET", "/api/admin/v1/logs", token=alice).json()["data"]) >= 5:
                return {r["request_id"] for r in rows}
            assert time.monotonic() < deadline
            time.sleep(0.05)

    assert ids(alice, cache="hit") == {hit}
    assert ids(alice, cache="miss") == {miss, flagged, masked}  # a blocked request never reaches the cache
    assert ids(alice, guardrail_result="block") == {blocked}
    assert ids(alice, guardrail_result="flag") == {flagged}
    assert ids(alice, guardrail_result="mutate") == {masked}
    assert ids(alice, guardrail_result="pass") == {miss, hit, blocked, flagged, masked}
    assert ids(alice, cache="hit", guardrail_result="pass") == {hit}  # input guardrails run on a hit too
    assert ids(bob, guardrail_result="flag") == set()  # a user's filters only narrow their own rows
    assert ids(bob, "/me/logs", cache="hit") == {hit}
    for bad in ({"cache": "warm"}, {"guardrail_result": "allow"}):
        answer = gateway.request("GET", f"/api/admin/v1/logs?{urlencode(bad)}", token=alice)
        assert answer.status == 400 and answer.json()["error"]["param"] == next(iter(bad))
    assert ids(alice, cache="HIT") == {hit}
    row = json.loads(gateway.request("GET", "/api/admin/v1/logs?cache=hit", token=alice).body)["data"][0]
    assert row["extra"]["cache"]["original_request_id"] == miss
