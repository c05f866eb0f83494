"""examples/observability/ stays true to what `GET /metrics` exports, and works with a real Prometheus.

- Every metric an alert rule or a dashboard panel queries, and every label it matches or groups by,
  is exported by a running gateway after a mixed load (chat, stream, errors, a fallback, a cooldown,
  a budget denial), with identity labels on as the dashboard's README asks.
- `promtool` checks the config and the rules, and unit-tests every alert on synthetic series (each
  fires on the failure it describes, none fires on healthy traffic).
- Debian's `prometheus` scrapes a gateway through the example config and counts exactly the requests
  sent; it loads and evaluates every rule without error and parses every dashboard query.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml

from relaygate.config.compile import compile_manifests
from relaygate.config.loader import load_path
from tests.conftest import GatewayFactory
from tests.helpers import manifests
from tests.helpers.gateway import REPO_ROOT, GatewayHandle, free_port, http_request
from tests.helpers.prometheus import Scrape, scrape
from tests.observe.test_request_metrics import VIRTUAL
from tests.upstreams.openai_mock import OpenAIMock

OBSERVABILITY = REPO_ROOT / "examples" / "observability"
ALERTS = OBSERVABILITY / "alerts.yml"
PROMETHEUS_CONFIG = OBSERVABILITY / "prometheus.yml"
DASHBOARD = OBSERVABILITY / "grafana-dashboard.json"
README = OBSERVABILITY / "README.md"

HELLO = [{"role": "user", "content": "hello metrics"}]
PRICED = "openai-main/gpt-4o-priced"

# ------------------------------------------------------------------------------------------------
# PromQL: the metric names and label names an expression uses.

_AGGREGATIONS = frozenset(
    "sum min max avg group stddev stdvar count count_values bottomk topk quantile limitk limit_ratio".split()
)
_FUNCTIONS = frozenset(
    """abs absent absent_over_time acos acosh asin asinh atan atanh avg_over_time ceil changes clamp
    clamp_max clamp_min cos cosh count_over_time day_of_month day_of_week day_of_year days_in_month
    deg delta deriv exp floor histogram_avg histogram_count histogram_fraction histogram_quantile
    histogram_stddev histogram_stdvar histogram_sum holt_winters hour idelta increase irate
    label_join label_replace last_over_time ln log10 log2 mad_over_time max_over_time min_over_time
    minute month pi predict_linear present_over_time quantile_over_time rad rate resets round scalar
    sgn sin sinh sort sort_by_label sort_by_label_desc sort_desc sqrt stddev_over_time
    stdvar_over_time sum_over_time tan tanh time timestamp vector year""".split()
)
_KEYWORDS = frozenset("by without on ignoring group_left group_right and or unless offset bool inf nan".split())
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_SELECTOR = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*\{([^{}]*)\}")
_MATCHER = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
_TOKEN = re.compile(r"(?P<number>\d[\w.]*)|(?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)|(?P<variable>\$\{?\w+\}?)")
# Labels Prometheus itself attaches to every scraped series (target labels), and `le` of histograms.
_TARGET_LABELS = frozenset({"job", "instance"})


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str
    value: str


@dataclass
class Query:
    """What one PromQL expression reads."""

    metrics: set[str]
    matchers: dict[str, list[Matcher]]  # metric -> its selector's label matchers
    grouping: set[str]  # labels in by / without / on / ignoring / group_left / group_right


def parse_promql(expr: str) -> Query:
    """The metric names, selector matchers and grouping labels of `expr` (PromQL, Grafana `$vars` allowed).

    Strings, `{...}` matchers, `[...]` ranges and the label lists of grouping clauses are removed
    first; of what is left, an identifier is a metric name unless it is a keyword, an aggregation
    operator or a function (a name followed by `(`: it must be a known PromQL function, so a typo
    fails instead of passing as a metric)."""
    matchers: dict[str, list[Matcher]] = {}
    for name, body in _SELECTOR.findall(expr):
        found = [Matcher(label, op, value) for label, op, value in _MATCHER.findall(body)]
        leftover = _MATCHER.sub("", body).replace(",", "").strip()
        assert not leftover, f"unparsed matcher text {leftover!r} in {expr!r}"
        matchers.setdefault(name, []).extend(found)
    grouping = {label.strip() for _, labels in _GROUPING.findall(expr) for label in labels.split(",") if label.strip()}
    text = _STRING.sub(" ", expr)
    text = re.sub(r"\{[^{}]*\}", " ", text)
    text = re.sub(r"\[[^\[\]]*\]", " ", text)
    text = _GROUPING.sub(r" \1 ", text)
    metrics: set[str] = set()
    for match in _TOKEN.finditer(text):
        name = match.group("ident")
        if name is None:
            continue
        rest = text[match.end() :].lstrip()
        if name in _KEYWORDS:  # `by`, `on`, ... (their label lists are gone), `and`, `offset`, `bool`
            continue
        if rest.startswith("("):
            assert name in _FUNCTIONS or name in _AGGREGATIONS, f"unknown PromQL function {name!r} in {expr!r}"
        elif name in _AGGREGATIONS:  # `sum by (...) (...)`
            continue
        else:
            assert not rest or rest[0] in ")," or rest[0] in "+-*/%^=!<>" or re.match(r"[A-Za-z_]", rest), (
                f"{name!r} followed by {rest[:10]!r} in {expr!r}"
            )
            metrics.add(name)
    assert set(matchers) <= metrics, (set(matchers), metrics, expr)
    return Query(metrics, matchers, grouping)


@pytest.mark.parametrize(
    ("expr", "metrics", "grouping"),
    [
        ('up{job="relaygate"} == 0', {"up"}, set()),
        (
            'histogram_quantile(0.99, sum by (job, route, le) (rate(a_seconds_bucket{status_class="2xx"}[5m]))) > 30',
            {"a_seconds_bucket"},
            {"job", "route", "le"},
        ),
        (
            'sum by (error_type) (rate(x_total{job=~"$job",error_type!=""}[$__rate_interval])) '
            '/ ignoring (error_type) group_left sum(rate(x_total{job=~"$job"}[$__rate_interval]))',
            {"x_total"},
            {"error_type"},
        ),
        (
            "max by(job,target)(max_over_time(g[5m] offset 1m)) > bool 0 and on (job) count without (instance) (h)",
            {"g", "h"},
            {"job", "target", "instance"},
        ),
        ('topk(10, sum by (user) (increase(c_total{user!=""}[$__range]))) * 3600', {"c_total"}, {"user"}),
        ('label_replace(m, "dst", "$1", "src", "(.*)") or job:rate5m:sum', {"m", "job:rate5m:sum"}, set()),
        ("sum(rate(by_route_total[1m])) / sum(rate(total[1m:10s]))", {"by_route_total", "total"}, set()),
    ],
)
def test_promql_names_are_extracted_exactly(expr: str, metrics: set[str], grouping: set[str]) -> None:
    query = parse_promql(expr)
    assert query.metrics == metrics
    assert query.grouping == grouping


def test_an_unknown_function_is_not_taken_for_a_metric() -> None:
    with pytest.raises(AssertionError, match="unknown PromQL function 'rates'"):
        parse_promql("sum(rates(x_total[5m]))")


# ------------------------------------------------------------------------------------------------
# The example files.


def _alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def _dashboard() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return dashboard


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # a collapsed row holds its panels


def _dashboard_exprs(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expr) of every query target."""
    return [(p["title"], t["expr"]) for p in _panels(dashboard) for t in p.get("targets", [])]


