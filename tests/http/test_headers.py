"""Request-header parsing: metadata rules, logging config, timeouts, bearer tokens."""

import pytest

from relaygate.errors import BadRequest
from relaygate.http.headers import bearer_token, parse_logging_enabled, parse_metadata, parse_timeout_ms


def test_metadata_accepts_string_values() -> None:
    assert parse_metadata(b'{"app": "bot", "env": "dev"}') == {"app": "bot", "env": "dev"}


@pytest.mark.parametrize("raw", [b"not json", b"[1]", b'{"n": 1}', b'{"v": "' + b"x" * 129 + b'"}'])
def test_metadata_rejects_bad_shapes(raw: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_metadata(raw)


def test_metadata_value_of_exactly_128_chars_is_fine() -> None:
    assert parse_metadata(b'{"v": "' + b"x" * 128 + b'"}')["v"] == "x" * 128


def test_logging_config() -> None:
    assert parse_logging_enabled(None) is True
    assert parse_logging_enabled(b'{"enabled": false}') is False
    with pytest.raises(BadRequest):
        parse_logging_enabled(b'{"enabled": "no"}')


def test_timeout_header_is_milliseconds() -> None:
    assert parse_timeout_ms(b"1500", "x") == 1.5
    with pytest.raises(BadRequest):
        parse_timeout_ms(b"-1", "x")
    with pytest.raises(BadRequest):
        parse_timeout_ms(b"soon", "x")


def test_bearer_token_and_x_api_key() -> None:
    assert bearer_token({"headers": [(b"authorization", b"Bearer abc")]}) == "abc"
    assert bearer_token({"headers": [(b"authorization", b"Basic abc")]}) is None
    assert bearer_token({"headers": [(b"x-api-key", b"k")]}) == "k"
    assert bearer_token({"headers": []}) is None
