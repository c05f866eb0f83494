"""Bedrock error answers -> caller status and OpenAI error object."""

from __future__ import annotations

import orjson
import pytest

from relaygate.providers.bedrock.errors import classify_error, error_type_name, mapped_status, stream_exception

CORAL = ":http://internal.amazon.com/coral/com.amazon.bedrock/"


@pytest.mark.parametrize(
    ("error_type", "status", "caller_status", "kind"),
    [
        ("ThrottlingException", 429, 429, "rate_limit_exceeded"),
        ("ServiceUnavailableException", 503, 503, "service_unavailable"),
        ("ModelNotReadyException", 429, 503, "service_unavailable"),
        ("ModelTimeoutException", 408, 504, "upstream_timeout"),
        ("ValidationException", 400, 400, "invalid_request_error"),
        ("ServiceQuotaExceededException", 400, 429, "rate_limit_exceeded"),
        ("AccessDeniedException", 403, 403, "permission_denied"),
        ("ResourceNotFoundException", 404, 404, "not_found_error"),
        ("InternalServerException", 500, 500, "upstream_error"),
        ("ModelErrorException", 424, 502, "upstream_error"),
        ("UnrecognizedClientException", 403, 401, "authentication_error"),
        ("InvalidSignatureException", 403, 401, "authentication_error"),
        ("ExpiredTokenException", 403, 401, "authentication_error"),
    ],
)
def test_error_types_map_to_status_and_openai_type(error_type: str, status: int, caller_status: int, kind: str) -> None:
    raw = orjson.dumps({"message": f"{error_type} happened"})
    final, error = classify_error(status, raw, error_type + CORAL)
    assert final == caller_status == mapped_status(error_type, status)
    assert error == {"message": f"{error_type} happened", "type": kind, "code": error_type, "param": None}


def test_error_type_name_strips_coral_suffix_namespace_and_camel_case() -> None:
    assert error_type_name("ThrottlingException" + CORAL) == "ThrottlingException"
    assert error_type_name("com.amazon.coral#ValidationException") == "ValidationException"
    assert error_type_name("throttlingException") == "ThrottlingException"
    assert error_type_name(None) is None and error_type_name("") is None


def test_error_type_from_body_type_field_when_header_is_missing() -> None:
    raw = orjson.dumps({"__type": "ThrottlingException", "message": "slow"})
    assert classify_error(429, raw)[1]["code"] == "ThrottlingException"


@pytest.mark.parametrize(
    ("status", "caller_status", "kind"),
    [
        (400, 400, "invalid_request_error"),
        (403, 403, "permission_denied"),
        (408, 504, "upstream_timeout"),
        (424, 502, "upstream_error"),
        (500, 500, "upstream_error"),
        (502, 502, "upstream_error"),
    ],
)
def test_unknown_error_type_goes_by_status(status: int, caller_status: int, kind: str) -> None:
    final, error = classify_error(status, b'{"message": "m"}')
    assert (final, error["type"], error["code"]) == (caller_status, kind, None)


def test_non_json_error_body_keeps_its_text() -> None:
    assert classify_error(502, b"<html>Bad Gateway</html>")[1]["message"] == "<html>Bad Gateway</html>"


def test_empty_error_body_gets_a_message() -> None:
    assert classify_error(503, b"")[1]["message"] == "Bedrock returned HTTP 503"


def test_stream_exception_uses_its_lower_camel_type() -> None:
    status, error = stream_exception("serviceUnavailableException", b'{"message": "try later"}')
    assert status == 503
    assert error == {
        "message": "try later",
        "type": "service_unavailable",
        "code": "ServiceUnavailableException",
        "param": None,
    }


@pytest.mark.parametrize(
    ("exception_type", "status"),
    [
        ("throttlingException", 429),
        ("validationException", 400),
        ("modelStreamErrorException", 502),
        ("internalServerException", 500),
        ("somethingNewException", 502),
    ],
)
def test_stream_exception_carries_the_status_it_stands_for(exception_type: str, status: int) -> None:
    assert stream_exception(exception_type, b'{"message": "m"}')[0] == status
