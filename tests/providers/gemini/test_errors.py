"""Google error answers -> caller status and OpenAI error object."""

from __future__ import annotations

import orjson
import pytest

from relaygate.providers.gemini.errors import classify, retry_delay


def google(status: int, google_status: str, message: str = "boom", **extra: object) -> bytes:
    return orjson.dumps({"error": {"code": status, "message": message, "status": google_status, **extra}})


@pytest.mark.parametrize(
    ("http", "google_status", "status", "kind"),
    [
        (400, "INVALID_ARGUMENT", 400, "invalid_request_error"),
        (400, "FAILED_PRECONDITION", 400, "invalid_request_error"),
        (401, "UNAUTHENTICATED", 401, "authentication_error"),
        (403, "PERMISSION_DENIED", 403, "permission_denied"),
        (404, "NOT_FOUND", 404, "not_found_error"),
        (429, "RESOURCE_EXHAUSTED", 429, "rate_limit_exceeded"),
        (500, "INTERNAL", 500, "upstream_error"),
        (503, "UNAVAILABLE", 503, "service_unavailable"),
        (504, "DEADLINE_EXCEEDED", 504, "upstream_timeout"),
    ],
)
def test_google_status_decides_the_caller_status(http: int, google_status: str, status: int, kind: str) -> None:
    got_status, error = classify(http, google(http, google_status, "Google says no"))
    assert got_status == status
    assert error == {"message": "Google says no", "type": kind, "code": google_status.lower(), "param": None}


def test_rejected_api_key_is_an_authentication_error_without_details() -> None:
    body = google(
        400,
        "INVALID_ARGUMENT",
        "API key not valid. Please pass a valid API key.",
        details=[
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
            },
            {"@type": "type.googleapis.com/google.rpc.DebugInfo", "detail": "Invalid API key: AIza-secret"},
        ],
    )
    status, error = classify(400, body)
    assert status == 401 and error["type"] == "authentication_error" and error["code"] == "api_key_invalid"
    assert "AIza-secret" not in orjson.dumps(error).decode()


def test_list_wrapped_error_is_read() -> None:
    status, error = classify(429, b"[" + google(429, "RESOURCE_EXHAUSTED", "quota") + b"]")
    assert status == 429 and error["message"] == "quota"


def test_html_error_page_gets_a_plain_message() -> None:
    status, error = classify(404, b"<!DOCTYPE html><html><title>Error 404 (Not Found)!!1</title></html>")
    assert status == 404 and error["message"] == "Google API returned HTTP 404" and error["type"] == "not_found_error"


def test_plain_text_error_is_kept() -> None:
    status, error = classify(502, b"upstream connect error")
    assert status == 502 and error["message"] == "upstream connect error" and error["type"] == "upstream_error"


def test_unknown_google_status_keeps_the_http_status() -> None:
    status, error = classify(418, google(418, "TEAPOT"))
    assert status == 418 and error["code"] == "teapot"


def test_retry_delay_is_read_from_retry_info() -> None:
    details = [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37.5s"},
    ]
    assert retry_delay(google(429, "RESOURCE_EXHAUSTED", details=details)) == "37.5"


@pytest.mark.parametrize(
    "body",
    [b"<html>", orjson.dumps({"error": {"code": 429}}), orjson.dumps({"error": {"details": [{"retryDelay": "soon"}]}})],
)
def test_retry_delay_is_none_without_a_usable_retry_info(body: bytes) -> None:
    assert retry_delay(body) is None