def _variable_metrics(dashboard: dict[str, Any]) -> dict[str, str]:
    """Query variables' `label_values(metric{...}, label)`: variable name -> metric."""
    found = {}
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            definition = variable["definition"]
            match = re.fullmatch(r"label_values\(([A-Za-z_:][A-Za-z0-9_:]*)(\{[^}]*\})?,\s*(\w+)\)", definition)
            assert match, definition
            found[variable["name"]] = match.group(1)
    return found


def _grafana_to_promql(expr: str) -> str:
    """A dashboard query as Grafana sends it: its variables replaced."""
    for variable, value in (("$__rate_interval", "1m"), ("$__range", "5m"), ("$__interval", "15s")):
        expr = expr.replace(variable, value)
    return re.sub(r"\$\{?(job|instance)\}?", ".*", expr)


def test_the_dashboard_is_a_grafana_dashboard_with_a_prometheus_datasource_variable() -> None:
    dashboard = _dashboard()
    assert 36 <= dashboard["schemaVersion"] <= 41
    assert dashboard["uid"] and dashboard["title"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in _panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    titles = set()
    for panel in _panels(dashboard):
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]), panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        titles.add(panel["title"])
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel.get("description"), panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"], panel["title"]
            used = set(re.findall(r"\$\{?(\w+)\}?", target["expr"]))
            assert used <= set(variables) | {"__rate_interval", "__range", "__interval"}, (panel["title"], used)
    # What the brief promises, panel by panel.
    for title in (
        "Requests/s by route and status class",
        "Error rate by error_type",
        "Request duration p50 / p95 / p99",
        "GenAI operation duration p50 / p95 / p99",
        "Time to first chunk p50 / p95 / p99",
        "Tokens/s by model and type",
        "Cost by model (USD/hour)",
        "Top users by cost",
        "Top teams by cost",
        "Cooldowns started",
        "Cooled-down targets",
        "Request-log rows",
    ):
        assert title in titles, title
    by_title = {p["title"]: p for p in _panels(dashboard)}
    for title in ("Top users by cost", "Top teams by cost"):
        assert "gateway-observability-config" in by_title[title]["description"], title


