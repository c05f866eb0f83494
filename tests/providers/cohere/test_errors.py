"""Cohere error answers -> OpenAI error objects with statuses that retry and fall back sensibly."""

from __future__ import annotations

import orjson
import pytest

from relaygate.providers.cohere.errors import classify, map_status


@pytest.mark.parametrize(
    ("status", "message", "expected_status", "expected_type", "expected_code"),
    [
        (400, "invalid request: temperature must be between 0 and 1.0 inclusive.", 400, "invalid_request_error", None),
        (401, "invalid api token", 401, "authentication_error", "invalid_api_key"),
        (
            402,
            "Please add or update your payment method at https://dashboard.cohere.com/billing?tab=payment to continue",
            402,
            "billing_error",
            "insufficient_quota",
        ),
        (
            404,
            "model 'xyz' not found, make sure the correct model ID was used and that you have access to the model.",
            404,
            "not_found_error",
            "model_not_found",
        ),
        (422, "unprocessable", 400, "invalid_request_error", None),
        (
            429,
            "You are past the per minute request limit, please wait and try again later.",
            429,
            "rate_limit_error",
            "rate_limit_exceeded",
        ),
        (498, "blocked output", 400, "invalid_request_error", "blocked_content"),
        (499, "request cancelled", 502, "upstream_error", "upstream_cancelled"),
        (500, "internal server error", 500, "server_error", None),
        (503, "service unavailable", 503, "server_error", "service_unavailable"),
        (504, "gateway timeout", 504, "timeout_error", None),
    ],
)
def test_cohere_statuses_map_to_openai_errors(
    status: int, message: str, expected_status: int, expected_type: str, expected_code: str | None
) -> None:
    mapped, error = classify(status, orjson.dumps({"id": "4f1e", "message": message}))
    assert mapped == expected_status == map_status(status)
    assert error == {"message": message, "type": expected_type, "code": expected_code, "param": None}


def test_error_schema_data_field_is_read_when_there_is_no_message() -> None:
    assert classify(429, b'{"data": "slow down"}')[1]["message"] == "slow down"


def test_non_json_error_body_keeps_its_text() -> None:
    status, error = classify(502, b"<html>bad gateway</html>")
    assert status == 502
    assert error["message"] == "<html>bad gateway</html>"
    assert error["type"] == "server_error"


def test_unknown_statuses_keep_their_status() -> None:
    assert classify(418, b"{}") == (
        418,
        {"message": "Cohere returned HTTP 418", "type": "invalid_request_error", "code": None, "param": None},
    )
    assert map_status(507) == 507
