"""The usage API through HTTP: real requests through the mock model, then /usage/query, its CSV export
and /me/usage answer what the log rows say (top-N with an exact `other`, roles, precise 400s)."""

from __future__ import annotations

import csv
import io
import json
import time
from collections import Counter, defaultdict
from typing import Any

import pytest

from tests.conftest import GatewayFactory
from tests.helpers.gateway import GatewayHandle

CONFIG = """
type: provider-account/mock
name: mock
integrations:
  - name: echo
    type: integration/model/mock
    model_id: echo-1
    model_types: [chat]
    cost: {input_per_million_tokens: 10000, output_per_million_tokens: 20000}
  - name: other
    type: integration/model/mock
    model_id: echo-2
    model_types: [chat]
---
type: team
name: ml
members: [bob@example.com, carol@example.com]
---
type: team
name: sre
members: [sam@example.com]
---
type: gateway-admin-config
admins: [user:alice@example.com]
viewers: [team:sre]
---
type: gateway-observability-config
name: observability
metrics:
  labels:
    metadata: [app]
"""
HELLO = [{"role": "user", "content": "hello there"}]
QUERY = "/api/admin/v1/usage/query"


class Traffic:
    def __init__(self, gateway: GatewayHandle) -> None:
        self.gateway = gateway
        self.tokens = {
            name: gateway.create_token(user=f"{name}@example.com") for name in ("alice", "bob", "carol", "dave", "sam")
        }
        self.start = time.time() - 1

    def send(self, user: str, model: str, app: str | None = None, env: str | None = None, n: int = 1) -> None:
        meta = {k: v for k, v in (("app", app), ("env", env)) if v is not None}
        headers = {"x-tfy-metadata": json.dumps(meta)} if meta else {}
        for _ in range(n):
            answer = self.gateway.request(
                "POST",
                "/api/llm/v1/chat/completions",
                token=self.tokens[user],
                json={"model": model, "messages": HELLO},
                headers=headers,
            )
            assert answer.status in (200, 404), answer.body

    def rows(self, count: int) -> list[dict[str, Any]]:
        rows = self.gateway.wait_for_logs(count)
        assert len(rows) == count
        return rows

    def query(self, token: str | None = None, path: str = QUERY, **body: Any) -> dict[str, Any]:
        body.setdefault("start", self.start)
        body.setdefault("end", time.time() + 1)
        answer = self.gateway.request("POST", path, token=token or self.tokens["alice"], json=body)
        assert answer.status == 200, answer.body
        return answer.json()  # type: ignore[no-any-return]


@pytest.fixture
def traffic(gateway_factory: GatewayFactory) -> Traffic:
    traffic = Traffic(gateway_factory(CONFIG))
    traffic.send("alice", "mock/echo", app="chat", env="prod", n=3)
    traffic.send("bob", "mock/other", app="search", n=2)
    traffic.send("carol", "mock/echo", app="search", env="dev")
    traffic.send("dave", "mock/missing")  # 404: an error row
    traffic.rows(7)
    return traffic


def _expected(rows: list[dict[str, Any]], key: str) -> dict[Any, dict[str, Any]]:
    out: dict[Any, dict[str, Any]] = defaultdict(lambda: Counter())
    for row in rows:
        if key == "model":
            group = row["resolved_model"] or row["requested_model"]
        elif key == "user":
            group = row["subject"]
        else:
            group = row["metadata"].get(key.removeprefix("metadata."))
        acc = out[group]
        acc["requests"] += 1
        acc["errors"] += row["status"] >= 400
        acc["input_tokens"] += row["input_tokens"] or 0
        acc["output_tokens"] += row["output_tokens"] or 0
        acc["cost_usd"] += row["cost_usd"] or 0.0
    return out


AGGS = ["requests", "errors", "input_tokens", "output_tokens", "cost_usd", "latency_p50", "latency_p99", "ttft_p50"]