def test_the_alert_rules_cover_what_operators_need() -> None:
    rules = {rule["alert"]: rule for rule in _alert_rules()}
    wanted = {
        "RelaygateHighErrorRate": "relaygate_requests_total",
        "RelaygateHighLatencyP99": "relaygate_request_duration_seconds_bucket",
        "RelaygateBudgetExhausted": "relaygate_limits_decisions_total",
        "RelaygateBudgetNearLimit": "relaygate_limit_usage_ratio",
        "RelaygateLogRowsDropped": "relaygate_log_rows_dropped_total",
        "RelaygateConfigReloadRefused": "relaygate_config_reload_failures_total",
        "RelaygateTargetCooledDown": "relaygate_target_cooled_down",
    }
    for alert, metric in wanted.items():
        assert metric in parse_promql(rules[alert]["expr"]).metrics, alert
    for rule in rules.values():
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]


def test_the_readme_observability_config_compiles(tmp_path: Path) -> None:
    """The `gateway-observability-config` the README shows turns the dashboard's identity labels on."""
    blocks = re.findall(r"```yaml\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) == 1
    (tmp_path / "observability.yaml").write_text(blocks[0])
    (tmp_path / "mock.yaml").write_text(manifests.MOCK_ONLY)
    snapshot = compile_manifests(load_path(tmp_path))
    assert snapshot.observability.identity_labels == ("user", "team")
    assert "user" in snapshot.observability.extra_labels and "team" in snapshot.observability.extra_labels


# ------------------------------------------------------------------------------------------------
# Every queried metric and label against a running gateway.

# Identity labels on (the dashboard's top users/teams), and a tiny budget to run out of.
OBSERVED = """\
type: gateway-observability-config
name: observability
metrics:
  labels:
    identity: [user, team]
    metadata: [app]
---
type: provider-account/mock
name: mock-priced
integrations:
  - name: echo
    type: integration/model/mock
    model_id: echo-priced
    model_types: [chat]
    cost: {input_per_million_tokens: 10000, output_per_million_tokens: 10000}
---
type: gateway-budget-config
name: tiny-budget
rules:
  - id: priced-echo-daily
    when: {models: [mock-priced/echo]}
    limit_to: 0.2
    unit: cost_per_day
    budget_applies_per: [user]
"""


def _drive_every_kind_of_request(gateway: GatewayHandle, upstream: OpenAIMock) -> int:
    """Answers, a stream, an embedding, 401, an upstream 500, fallbacks (and so a cooldown), a budget
    refusal; how many requests."""
    alice = gateway.create_token(user=manifests.ALICE)
    client = gateway.client(alice, max_retries=0, default_headers={"x-tfy-metadata": '{"app": "dashboards"}'})
    for _ in range(2):
        client.chat.completions.create(model=PRICED, messages=HELLO)
    chunks = list(client.chat.completions.create(model=PRICED, messages=HELLO, stream=True))
    assert chunks
    client.embeddings.create(model="openai-main/embed", input="vector me")
    assert gateway.request("POST", "/api/llm/chat/completions", token="rg-bogus-token", json={}).status == 401
    upstream.fail_next(500)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="openai-main/gpt-4o", messages=HELLO)
    for _ in range(2):  # falls back from the unreachable target, which then cools down
        client.chat.completions.create(model="vms/fallback", messages=HELLO)
    for sent in range(9, 29):  # until the $0.20 budget refuses
        try:
            client.chat.completions.create(model="mock-priced/echo", messages=HELLO, max_tokens=5)
        except openai.RateLimitError as refused:
            assert refused.code == "budget_exceeded"
            return sent
    raise AssertionError("the budget never refused")


