"""Request-header parsing: metadata rules, logging config, timeouts, bearer tokens."""

import pytest

from relaygate.errors import BadRequest
from relaygate.http.headers import (
    bearer_token,
    parse_logging_config,
    parse_logging_headers,
    parse_metadata,
    parse_timeout_ms,
)


def test_metadata_accepts_string_values() -> None:
    assert parse_metadata(b'{"app": "bot", "env": "dev"}') == {"app": "bot", "env": "dev"}


@pytest.mark.parametrize("raw", [b"not json", b"[1]", b'{"n": 1}', b'{"v": "' + b"x" * 129 + b'"}'])
def test_metadata_rejects_bad_shapes(raw: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_metadata(raw)


def test_metadata_value_of_exactly_128_chars_is_fine() -> None:
    assert parse_metadata(b'{"v": "' + b"x" * 128 + b'"}')["v"] == "x" * 128


def test_logging_config() -> None:
    assert parse_logging_config(None) == (True, {})
    assert parse_logging_config(b'{"enabled": false}') == (False, {})
    assert parse_logging_config(b'{"enabled": true, "project": "my-app"}') == (True, {"project": "my-app"})
    assert parse_logging_config(b'{"project": "my-app", "environment": "production"}') == (
        True,
        {"project": "my-app", "environment": "production"},
    )


@pytest.mark.parametrize(
    "raw",
    [
        b'{"enabled": "no"}',
        b'{"enabled": null}',
        b'{"project": 1}',
        b'{"a": true}',
        b'{"a": ["b"]}',
        b"[]",
        b"nope",
        b'{"v": "' + b"x" * 129 + b'"}',
    ],
)
def test_logging_config_rejects_non_string_values(raw: bytes) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_logging_config(raw)
    assert caught.value.param == "x-tfy-logging-config"
    assert "x-tfy-logging-config" in caught.value.message


def _scope(**headers: str) -> dict[str, object]:
    return {"headers": [(name.replace("_", "-").encode(), value.encode()) for name, value in headers.items()]}


def test_logging_tags_merge_under_metadata() -> None:
    scope = _scope(
        x_tfy_metadata='{"project": "m", "app": "bot"}',
        x_tfy_logging_config='{"project": "l", "env": "prod", "enabled": false}',
    )
    assert parse_logging_headers(scope, True) == ({"project": "m", "app": "bot", "env": "prod"}, False)


def test_the_process_switch_wins_over_enabled_true() -> None:
    assert parse_logging_headers(_scope(x_tfy_logging_config='{"enabled": true}'), False) == ({}, False)
    assert parse_logging_headers(_scope(), True) == ({}, True)


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
