"""`x-tfy-logging-config` and `--log-bodies`: what a log row keeps of a request's content.

`{"enabled": false}` keeps the row (status, usage, cost, metadata) without any request or response
content; the header's other string keys are metadata tags (an `x-tfy-metadata` key of the same name
wins) that limits and log filters see like metadata; non-string values are a 400. The process switch
`--log-bodies off` (`RELAYGATE_LOG_BODIES`) keeps every body out, whatever a request says.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from tests.conftest import GatewayFactory
from tests.helpers.error_shape import assert_error_shape
from tests.helpers.gateway import HttpResult
from tests.helpers.gateway_thread import GatewayThread

PROMPT = "a secret prompt that must not be stored"
CONFIG = """\
type: provider-account/mock
name: mock
integrations:
  - name: echo
    type: integration/model/mock
    model_id: echo-1
    model_types: [chat, embedding]
    cost: {input_per_million_tokens: 1000, output_per_million_tokens: 2000}
---
type: gateway-rate-limiting-config
name: per-project
rules:
  - id: limited-project-once
    when: {metadata: {project: limited}}
    limit_to: 1
    unit: requests_per_minute
"""


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayThread]:
    gw = GatewayThread(tmp_path_factory.mktemp("logging-config"), CONFIG).start()
    gw.token = gw.create_token(user="alice@example.com")  # type: ignore[attr-defined]
    try:
        yield gw
    finally:
        gw.stop()


def _chat(
    gw: GatewayThread,
    headers: dict[str, str],
    *,
    stream: bool = False,
    path: str = "/api/llm/chat/completions",
    body: dict[str, Any] | None = None,
) -> HttpResult:
    payload = body or {"model": "mock/echo", "messages": [{"role": "user", "content": PROMPT}], "stream": stream}
    return gw.request("POST", path, token=gw.token, json=payload, headers=headers)  # type: ignore[attr-defined]


def _row(gw: GatewayThread, result: HttpResult) -> dict[str, Any]:
    return gw.wait_for_log(str(result.headers.get("x-request-id")))


def _assert_no_content(row: dict[str, Any]) -> None:
    assert row["request_body"] is None and row["response_body"] is None, row
    assert PROMPT not in orjson.dumps(row).decode()


def test_disabled_keeps_the_row_with_usage_cost_and_status_but_no_content(gateway: GatewayThread) -> None:
    result = _chat(gateway, {"x-tfy-logging-config": '{"enabled": false}'})
    assert result.status == 200, result.body
    assert PROMPT in result.body.decode()  # the caller still gets the answer
    row = _row(gateway, result)
    assert row["status"] == 200
    assert row["input_tokens"] and row["output_tokens"]
    assert row["cost_usd"] and row["cost_usd"] > 0
    assert row["subject"] == "user:alice@example.com"
    _assert_no_content(row)


def test_disabled_stream_keeps_no_content(gateway: GatewayThread) -> None:
    result = _chat(gateway, {"x-tfy-logging-config": '{"enabled": false}'}, stream=True)
    assert result.status == 200 and b"[DONE]" in result.body
    row = _row(gateway, result)
    assert row["streaming"] and row["output_tokens"]
    _assert_no_content(row)


def test_disabled_on_the_messages_api_keeps_no_content(gateway: GatewayThread) -> None:
    body = {"model": "mock/echo", "max_tokens": 50, "messages": [{"role": "user", "content": PROMPT}]}
    result = _chat(gateway, {"x-tfy-logging-config": '{"enabled": false}'}, path="/api/llm/messages", body=body)
    assert result.status == 200, result.body
    row = _row(gateway, result)
    assert row["status"] == 200 and row["input_tokens"]
    _assert_no_content(row)


def test_enabled_true_and_absent_keep_bodies(gateway: GatewayThread) -> None:
    for headers in ({}, {"x-tfy-logging-config": '{"enabled": true}'}):
        row = _row(gateway, _chat(gateway, headers))
        assert PROMPT in str(row["request_body"]) and PROMPT in str(row["response_body"])


def test_other_string_keys_are_metadata_tags(gateway: GatewayThread) -> None:
    config = {"project": "my-app", "environment": "production"}
    result = _chat(gateway, {"x-tfy-logging-config": orjson.dumps(config).decode()})
    assert result.status == 200, result.body
    row = _row(gateway, result)
    assert row["metadata"] == config
    assert PROMPT in str(row["request_body"])  # tags alone do not turn bodies off
    ids = [r["request_id"] for r in gateway.logs(limit=1000, metadata={"environment": "production"})]
    assert row["request_id"] in ids  # `relaygate logs --metadata` finds them


def test_metadata_header_wins_over_a_tag_of_the_same_name(gateway: GatewayThread) -> None:
    result = _chat(
        gateway,
        {
            "x-tfy-logging-config": '{"enabled": false, "project": "from-logging", "team": "ml"}',
            "x-tfy-metadata": '{"project": "from-metadata"}',
        },
    )
    assert result.status == 200, result.body
    row = _row(gateway, result)
    assert row["metadata"] == {"project": "from-metadata", "team": "ml"}
    _assert_no_content(row)


@pytest.mark.parametrize(
    "value",
    [
        '{"project": 1}',
        '{"project": null}',
        '{"project": {"a": "b"}}',
        '{"tags": ["a"]}',
        '{"enabled": "false"}',
        '{"enabled": 0}',
        '["enabled"]',
        "{not json",
        orjson.dumps({"project": "x" * 129}).decode(),
    ],
)
def test_non_string_values_are_400_naming_the_header(gateway: GatewayThread, value: str) -> None:
    result = _chat(gateway, {"x-tfy-logging-config": value})
    assert result.status == 400, (value, result.body)
    body = result.json()
    assert_error_shape(body)
    assert "x-tfy-logging-config" in body["error"]["message"]
    assert body["error"]["param"] == "x-tfy-logging-config"
    assert result.headers.get("x-request-id")


def test_non_string_value_is_400_on_the_messages_api_too(gateway: GatewayThread) -> None:
    body = {"model": "mock/echo", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
    result = _chat(gateway, {"x-tfy-logging-config": '{"project": 7}'}, path="/api/llm/messages", body=body)
    assert result.status == 400
    assert "x-tfy-logging-config" in result.json()["error"]["message"]


def test_tags_count_for_metadata_matched_rate_limits(gateway: GatewayThread) -> None:
    tagged = {"x-tfy-logging-config": '{"project": "limited"}'}
    assert _chat(gateway, tagged).status == 200
    refused = _chat(gateway, tagged)
    assert refused.status == 429, refused.body
    assert "limited-project-once" in refused.json()["error"]["message"]
    # The same tag overridden by x-tfy-metadata is another project: the rule does not match.
    assert _chat(gateway, {**tagged, "x-tfy-metadata": '{"project": "other"}'}).status == 200


# -- the process switch ------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["flag", "env"])
def test_log_bodies_off_keeps_every_body_out_even_when_a_request_enables_logging(
    gateway_factory: GatewayFactory, how: str
) -> None:
    env = {"RELAYGATE_LOG_BODIES": "off"} if how == "env" else None
    gw = gateway_factory(CONFIG, start=False, env=env)
    if how == "flag":
        gw.serve_args = ["--log-bodies", "off"]
    gw.start()
    gw.token = gw.create_token(user="alice@example.com")  # type: ignore[attr-defined]
    for headers, stream in (
        ({}, False),
        ({"x-tfy-logging-config": '{"enabled": true, "project": "p"}'}, False),
        ({"x-tfy-logging-config": '{"enabled": true}'}, True),
    ):
        result = _chat(gw, headers, stream=stream)
        assert result.status == 200
        row = _row(gw, result)
        assert row["status"] == 200 and row["output_tokens"]
        _assert_no_content(row)
        assert row["metadata"] == ({"project": "p"} if "project" in str(headers) else {})


def test_log_bodies_rejects_a_bad_value(gateway_factory: GatewayFactory) -> None:
    gw = gateway_factory(CONFIG, start=False)
    result = gw.cli("serve", "--log-bodies", "sometimes", check=False)
    assert result.returncode == 2
    assert "--log-bodies" in result.stderr and "on or off" in result.stderr