@pytest.mark.parametrize("dimension", ["model", "user", "metadata.app"])
def test_a_distribution_matches_the_log_rows(traffic: Traffic, dimension: str) -> None:
    rows = traffic.rows(7)
    answer = traffic.query(type="distribution", group_by=[dimension], aggregations=AGGS)
    assert answer["source"] in ("rollup_1m", "rollup_1h")
    assert answer["other"] is None
    got = {point["group"][dimension]: point for point in answer["points"]}
    expected = _expected(rows, dimension)
    assert set(got) == set(expected)
    for group, sums in expected.items():
        for name in ("requests", "errors", "input_tokens", "output_tokens"):
            assert got[group][name] == sums[name], (group, name)
        assert got[group]["cost_usd"] == pytest.approx(sums["cost_usd"])
        assert got[group]["latency_p50"] is not None and got[group]["latency_p50"] > 0
    assert [p["requests"] for p in answer["points"]] == sorted((p["requests"] for p in answer["points"]), reverse=True)
    assert answer["totals"]["requests"] == 7 and answer["totals"]["errors"] == 1
    assert got.get("mock/echo", {}).get("cost_usd", 0) > 0 or dimension != "model"


def test_a_timeseries_by_endpoint_and_status_class(traffic: Traffic) -> None:
    answer = traffic.query(
        type="timeseries", interval="1m", group_by=["endpoint", "status_class"], aggregations=["requests", "errors"]
    )
    assert answer["source"] == "rollup_1m"
    by_group: Counter[tuple[str, str]] = Counter()
    for point in answer["points"]:
        assert point["ts"] % 60 == 0
        by_group[(point["group"]["endpoint"], point["group"]["status_class"])] += point["requests"]
    assert by_group == {("chat/completions", "2xx"): 6, ("chat/completions", "4xx"): 1}


def test_top_n_folds_the_rest_into_other_exactly(traffic: Traffic) -> None:
    full = traffic.query(type="distribution", group_by=["user"], aggregations=AGGS, limit=1000)
    top = traffic.query(type="distribution", group_by=["user"], aggregations=AGGS, limit=2)
    assert [p["group"] for p in top["points"]] == [p["group"] for p in full["points"][:2]]
    assert top["points"][0]["group"] == {"user": "user:alice@example.com"}
    other = top["other"]
    assert other["groups"] == len(full["points"]) - 2 == 2
    for name in ("requests", "errors", "input_tokens", "output_tokens"):
        assert other[name] == sum(p[name] for p in full["points"][2:])
        assert other[name] + sum(p[name] for p in top["points"]) == full["totals"][name]
    assert other["cost_usd"] == pytest.approx(sum(p["cost_usd"] for p in full["points"][2:]))
    # A timeseries folds per point too.
    series = traffic.query(type="timeseries", interval="1h", group_by=["user"], aggregations=["requests"], limit=1)
    assert sum(p["requests"] for p in series["points"]) == 3
    assert sum(p["requests"] for p in series["other"]["points"]) == 4


def test_filters(traffic: Traffic) -> None:
    def total(*filters: dict[str, Any]) -> int:
        answer = traffic.query(type="distribution", aggregations=["requests"], filters=list(filters))
        return int(answer["totals"]["requests"])

    assert total({"field": "model", "op": "eq", "value": "mock/echo"}) == 4
    assert total({"field": "user", "op": "eq", "value": "bob@example.com"}) == 2
    assert total({"field": "user", "op": "in", "value": ["bob@example.com", "user:carol@example.com"]}) == 3
    assert total({"field": "model", "op": "ne", "value": "mock/echo"}) == 3
    assert total({"field": "metadata.app", "op": "not_in", "value": ["chat"]}) == 4
    assert total({"field": "metadata.app", "op": "is_null", "value": True}) == 1
    assert total({"field": "error_type", "op": "is_null", "value": False}) == 1
    assert total({"field": "team", "op": "eq", "value": "ml"}) == 3


