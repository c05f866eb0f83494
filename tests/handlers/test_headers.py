"""Request headers (`x-tfy-metadata`, `x-tfy-logging-config`) and response headers
(`x-request-id`, `x-tfy-resolved-model`, `server-timing`)."""

from __future__ import annotations

import re

import orjson
import pytest

from tests.conftest import Stack
from tests.helpers.error_shape import assert_error_shape
from tests.helpers.gateway import HttpResult

CHAT = {"model": "openai-main/gpt-4o", "messages": [{"role": "user", "content": "hi headers"}]}


def post_chat(
    stack: Stack, headers: dict[str, str] | None = None, body: dict[str, object] | None = None, token: str | None = None
) -> HttpResult:
    return stack.gateway.request(
        "POST", "/api/llm/chat/completions", token=token or stack.alice, json=body or CHAT, headers=headers
    )


# -- x-tfy-metadata ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "value"),
    [
        ("invalid-json", "{not json"),
        ("not-an-object", '["a", "b"]'),
        ("number-value", '{"a": 1}'),
        ("null-value", '{"a": null}'),
        ("nested-value", '{"a": {"b": "c"}}'),
        ("value-over-128-chars", orjson.dumps({"a": "x" * 129}).decode()),
    ],
)
def test_bad_metadata_header_is_400(stack: Stack, case: str, value: str) -> None:
    result = post_chat(stack, {"x-tfy-metadata": value})
    assert result.status == 400, (case, result.body)
    assert_error_shape(result.json())
    assert not stack.openai.requests


def test_metadata_value_of_128_chars_is_accepted(stack: Stack) -> None:
    result = post_chat(stack, {"x-tfy-metadata": orjson.dumps({"a": "x" * 128}).decode()})
    assert result.status == 200, result.body


def test_metadata_is_not_forwarded_upstream(stack: Stack) -> None:
    result = post_chat(stack, {"x-tfy-metadata": '{"app": "headers-test"}'})
    assert result.status == 200
    recorded = stack.openai.last("/chat/completions")
    assert not [name for name in recorded.headers if name.lower().startswith("x-tfy-")]


# -- x-request-id -----------------------------------------------------------------------------------


def test_request_id_on_success(stack: Stack) -> None:
    result = post_chat(stack)
    assert result.status == 200
    assert result.headers.get("x-request-id")


def test_request_id_is_unique_per_request(stack: Stack) -> None:
    ids = {post_chat(stack).headers.get("x-request-id") for _ in range(3)}
    assert len(ids) == 3 and None not in ids


def test_request_id_is_the_gateways_not_the_upstreams(stack: Stack) -> None:
    result = post_chat(stack)
    # the mock sends its own `x-request-id: req_...`; the caller must see the gateway's id
    assert not str(result.headers.get("x-request-id")).startswith("req_")
    assert len(result.headers.get_all("x-request-id") or []) == 1


@pytest.mark.parametrize(
    ("case", "path", "token", "body", "status"),
    [
        ("bad-token", "/api/llm/chat/completions", "bad", CHAT, 401),
        ("unknown-model", "/api/llm/chat/completions", None, {**CHAT, "model": "openai-main/nope"}, 404),
        ("unknown-path", "/api/llm/no-such-endpoint", None, CHAT, 404),
        ("unknown-root-path", "/definitely/not/here", None, CHAT, 404),
        ("bad-json", "/api/llm/chat/completions", None, None, 400),
        ("forbidden", "/api/llm/chat/completions", None, {**CHAT, "model": "restricted/gpt-4o"}, 403),
    ],
)
def test_request_id_on_errors(
    stack: Stack, case: str, path: str, token: str | None, body: dict[str, object] | None, status: int
) -> None:
    auth = {"Authorization": f"Bearer {token or stack.alice}"}
    if body is None:
        result = stack.gateway.request("POST", path, data=b"{not json", headers=auth)
    else:
        result = stack.gateway.request("POST", path, json=body, headers=auth)
    assert result.status == status, (case, result.body)
    assert result.headers.get("x-request-id"), case
    assert_error_shape(result.json())


def test_request_id_on_health(stack: Stack) -> None:
    result = stack.gateway.request("GET", "/health")
    assert result.status == 200
    assert result.headers.get("x-request-id")


# -- x-tfy-resolved-model and server-timing ---------------------------------------------------------


def test_resolved_model_header(stack: Stack) -> None:
    assert post_chat(stack).headers.get("x-tfy-resolved-model") == "openai-main/gpt-4o"


def test_resolved_model_header_on_stream(stack: Stack) -> None:
    result = post_chat(stack, body={**CHAT, "stream": True})
    assert result.status == 200
    assert result.headers.get("x-tfy-resolved-model") == "openai-main/gpt-4o"


def test_server_timing_on_non_streaming_response(stack: Stack) -> None:
    header = post_chat(stack).headers.get("server-timing")
    assert header, "server-timing missing"
    entries = dict(re.findall(r"([a-z_-]+);dur=([0-9.]+)", header))
    assert {"auth", "model", "total"} <= set(entries), header
    assert float(entries["total"]) >= float(entries["model"]) >= 0


# -- x-tfy-logging-config ---------------------------------------------------------------------------


def test_logging_disabled_keeps_bodies_out_of_the_log(stack: Stack) -> None:
    result = post_chat(stack, {"x-tfy-logging-config": '{"enabled": false}'})
    assert result.status == 200
    row = stack.gateway.wait_for_log(str(result.headers.get("x-request-id")))
    assert not row.get("request_body")
    assert not row.get("response_body")
    assert row["status"] == 200


def test_logging_enabled_by_default_keeps_bodies(stack: Stack) -> None:
    result = post_chat(stack)
    row = stack.gateway.wait_for_log(str(result.headers.get("x-request-id")))
    assert "hi headers" in str(row.get("request_body"))
    assert "echo: hi headers" in str(row.get("response_body"))