@pytest.fixture
def loaded_scrape(gateway_factory: GatewayFactory, openai_upstream: OpenAIMock, vllm_upstream: OpenAIMock) -> Scrape:
    gateway = gateway_factory(
        "---\n".join([manifests.STANDARD, VIRTUAL, OBSERVED]),
        port=openai_upstream.port,
        vllm_port=vllm_upstream.port,
        closed_port=free_port(),
    )
    sent = _drive_every_kind_of_request(gateway, openai_upstream)
    deadline = time.monotonic() + 10
    while True:  # every request finished and recorded
        metrics = scrape(gateway.url)
        if metrics.total("relaygate_requests_total") == sent or time.monotonic() > deadline:
            assert metrics.total("relaygate_requests_total") == sent
            return metrics
        time.sleep(0.05)


def _check_query(where: str, query: Query, metrics: Scrape, problems: list[str]) -> None:
    labels_of: dict[str, set[str]] = {}
    for name in sorted(query.metrics):
        samples = metrics.select(name)
        if name == "up":  # written by Prometheus for each scrape, not by the gateway
            labels_of[name] = set()
            continue
        if not samples:
            problems.append(f"{where}: {name} is not exported (or has no series after the load)")
            continue
        labels_of[name] = {label for s in samples for label in s.labels}
        for matcher in query.matchers.get(name, []):
            if matcher.label in _TARGET_LABELS:
                continue
            if matcher.label not in labels_of[name]:
                problems.append(f"{where}: {name} has no label {matcher.label!r}")
            elif matcher.op == "=" and matcher.value not in {s.labels[matcher.label] for s in samples}:
                problems.append(f"{where}: no series of {name} has {matcher.label}={matcher.value!r}")
    known = set().union(*labels_of.values()) | _TARGET_LABELS
    for label in sorted(query.grouping - known):
        problems.append(f"{where}: groups by {label!r}, a label none of {sorted(query.metrics)} has")


def test_every_queried_metric_and_label_is_exported(loaded_scrape: Scrape) -> None:
    problems: list[str] = []
    for rule in _alert_rules():
        _check_query(f"alert {rule['alert']}", parse_promql(rule["expr"]), loaded_scrape, problems)
    dashboard = _dashboard()
    for title, expr in _dashboard_exprs(dashboard):
        _check_query(f"panel {title!r}", parse_promql(expr), loaded_scrape, problems)
    for variable, metric in _variable_metrics(dashboard).items():
        if not loaded_scrape.select(metric):
            problems.append(f"variable {variable}: {metric} is not exported")
    assert not problems, "\n".join(problems)
    # The load reached the series the alerts watch: a 5xx, a budget denial, a cooled-down target.
    assert loaded_scrape.total("relaygate_requests_total", status_class="5xx") == 1
    assert loaded_scrape.total("relaygate_limits_decisions_total", kind="budget", decision="deny") == 1
    assert loaded_scrape.total("relaygate_target_cooled_down", target="unreachable/gpt-4o") == 1
    assert loaded_scrape.label_values("relaygate_cost_usd_total", "user") == {manifests.ALICE}
    assert loaded_scrape.label_values("relaygate_cost_usd_total", "team") == {"ml-team"}


# ------------------------------------------------------------------------------------------------
# promtool: syntax, and each alert firing on the failure it describes.


def _promtool() -> str:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    return promtool


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False, cwd=cwd)


def test_promtool_accepts_the_config_and_the_rules() -> None:
    promtool = _promtool()
    rules = _run(promtool, "check", "rules", str(ALERTS))
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert f"SUCCESS: {len(_alert_rules())} rules found" in rules.stdout
    config = _run(promtool, "check", "config", str(PROMETHEUS_CONFIG))
    assert config.returncode == 0, config.stdout + config.stderr
    assert "1 rule files found" in config.stdout


_CHAT = 'route="/api/llm/chat/completions",operation="chat"'
_TARGET = 'job="relaygate",instance="gw:8080"'
_AB = 'provider="openai",target="a/b"'


def _series(name: str, labels: str, values: str) -> dict[str, str]:
    return {"series": f"{name}{{{_TARGET}{',' if labels else ''}{labels}}}", "values": values}