def test_an_unlisted_metadata_key_is_answered_by_a_raw_scan(traffic: Traffic) -> None:
    answer = traffic.query(type="distribution", group_by=["metadata.env"], aggregations=["requests"])
    assert answer["source"] == "raw"
    assert {p["group"]["metadata.env"]: p["requests"] for p in answer["points"]} == {None: 3, "prod": 3, "dev": 1}
    assert traffic.query(type="timeseries", interval="10s", aggregations=["requests"])["source"] == "raw"


def test_a_user_sees_only_their_own_and_their_teams_usage(traffic: Traffic) -> None:
    bob = traffic.tokens["bob"]
    mine = traffic.query(bob, "/api/admin/v1/me/usage", type="distribution", group_by=["user"])
    users = {p["group"]["user"]: p["requests"] for p in mine["points"]}
    assert users == {"user:bob@example.com": 2, "user:carol@example.com": 1}  # carol: team ml
    sneaky = traffic.query(
        bob, "/api/admin/v1/me/usage", type="distribution", filters=[{"field": "user", "op": "eq", "value": "alice"}]
    )
    assert sneaky["totals"]["requests"] == 0 and sneaky["points"] == []
    dave = traffic.query(traffic.tokens["dave"], "/api/admin/v1/me/usage", type="distribution", group_by=["model"])
    assert [(p["group"], p["requests"], p["errors"]) for p in dave["points"]] == [({"model": "mock/missing"}, 1, 1)]
    answer = traffic.gateway.request("POST", QUERY, token=bob, json={})
    assert answer.status == 403
    viewer = traffic.query(traffic.tokens["sam"], type="distribution")
    assert viewer["totals"]["requests"] == 7


def test_the_csv_export(traffic: Traffic) -> None:
    path = (
        f"/api/admin/v1/usage/export.csv?type=distribution&group_by=user&aggregations=requests,cost_usd"
        f"&limit=2&start={traffic.start}"
    )
    answer = traffic.gateway.request("GET", path, token=traffic.tokens["sam"])
    assert answer.status == 200, answer.body
    assert answer.headers["content-type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(answer.body.decode())))
    assert table[0] == ["user", "requests", "cost_usd"]
    assert table[1][:2] == ["user:alice@example.com", "3"]
    assert table[-1][:2] == ["(other)", "2"]
    assert sum(int(row[1]) for row in table[1:]) == 7
    assert traffic.gateway.request("GET", path, token=traffic.tokens["bob"]).status == 403


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"group_by": ["colour"]}, "group_by"),
        ({"aggregations": ["latency_p42"]}, "aggregations"),
        ({"interval": "7m"}, "interval"),
        ({"type": "pie"}, "type"),
        ({"start": 2000, "end": 1000}, "end"),
        ({"start": 0, "end": 401 * 86400}, "start"),
        ({"start": "yesterday"}, "start"),
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"filters": [{"field": "model", "op": "like", "value": "x"}]}, "filters[0].op"),
        ({"filters": [{"field": "model", "op": "in", "value": "x"}]}, "filters[0].value"),
        ({"type": "timeseries", "interval": "1m", "start": 0, "end": 100 * 86400}, "interval"),
        ({"aggregations": [{"x": 1}]}, "aggregations"),
        ({"interval": ["1h"]}, "interval"),
        ({"type": {"a": 1}}, "type"),
        ({"group_by": [1]}, "group_by"),
        ({"filters": [{"field": ["model"], "op": "eq"}]}, "filters[0].field"),
        ({"start": [1]}, "start"),
    ],
)
def test_bad_queries_are_precise_400s(gateway_factory: GatewayFactory, body: dict[str, Any], param: str) -> None:
    gateway = gateway_factory(CONFIG)
    alice = gateway.create_token(user="alice@example.com")
    answer = gateway.request("POST", QUERY, token=alice, json=body)
    assert answer.status == 400, answer.body
    assert answer.json()["error"]["param"] == param
