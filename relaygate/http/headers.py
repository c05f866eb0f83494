"""Reading request headers and the `x-tfy-*` request controls."""

from __future__ import annotations

import orjson

from relaygate.errors import BadRequest
from relaygate.http.types import Scope

METADATA_VALUE_MAX = 128


_INDEX = "relaygate.headers"  # scope key of the request's header index (an ASGI extension key)


def header(scope: Scope, name: bytes) -> bytes | None:
    """First value of a request header (`name` lower-case); ASGI servers lower-case names.

    The request's headers are indexed once, on the first lookup (a request looks up about ten), and the
    index kept in the scope; the header list is never changed after the server built it.
    """
    index: dict[bytes, bytes] | None = scope.get(_INDEX)
    if index is None:
        index = scope[_INDEX] = dict(reversed(scope["headers"]))  # first wins
    return index.get(name)


def parse_metadata(raw: bytes | None) -> dict[str, str]:
    """`x-tfy-metadata`: a JSON object of string -> string, values at most 128 characters."""
    if raw is None or not raw.strip():
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest("x-tfy-metadata must be a JSON object", code="invalid_metadata", param="x-tfy-metadata")
    if not isinstance(value, dict):
        raise BadRequest("x-tfy-metadata must be a JSON object", code="invalid_metadata", param="x-tfy-metadata")
    for key, item in value.items():
        if not isinstance(item, str):
            raise BadRequest(
                f"x-tfy-metadata value for {key!r} must be a string",
                code="invalid_metadata",
                param="x-tfy-metadata",
            )
        if len(item) > METADATA_VALUE_MAX:
            raise BadRequest(
                f"x-tfy-metadata value for {key!r} is longer than {METADATA_VALUE_MAX} characters",
                code="invalid_metadata",
                param="x-tfy-metadata",
            )
    return value


def parse_strict_openai(raw: bytes | None) -> bool:
    """`x-tfy-strict-openai`: true (the default) or false; anything else is a 400."""
    if raw is None or not raw.strip():
        return True
    value = raw.strip().lower()
    if value in (b"true", b"1"):
        return True
    if value in (b"false", b"0"):
        return False
    raise BadRequest("x-tfy-strict-openai must be true or false", code="invalid_header", param="x-tfy-strict-openai")


def parse_logging_config(raw: bytes | None) -> tuple[bool, dict[str, str]]:
    """`x-tfy-logging-config`: (bodies enabled, metadata tags) from a JSON object.

    `enabled` (a boolean, default true) says whether this request's content may be stored; every
    other key is a metadata tag (`{"project": "my-app", "environment": "production"}`) with the same
    rules as `x-tfy-metadata` values: strings of at most 128 characters, anything else is a 400.
    """
    if raw is None or not raw.strip():
        return True, {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise BadRequest(
            'x-tfy-logging-config must be a JSON object such as {"enabled": false}',
            code="invalid_logging_config",
            param="x-tfy-logging-config",
        )
    enabled = value.pop("enabled", True)
    if not isinstance(enabled, bool):
        raise BadRequest(
            "x-tfy-logging-config 'enabled' must be true or false",
            code="invalid_logging_config",
            param="x-tfy-logging-config",
        )
    for key, item in value.items():
        if not isinstance(item, str):
            raise BadRequest(
                f"x-tfy-logging-config value for {key!r} must be a string (metadata tags are "
                "string -> string; only 'enabled' is a boolean)",
                code="invalid_logging_config",
                param="x-tfy-logging-config",
            )
        if len(item) > METADATA_VALUE_MAX:
            raise BadRequest(
                f"x-tfy-logging-config value for {key!r} is longer than {METADATA_VALUE_MAX} characters",
                code="invalid_logging_config",
                param="x-tfy-logging-config",
            )
    return enabled, value


def parse_logging_headers(scope: Scope, bodies_allowed: bool) -> tuple[dict[str, str], bool]:
    """The request's metadata and whether its bodies may be logged, from both headers at once.

    Tags from `x-tfy-logging-config` sit under `x-tfy-metadata` (a key in both: the metadata value
    wins), so limits, routing and log filters see them as metadata. Bodies are logged only when the
    process allows it (`--log-bodies`) and the request did not say `"enabled": false`: a request
    cannot turn bodies on when the process switch is off.
    """
    metadata = parse_metadata(header(scope, b"x-tfy-metadata"))
    enabled, tags = parse_logging_config(header(scope, b"x-tfy-logging-config"))
    if tags:
        metadata = {**tags, **metadata}
    return metadata, bodies_allowed and enabled


def parse_timeout_ms(raw: bytes | None, name: str) -> float | None:
    """A positive millisecond count header (e.g. `x-tfy-request-timeout`) as seconds."""
    if raw is None or not raw.strip():
        return None
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a number of milliseconds", code="invalid_header", param=name)
    if not value > 0 or value != value or value == float("inf"):
        raise BadRequest(f"{name} must be a positive number of milliseconds", code="invalid_header", param=name)
    return value / 1000.0


def bearer_token(scope: Scope) -> str | None:
    """The token from `Authorization: Bearer ...` (or `x-api-key`, as Anthropic clients send it)."""
    raw = header(scope, b"authorization")
    if raw is not None:
        text = raw.decode("latin-1").strip()
        scheme, _, token = text.partition(" ")
        if scheme.lower() != "bearer":
            return None
        return token.strip() or None
    raw = header(scope, b"x-api-key")
    if raw is not None:
        return raw.decode("latin-1").strip() or None
    return None