def _buckets(name: str, labels: str, bounds: dict[str, str]) -> list[dict[str, str]]:
    return [_series(f"{name}_bucket", f'{labels},le="{le}"', values) for le, values in bounds.items()]


# alert -> (input series, evaluation time, the labels the alert must carry besides alertname and severity)
_FIRING: dict[str, tuple[list[dict[str, str]], str, dict[str, str]]] = {
    "RelaygateHighErrorRate": (
        [
            _series("relaygate_requests_total", f'{_CHAT},status_class="2xx",error_type=""', "0+60x30"),
            _series("relaygate_requests_total", f'{_CHAT},status_class="5xx",error_type="upstream_500"', "0+12x30"),
        ],
        "15m",
        {"job": "relaygate"},
    ),
    "RelaygateHighLatencyP99": (
        _buckets(
            "relaygate_request_duration_seconds",
            'route="/api/llm/chat/completions",status_class="2xx"',
            {"20.48": "0x30", "40.96": "0+60x30", "+Inf": "0+60x30"},
        ),
        "20m",
        {"job": "relaygate", "route": "/api/llm/chat/completions"},
    ),
    "RelaygateHighOverheadP99": (
        _buckets(
            "relaygate_overhead_duration_seconds",
            'route="/api/llm/chat/completions"',
            {"0.25": "0x30", "0.5": "0+60x30", "+Inf": "0+60x30"},
        ),
        "20m",
        {"job": "relaygate", "route": "/api/llm/chat/completions"},
    ),
    "RelaygateUpstreamTargetFailing": (
        [
            _series("relaygate_upstream_attempts_total", 'provider="openai",target="a/b",outcome="success"', "0+30x20"),
            _series(
                "relaygate_upstream_attempts_total", 'provider="openai",target="a/b",outcome="fallback"', "0+30x20"
            ),
        ],
        "10m",
        {"job": "relaygate", "provider": "openai", "target": "a/b"},
    ),
    "RelaygateTargetCooledDown": (
        [_series("relaygate_target_cooled_down", 'target="a/b"', "0 1 0 0 0")],
        "3m",
        {"job": "relaygate", "target": "a/b"},
    ),
    "RelaygateBudgetExhausted": (
        [_series("relaygate_limits_decisions_total", 'kind="budget",decision="deny",rule_id="daily"', "0 0 3 3")],
        "3m",
        {"job": "relaygate", "rule_id": "daily"},
    ),
    "RelaygateBudgetNearLimit": (
        [_series("relaygate_limit_usage_ratio", 'kind="budget",rule_id="daily"', "0.5 0.8 0.95 0.97")],
        "3m",
        {"job": "relaygate", "rule_id": "daily"},
    ),
    "RelaygateSpendRateHigh": (
        [_series("relaygate_cost_usd_total", 'provider="openai",model="a/b"', "0+2x120")],
        "90m",
        {"job": "relaygate"},
    ),
    "RelaygateDown": ([_series("up", "", "0x10")], "5m", {"job": "relaygate", "instance": "gw:8080"}),
    "RelaygateLogRowsDropped": (
        [_series("relaygate_log_rows_dropped_total", "", "0 0 5 5")],
        "3m",
        {"job": "relaygate", "instance": "gw:8080"},
    ),
    "RelaygateLogRowsFailed": (
        [_series("relaygate_log_rows_failed_total", "", "0 0 1 1")],
        "3m",
        {"job": "relaygate", "instance": "gw:8080"},
    ),
    "RelaygateConfigReloadRefused": (
        [_series("relaygate_config_reload_failures_total", "", "0 0 1 1")],
        "3m",
        {"job": "relaygate", "instance": "gw:8080"},
    ),
    "RelaygateLimitsBackendErrors": (
        [_series("relaygate_limits_backend_errors_total", 'backend="redis"', "0 0 4 4")],
        "3m",
        {"job": "relaygate", "instance": "gw:8080", "backend": "redis"},
    ),
}

