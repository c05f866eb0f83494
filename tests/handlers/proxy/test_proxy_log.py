"""Every proxied request leaves one log row (`relaygate logs --json`) that names the endpoint and pool
decisions, sizes and metadata, and no upstream credential or caller token ends up anywhere."""

from __future__ import annotations

import socket
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

from tests.handlers.proxy import credentials
from tests.handlers.proxy.conftest import ALICE, ProxyStack
from tests.handlers.proxy.wire import WireAnswer
from tests.helpers.gateway import token_secret_of


def row_of(proxy: ProxyStack, answer: WireAnswer) -> dict[str, Any]:
    request_id = answer.header("x-request-id")
    assert request_id
    return proxy.gateway.wait_for_log(request_id)


def test_endpoint_request_row(proxy: ProxyStack) -> None:
    body = b"0123456789" * 123
    answer = proxy.call(
        "POST",
        "/proxy-api/rec/origin/items?x=1",
        body=body,
        headers={"x-tfy-metadata": orjson.dumps({"app": "proxy-log", "env": "ci"}).decode()},
    )
    row = row_of(proxy, answer)
    assert row["requested_model"] == "rec/origin"
    assert row["resolved_model"] == "rec/origin"
    assert row["provider"] == "custom-endpoint"
    assert row["status"] == 200
    assert row["subject"] == f"user:{ALICE}"
    assert row["latency_ms"] > 0
    assert row["metadata"] == {"app": "proxy-log", "env": "ci"}
    assert row["extra"]["bytes_in"] == len(body)
    assert row["extra"]["bytes_out"] == len(answer.body)


def test_endpoint_request_row_has_no_pool_attributes(proxy: ProxyStack) -> None:
    row = row_of(proxy, proxy.call("GET", "/proxy-api/rec/origin/plain"))
    assert "custom_proxy_slug" not in row["extra"]
    assert row["extra"]["loadbalance_target_attempt_count"] == 1


def test_slug_request_row_names_the_pool_decisions(proxy: ProxyStack) -> None:
    proxy.rec.answer_next(503)
    answer = proxy.call("GET", "/proxy-api/duo/pair/pooled")
    assert answer.status == 200
    row = row_of(proxy, answer)
    assert row["requested_model"] == "duo/pair"
    assert row["resolved_model"] == "duo/second"
    extra = row["extra"]
    assert extra["custom_proxy_routing_type"] == "priority"
    assert extra["custom_proxy_slug"] == "pair"
    assert extra["custom_proxy_endpoint_name"] == "second"
    assert extra["custom_proxy_target_was_cooled_down"] is False
    assert extra["loadbalance_target_attempt_count"] == 2
    assert extra["loadbalance_first_target"] == "first"
    assert extra["loadbalance_final_target"] == "second"


def test_endpoint_type_is_recorded_for_endpoint_urls(proxy: ProxyStack) -> None:
    row = row_of(proxy, proxy.call("GET", "/proxy-api/layers/plain/x"))
    assert row["extra"]["endpoint_type"] == "azure-speech-service"


def test_endpoint_type_is_recorded_for_slug_urls(proxy: ProxyStack) -> None:
    row = row_of(proxy, proxy.call("GET", "/proxy-api/duo/pair/x"))
    assert row["extra"]["endpoint_type"] == "other"
    assert row["extra"]["custom_proxy_slug"] == "pair"


def test_endpoint_type_is_recorded_when_access_is_refused(proxy: ProxyStack) -> None:
    answer = proxy.call("GET", "/proxy-api/layers/plain/x", token=proxy.bot)
    assert answer.status == 403
    assert row_of(proxy, answer)["extra"]["endpoint_type"] == "azure-speech-service"


def test_endpoint_type_is_null_when_not_configured(proxy: ProxyStack) -> None:
    row = row_of(proxy, proxy.call("GET", "/proxy-api/rec/origin/x"))
    assert row["extra"]["endpoint_type"] is None


def test_failed_request_row_has_the_status_and_error(proxy: ProxyStack) -> None:
    answer = proxy.call("GET", "/proxy-api/rec/closed/x")
    assert answer.status == 502
    row = row_of(proxy, answer)
    assert row["status"] == 502
    assert row["requested_model"] == "rec/closed"
    assert row["error_type"]


def test_upstream_status_is_the_rows_status(proxy: ProxyStack) -> None:
    proxy.rec.answer_next(404)
    row = row_of(proxy, proxy.call("GET", "/proxy-api/rec/origin/missing"))
    assert row["status"] == 404


def test_client_that_goes_away_cancels_the_upstream_call(proxy: ProxyStack) -> None:
    proxy.rec.answer_next(delay=3.0)
    request_id = f"gone-{uuid.uuid4().hex}"
    with socket.create_connection(("127.0.0.1", proxy.port)) as sock:
        sock.sendall(
            (
                f"GET /proxy-api/rec/origin/slow HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {proxy.alice}"
                f"\r\nx-request-id: {request_id}\r\n\r\n"
            ).encode()
        )
        proxy.rec.wait_for(1)
    left = time.monotonic()
    row = proxy.gateway.wait_for_log(request_id, timeout=2.5)
    assert row["status"] == 499
    assert time.monotonic() - left < 2.5  # the upstream would only answer after 3 s


def test_no_credential_or_token_in_the_database_or_server_output(proxy: ProxyStack) -> None:
    token = proxy.alice
    proxy.call("GET", "/proxy-api/bin/httpbin/get")
    proxy.call("GET", "/proxy-api/bin/own-auth/get")
    proxy.call("GET", "/proxy-api/rec/base/x")
    proxy.call("GET", f"/proxy-api/rec/origin/q?api_key={token}", headers={"Cookie": f"t={token}", "X-Token": token})
    proxy.call("GET", "/proxy-api/rec/closed/x")
    last = proxy.call("GET", "/proxy-api/rec/raw/garbage-status")
    row_of(proxy, last)
    root = proxy.gateway.root
    stored = b"".join(path.read_bytes() for path in Path(root).glob("relaygate.db*"))
    printed = proxy.gateway.output().encode()
    for secret in (*credentials.ALL, token_secret_of(token), token_secret_of(proxy.bob), token_secret_of(proxy.bot)):
        assert secret.encode() not in stored, secret
        assert secret.encode() not in printed, secret
