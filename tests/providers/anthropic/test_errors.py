"""classify(): Anthropic error answers -> (status for the caller, OpenAI error object)."""

from __future__ import annotations

import orjson
import pytest

from relaygate.providers.anthropic.errors import classify, map_status


def body(error_type: str, message: str = "the provider's words") -> bytes:
    return orjson.dumps(
        {
            "type": "error",
            "error": {"type": error_type, "message": message},
            "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy",
        }
    )


@pytest.mark.parametrize(
    "status, error_type, expected_status, openai_type, code",
    [
        (400, "invalid_request_error", 400, "invalid_request_error", "invalid_request_error"),
        (401, "authentication_error", 401, "authentication_error", "authentication_error"),
        (402, "billing_error", 402, "billing_error", "billing_error"),
        (403, "permission_error", 403, "permission_error", "permission_error"),
        (404, "not_found_error", 404, "not_found_error", "not_found_error"),
        (413, "request_too_large", 413, "invalid_request_error", "request_too_large"),
        (429, "rate_limit_error", 429, "rate_limit_error", "rate_limit_exceeded"),
        (500, "api_error", 500, "server_error", "api_error"),
        (504, "timeout_error", 504, "timeout_error", "timeout_error"),
        (529, "overloaded_error", 503, "server_error", "overloaded_error"),
    ],
)
def test_documented_error_types(
    status: int, error_type: str, expected_status: int, openai_type: str, code: str
) -> None:
    mapped, error = classify(status, body(error_type))
    assert mapped == expected_status
    assert error == {"message": "the provider's words", "type": openai_type, "code": code, "param": None}


def test_overloaded_is_retryable_503_before_the_body_is_read() -> None:
    assert map_status(529) == 503
    assert map_status(500) == 500 and map_status(429) == 429 and map_status(200) == 200


def test_invalid_request_keeps_other_4xx_statuses() -> None:
    assert classify(422, body("invalid_request_error"))[0] == 422


def test_api_error_keeps_its_5xx_status() -> None:
    assert classify(502, body("api_error"))[0] == 502


def test_unknown_error_type_keeps_status_and_names_the_type() -> None:
    status, error = classify(409, body("memory_path_conflict_error", "conflict"))
    assert status == 409
    assert error["code"] == "memory_path_conflict_error" and error["message"] == "conflict"


def test_body_that_is_not_json_is_classified_by_status() -> None:
    status, error = classify(529, b"<html>upstream overloaded</html>")
    assert status == 503
    assert error["code"] == "overloaded_error" and "overloaded" in str(error["message"])


def test_empty_body_gets_a_message_naming_the_status() -> None:
    status, error = classify(502, b"")
    assert status == 502 and error["message"] == "Anthropic returned HTTP 502"
