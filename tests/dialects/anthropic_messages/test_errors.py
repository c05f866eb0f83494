"""Gateway and upstream errors in Anthropic's error shape (same status; `message` kept for every reader)."""

from __future__ import annotations

import orjson
import pytest

from relaygate.dialects.anthropic_messages.errors import error_type_for, messages_error_from_gateway
from relaygate.errors import (
    BadGateway,
    BadRequest,
    Forbidden,
    GatewayError,
    GatewayTimeout,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    RequestTimeout,
    ServiceUnavailable,
    Unauthorized,
    UpstreamError,
)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (BadRequest("bad"), "invalid_request_error"),
        (Unauthorized(), "authentication_error"),
        (Forbidden("no"), "permission_error"),
        (NotFound("gone"), "not_found_error"),
        (RequestTimeout("slow"), "timeout_error"),
        (PayloadTooLarge("big"), "request_too_large"),
        (RateLimited("slow down"), "rate_limit_error"),
        (GatewayError("oops"), "api_error"),
        (BadGateway("broken"), "api_error"),
        (ServiceUnavailable("busy"), "overloaded_error"),
        (GatewayTimeout("late"), "timeout_error"),
    ],
)
def test_gateway_error_gets_the_anthropic_type_for_its_status(error: GatewayError, kind: str) -> None:
    body = orjson.loads(messages_error_from_gateway(error, "req-1"))
    assert body == {
        "type": "error",
        "error": {"type": kind, "message": error.message, "code": error.code},
        "request_id": "req-1",
    }


def test_openai_upstream_error_keeps_its_message_and_code() -> None:
    raw = orjson.dumps(
        {
            "error": {
                "message": "Incorrect API key provided",
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_api_key",
            }
        }
    )
    body = orjson.loads(messages_error_from_gateway(UpstreamError(401, raw)))
    assert body == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "Incorrect API key provided", "code": "invalid_api_key"},
    }


def test_anthropic_upstream_error_keeps_its_own_type() -> None:
    raw = orjson.dumps(
        {
            "type": "error",
            "error": {"type": "overloaded_error", "message": "Overloaded"},
            "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy",
        }
    )
    body = orjson.loads(messages_error_from_gateway(UpstreamError(503, raw)))
    assert body["error"] == {"type": "overloaded_error", "message": "Overloaded"}


def test_non_json_upstream_error_keeps_its_text() -> None:
    body = orjson.loads(messages_error_from_gateway(UpstreamError(502, b"<html>bad gateway</html>")))
    assert body["error"]["type"] == "api_error"
    assert body["error"]["message"] == "<html>bad gateway</html>"


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (409, "invalid_request_error"),
        (422, "invalid_request_error"),
        (529, "overloaded_error"),
        (599, "api_error"),
        (402, "billing_error"),
    ],
)
def test_statuses_without_a_gateway_error_class(status: int, kind: str) -> None:
    assert error_type_for(status) == kind


def test_stream_error_without_status_is_typed_by_its_openai_type() -> None:
    assert error_type_for(None, "server_error") == "api_error"
    assert error_type_for(None, "rate_limit_exceeded") == "rate_limit_error"
    assert error_type_for(None, "overloaded_error") == "overloaded_error"
    assert error_type_for(None, None) == "api_error"