# A healthy gateway for 2 hours: 1 request/s answered 2xx fast, every failure counter flat.
_HEALTHY = [
    _series("up", "", "1x120"),
    _series("relaygate_requests_total", f'{_CHAT},status_class="2xx",error_type=""', "0+60x120"),
    _series("relaygate_requests_total", f'{_CHAT},status_class="4xx",error_type="unauthorized"', "0+1x120"),
    *_buckets(
        "relaygate_request_duration_seconds",
        'route="/api/llm/chat/completions",status_class="2xx"',
        {"0.64": "0+59x120", "1.28": "0+60x120", "+Inf": "0+60x120"},
    ),
    *_buckets(
        "relaygate_overhead_duration_seconds",
        'route="/api/llm/chat/completions"',
        {"0.005": "0+60x120", "+Inf": "0+60x120"},
    ),
    _series("relaygate_upstream_attempts_total", 'provider="openai",target="a/b",outcome="success"', "0+60x120"),
    _series("relaygate_target_cooled_down", 'target="a/b"', "0x120"),
    _series("relaygate_limits_decisions_total", 'kind="budget",decision="allow",rule_id="daily"', "0+60x120"),
    _series("relaygate_limits_decisions_total", 'kind="budget",decision="deny",rule_id="daily"', "0x120"),
    _series("relaygate_cost_usd_total", 'provider="openai",model="a/b"', "0+0.1x120"),
    _series("relaygate_log_rows_dropped_total", "", "0x120"),
    _series("relaygate_log_rows_failed_total", "", "0x120"),
    _series("relaygate_config_reload_failures_total", "", "0x120"),
    _series("relaygate_limits_backend_errors_total", 'backend="redis"', "0x120"),
]


