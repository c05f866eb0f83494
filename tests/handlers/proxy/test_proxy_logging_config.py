"""`x-tfy-logging-config` on custom endpoints: its tags are the row's metadata as on the LLM routes,
bodies are never logged whatever it says, and it never travels upstream."""

from __future__ import annotations

import orjson

from tests.handlers.proxy.conftest import ProxyStack


def test_logging_config_tags_are_metadata_in_the_proxy_row(proxy: ProxyStack) -> None:
    answer = proxy.call(
        "POST",
        "/proxy-api/rec/origin/items",
        body=b"secret payload",
        headers={
            "x-tfy-logging-config": '{"enabled": true, "project": "my-app", "env": "x"}',
            "x-tfy-metadata": '{"env": "ci"}',
        },
    )
    assert answer.status == 200
    row = proxy.gateway.wait_for_log(answer.header("x-request-id") or "")
    assert row["metadata"] == {"project": "my-app", "env": "ci"}
    assert row["request_body"] is None and row["response_body"] is None
    assert b"secret payload" not in orjson.dumps(row)
    seen = proxy.rec.last()
    assert seen.header("x-tfy-logging-config") is None and seen.header("x-tfy-metadata") is None


def test_a_non_string_logging_config_value_is_400_on_the_proxy_route(proxy: ProxyStack) -> None:
    answer = proxy.call("GET", "/proxy-api/rec/origin/x", headers={"x-tfy-logging-config": '{"project": 1}'})
    assert answer.status == 400
    assert "x-tfy-logging-config" in orjson.loads(answer.body)["error"]["message"]