def _rules_without_annotations(path: Path) -> Path:
    """alerts.yml minus annotations: promtool compares them verbatim; `check rules` already parsed their templates."""
    document = yaml.safe_load(ALERTS.read_text())
    for group in document["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def test_promtool_unit_tests_every_alert(tmp_path: Path) -> None:
    promtool = _promtool()
    rules = {rule["alert"]: rule for rule in _alert_rules()}
    assert set(_FIRING) == set(rules), "every alert needs a firing scenario here"
    tests: list[dict[str, Any]] = []
    for alert, (series, at, labels) in _FIRING.items():
        expected = {**labels, "severity": rules[alert]["labels"]["severity"]}
        checks = [{"eval_time": at, "alertname": alert, "exp_alerts": [{"exp_labels": expected}]}]
        # The same failure, judged before its `for:` has passed, has not fired yet (pending).
        if rules[alert].get("for"):
            checks.append({"eval_time": "1m", "alertname": alert, "exp_alerts": []})
        tests.append({"interval": "1m", "input_series": series, "alert_rule_test": checks})
    tests.append(
        {
            "interval": "1m",
            "input_series": _HEALTHY,
            "alert_rule_test": [
                {"eval_time": at, "alertname": alert, "exp_alerts": []} for alert in rules for at in ("30m", "119m")
            ],
        }
    )
    unit = {
        "rule_files": [str(_rules_without_annotations(tmp_path / "alerts.yml"))],
        "evaluation_interval": "1m",
        "tests": tests,
    }
    (tmp_path / "alerts_test.yml").write_text(yaml.safe_dump(unit, sort_keys=False))
    result = _run(promtool, "test", "rules", "alerts_test.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


# ------------------------------------------------------------------------------------------------
# A real Prometheus server scraping a real gateway through the example config.

_DEADLINE = 30.0


class PrometheusServer:
    """`prometheus` on a free port with its own storage; `stop()` ends it."""

    def __init__(self, binary: str, root: Path, config: dict[str, Any]) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.config_path = root / "prometheus.yml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.log_path = root / "prometheus.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={self.config_path}",
                    f"--storage.tsdb.path={root / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--log.level=warn",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=root,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self) -> None:
        deadline = time.monotonic() + _DEADLINE
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"prometheus exited {self.process.returncode}:\n{self.log()}"
            try:
                if http_request("GET", self.url + "/-/ready", timeout=2).status == 200:
                    return
            except OSError:  # not listening yet
                pass
            time.sleep(0.1)
        raise AssertionError(f"prometheus was not ready within {_DEADLINE} s:\n{self.log()}")

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        result = http_request("GET", f"{self.url}/api/v1/{path}" + (f"?{query}" if query else ""), timeout=10)
        body = result.json()
        assert result.status == 200 and body["status"] == "success", (path, params, result.status, body)
        return body["data"]

    def value(self, promql: str) -> float | None:
        """The instant value of a query that yields at most one series (None when it yields none)."""
        data = self.api("query", query=promql)
        assert data["resultType"] == "vector", data
        assert len(data["result"]) <= 1, data
        return float(data["result"][0]["value"][1]) if data["result"] else None

    def wait_for(self, promql: str, expected: float) -> None:
        """Poll until `promql` equals `expected` (Prometheus scrapes every second)."""
        deadline = time.monotonic() + _DEADLINE
        seen = None
        while time.monotonic() < deadline:
            seen = self.value(promql)
            if seen == expected:
                return
            time.sleep(0.25)
        raise AssertionError(f"{promql} = {seen}, expected {expected} within {_DEADLINE} s:\n{self.log()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@pytest.fixture
def prometheus_binary() -> str:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("the prometheus server is not installed (Debian: apt-get install prometheus)")
    return binary


def _scrape_config_for(gateway: GatewayHandle) -> dict[str, Any]:
    """examples/observability/prometheus.yml aimed at `gateway`, scraping and evaluating every second."""
    config: dict[str, Any] = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s", scrape_timeout="1s")
    config["rule_files"] = [str(OBSERVABILITY / name) for name in config["rule_files"]]
    (job,) = config["scrape_configs"]
    (static,) = job["static_configs"]
    static["targets"] = [f"127.0.0.1:{gateway.port}"]
    return config


def test_prometheus_scrapes_the_gateway_and_counts_the_requests_sent(
    gateway_factory: GatewayFactory, prometheus_binary: str, tmp_path: Path
) -> None:
    gateway = gateway_factory(manifests.MOCK_ONLY)
    server = PrometheusServer(prometheus_binary, tmp_path / "prometheus", _scrape_config_for(gateway))
    try:
        server.wait_ready()
        alice = gateway.create_token(user=manifests.ALICE)
        client = gateway.client(alice)
        answered, refused = 7, 3
        # One answer Prometheus sees alone first: the counter then grows under its eyes (rate > 0).
        client.chat.completions.create(model="mock/echo", messages=HELLO)
        server.wait_for("sum(relaygate_requests_total)", 1)
        for _ in range(answered - 1):
            client.chat.completions.create(model="mock/echo", messages=HELLO)
        for _ in range(refused):
            status = gateway.request("POST", "/api/llm/chat/completions", token="rg-bogus-token", json={}).status
            assert status == 401
        assert len(gateway.wait_for_logs(answered + refused)) == answered + refused

        server.wait_for("sum(relaygate_requests_total)", answered + refused)
        server.wait_for('sum(relaygate_requests_total{status_class="4xx"})', refused)
        assert server.value('sum(relaygate_requests_total{status_class="2xx"})') == answered
        assert server.value('sum(relaygate_requests_total{error_type="unauthorized"})') == refused
        chat = 'gen_ai_client_operation_duration_seconds_count{gen_ai_operation_name="chat",error_type=""}'
        assert server.value(f"sum({chat})") == answered
        (target,) = server.api("targets")["activeTargets"]
        assert target["health"] == "up" and target["labels"]["job"] == "relaygate", target

        # The dashboard's variables find the job, and Prometheus parses and runs every panel query.
        assert server.api("label/job/values", **{"match[]": "relaygate_build_info"}) == ["relaygate"]
        for title, expr in _dashboard_exprs(_dashboard()):
            data = server.api("query", query=_grafana_to_promql(expr))
            assert data["resultType"] == "vector", title
        assert server.value(
            _grafana_to_promql(
                next(e for t, e in _dashboard_exprs(_dashboard()) if t == "Requests/s by route and status class")
            ).replace("sum by (route, status_class)", "sum")
        ), "requests/s is 0 after the load"

        # Every alert rule was loaded and evaluated without error against the live series.
        _wait_for_rule_evaluations(server)
        assert server.api("alerts")["alerts"] == [], "a healthy gateway raises no alert, not even pending"
    finally:
        server.stop()
    assert server.process.returncode is not None


def _wait_for_rule_evaluations(server: PrometheusServer) -> None:
    names = {rule["alert"] for rule in _alert_rules()}
    deadline = time.monotonic() + _DEADLINE
    rules: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        rules = [rule for group in server.api("rules")["groups"] for rule in group["rules"]]
        if {r["name"] for r in rules} == names and all(not r["lastEvaluation"].startswith("0001") for r in rules):
            break
        time.sleep(0.25)
    else:
        raise AssertionError(f"not every rule was evaluated within {_DEADLINE} s: {rules}")
    broken = {r["name"]: r.get("lastError") for r in rules if r["health"] != "ok"}
    assert not broken, broken
