"""Streamable HTTP rules of both MCP eras, and JSON-RPC parsing: each rule accepted and refused."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from relaygate.mcp.jsonrpc import (
    HEADER_MISMATCH,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    UNSUPPORTED_PROTOCOL_VERSION,
    InvalidMessage,
    MessageKind,
    classify,
    error_response,
    parse_body,
    result_response,
)
from relaygate.mcp.protocol import (
    LATEST_SESSION_VERSION,
    STATELESS_VERSION,
    SUPPORTED_VERSIONS,
    batches_allowed,
    check_get_headers,
    check_http_method,
    check_method_headers,
    check_origin,
    check_post_headers,
    check_session_id_present,
    check_session_version,
    check_stateless_version,
    decode_header_value,
    era_of,
    header_map,
    negotiate_version,
    session_version,
)

BOTH = "application/json, text/event-stream"


def sentinel(text: str) -> str:
    return "=?base64?" + base64.b64encode(text.encode("utf-8")).decode("ascii") + "?="


def modern(method: str, params: dict[str, Any] | None = None, *, request_id: int | None = 1) -> dict[str, Any]:
    """A 2026-07-28 message: params carry `_meta` with the protocol version."""
    body: dict[str, Any] = {
        "jsonrpc": "2.0",
        "method": method,
        "params": {
            **(params or {}),
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": STATELESS_VERSION,
                "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"},
                "io.modelcontextprotocol/clientCapabilities": {},
            },
        },
    }
    if request_id is not None:
        body["id"] = request_id
    return body


def modern_headers(method: str, name: str | None = None) -> dict[str, str]:
    headers = {"mcp-protocol-version": STATELESS_VERSION, "mcp-method": method}
    if name is not None:
        headers["mcp-name"] = name
    return headers


# --- header_map ---------------------------------------------------------------------------------


def test_header_map_lower_cases_and_joins_repeats() -> None:
    raw = [(b"Mcp-Method", b"tools/call"), (b"accept", b"application/json"), (b"mcp-method", b"tools/list")]
    assert header_map(raw) == {"mcp-method": "tools/call, tools/list", "accept": "application/json"}


def test_a_duplicated_mcp_method_header_never_matches() -> None:
    raw = [(b"mcp-protocol-version", b"2026-07-28"), (b"mcp-method", b"tools/list"), (b"mcp-method", b"tools/list")]
    refusal = check_method_headers(modern("tools/list"), header_map(raw))
    assert refusal is not None and refusal.code == HEADER_MISMATCH and "Mcp-Method" in refusal.message


# --- Origin -------------------------------------------------------------------------------------


def test_absent_origin_is_fine() -> None:
    assert check_origin(None, frozenset())


@pytest.mark.parametrize(
    "origin",
    ["https://app.example.com", "HTTPS://APP.example.com", "https://app.example.com/", "https://app.example.com:443"],
)
def test_listed_origins_pass_in_any_normal_form(origin: str) -> None:
    assert check_origin(origin, ["https://app.example.com"])


def test_a_listed_origin_with_a_default_port_matches_without_it() -> None:
    assert check_origin("http://localhost", ["http://localhost:80"])


@pytest.mark.parametrize(
    "origin",
    ["https://evil.example", "http://app.example.com", "https://app.example.com:8443", "null", ""],
)
def test_unlisted_origins_are_refused(origin: str) -> None:
    assert not check_origin(origin, ["https://app.example.com"])


def test_null_origin_passes_only_if_listed() -> None:
    assert check_origin("null", ["null"])
    assert not check_origin("null", [], host="null")


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        ("http://localhost:8080", "localhost:8080"),
        ("https://gw.example.com", "gw.example.com"),
        ("https://gw.example.com", "GW.example.com:443"),
        ("http://gw.example.com:80", "gw.example.com"),
        ("http://[::1]:8080", "[::1]:8080"),
    ],
)
def test_same_host_passes_when_the_host_is_given(origin: str, host: str) -> None:
    assert check_origin(origin, [], host=host)
    assert not check_origin(origin, [])  # not without the Host


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        ("http://localhost:8080", "localhost:9090"),
        ("http://localhost:8080", "localhost"),
        ("https://gw.example.com", "gw.example.com:80"),
        ("https://evil.example", "gw.example.com"),
        ("https://gw.example.com/path", "gw.example.com"),
        ("https://user@gw.example.com", "gw.example.com"),
        ("ftp://gw.example.com", "gw.example.com"),
        ("http://gw.example.com:notaport", "gw.example.com"),
        ("http://gw.example.com", "gw.example.com:99999999"),
    ],
)
def test_other_hosts_and_odd_origins_are_refused(origin: str, host: str) -> None:
    assert not check_origin(origin, [], host=host)


# --- POST and GET headers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "accept"),
    [
        ("application/json", BOTH),
        ("application/json; charset=utf-8", "text/event-stream, application/json"),
        ("Application/JSON", "application/json;q=0.9, text/event-stream;q=0.5"),
        ("application/json", "*/*"),
        ("application/json", "application/*, text/*"),
        ("application/json", "application/json, text/*"),
    ],
)
def test_post_headers_accepted(content_type: str, accept: str) -> None:
    assert check_post_headers(content_type, accept) is None


@pytest.mark.parametrize(
    "accept",
    [
        None,
        "",
        "application/json",
        "text/event-stream",
        "text/*",
        "application/json, text/event-stream;q=0",
        "*/*;q=0",
        "application/jsonx, text/event-streams",
    ],
)
def test_post_without_both_types_accepted_is_406(accept: str | None) -> None:
    refusal = check_post_headers("application/json", accept)
    assert refusal is not None and (refusal.status, refusal.code) == (406, INVALID_REQUEST)


@pytest.mark.parametrize("content_type", [None, "", "text/plain", "application/json-seq", "multipart/form-data"])
def test_post_without_a_json_body_is_415(content_type: str | None) -> None:
    refusal = check_post_headers(content_type, BOTH)
    assert refusal is not None and refusal.status == 415


def test_get_needs_an_sse_accept() -> None:
    assert check_get_headers("text/event-stream") is None
    assert check_get_headers("*/*") is None
    for accept in (None, "application/json", "text/event-stream;q=0"):
        refusal = check_get_headers(accept)
        assert refusal is not None and refusal.status == 406


def test_http_methods_by_era() -> None:
    for method in ("POST", "GET", "DELETE"):
        assert check_http_method(method, "session") is None
    assert check_http_method("POST", "stateless") is None
    for method in ("GET", "DELETE"):
        refusal = check_http_method(method, "stateless")
        assert refusal is not None and refusal.status == 405 and refusal.allow == "POST"
    refusal = check_http_method("PUT", "session")
    assert refusal is not None and refusal.status == 405 and refusal.allow == "POST, GET, DELETE"


# --- versions and eras --------------------------------------------------------------------------


def test_versions() -> None:
    assert SUPPORTED_VERSIONS == ("2025-03-26", "2025-06-18", "2025-11-25")
    assert STATELESS_VERSION == "2026-07-28"
    assert LATEST_SESSION_VERSION == "2025-11-25"


@pytest.mark.parametrize("requested", SUPPORTED_VERSIONS)
def test_negotiate_keeps_a_supported_version(requested: str) -> None:
    assert negotiate_version(requested) == requested


@pytest.mark.parametrize("requested", ["2024-11-05", "2026-07-28", "2099-01-01", "", None, 20250618])
def test_negotiate_answers_the_latest_otherwise(requested: object) -> None:
    assert negotiate_version(requested) == "2025-11-25"


def test_batches_only_in_2025_03_26() -> None:
    assert batches_allowed("2025-03-26")
    assert not any(batches_allowed(version) for version in ("2025-06-18", "2025-11-25", STATELESS_VERSION))


def test_era_initialize_is_the_session_era() -> None:
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18"}}
    assert era_of(initialize, {}) == "session"
    assert era_of(initialize, {"mcp-protocol-version": STATELESS_VERSION}) == "session"


def test_era_meta_version_is_the_stateless_era() -> None:
    assert era_of(modern("tools/list"), {}) == "stateless"
    unknown_modern = modern("tools/list")
    unknown_modern["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = "2027-01-01"
    assert era_of(unknown_modern, {}) == "stateless"


def test_era_by_header() -> None:
    plain = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
    assert era_of(plain, {"mcp-protocol-version": STATELESS_VERSION}) == "stateless"
    assert era_of(None, {"mcp-protocol-version": STATELESS_VERSION}) == "stateless"  # a GET
    assert era_of(plain, {"mcp-protocol-version": "2025-06-18"}) == "session"
    assert era_of(plain, {}) == "session"
    assert era_of(None, {}) == "session"


def test_era_ignores_odd_meta_shapes() -> None:
    for params in ({"_meta": "x"}, {"_meta": {"other": 1}}, "not an object"):
        assert era_of({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": params}, {}) == "session"


def test_session_version_header() -> None:
    assert session_version({}) == "2025-03-26"
    assert session_version({"mcp-protocol-version": "2025-11-25"}) == "2025-11-25"
    assert check_session_version({}) is None
    for version in SUPPORTED_VERSIONS:
        assert check_session_version({"mcp-protocol-version": version}) is None
    for version in ("2024-11-05", "2099-01-01", "garbage", ""):
        refusal = check_session_version({"mcp-protocol-version": version})
        assert refusal is not None and (refusal.status, refusal.code) == (400, INVALID_REQUEST)


def test_session_id_is_required_after_initialize() -> None:
    assert check_session_id_present("initialize", None) is None
    assert check_session_id_present("tools/list", "sid") is None
    for method in ("tools/list", "notifications/initialized", None):
        refusal = check_session_id_present(method, None)
        assert refusal is not None and refusal.status == 400
    assert check_session_id_present("tools/list", "") is not None


def test_stateless_version_must_be_2026_07_28() -> None:
    assert check_stateless_version(modern("tools/list")) is None
    body = modern("tools/list")
    body["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = "2027-01-01"
    refusal = check_stateless_version(body)
    assert refusal is not None and (refusal.status, refusal.code) == (400, UNSUPPORTED_PROTOCOL_VERSION)
    assert refusal.data == {
        "supported": ["2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"],
        "requested": "2027-01-01",
    }
    missing = check_stateless_version({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert missing is not None and missing.data is not None and missing.data["requested"] is None


# --- stateless-era header mirroring -------------------------------------------------------------


def mismatch(body: dict[str, Any], headers: dict[str, str]) -> str:
    refusal = check_method_headers(body, headers)
    assert refusal is not None and (refusal.status, refusal.code) == (400, HEADER_MISMATCH)
    return refusal.message


def test_matching_headers_pass() -> None:
    assert check_method_headers(modern("tools/list"), modern_headers("tools/list")) is None
    call = modern("tools/call", {"name": "get_weather", "arguments": {"city": "Paris"}})
    assert check_method_headers(call, modern_headers("tools/call", "get_weather")) is None
    prompt = modern("prompts/get", {"name": "review"})
    assert check_method_headers(prompt, modern_headers("prompts/get", "review")) is None
    read = modern("resources/read", {"uri": "file:///projects/app/config.json"})
    assert check_method_headers(read, modern_headers("resources/read", "file:///projects/app/config.json")) is None


def test_a_base64_sentinel_name_is_decoded_before_comparing() -> None:
    call = modern("tools/call", {"name": "météo"})
    assert check_method_headers(call, modern_headers("tools/call", sentinel("météo"))) is None
    literal = modern("tools/call", {"name": "=?base64?literal?="})
    assert check_method_headers(literal, modern_headers("tools/call", sentinel("=?base64?literal?="))) is None
    assert "Mcp-Name" in mismatch(literal, modern_headers("tools/call", "=?base64?literal?="))


def test_protocol_version_header_must_be_there_and_match_meta() -> None:
    headers = modern_headers("tools/list")
    del headers["mcp-protocol-version"]
    assert "required" in mismatch(modern("tools/list"), headers)
    headers["mcp-protocol-version"] = "2025-11-25"
    assert "MCP-Protocol-Version" in mismatch(modern("tools/list"), headers)
    no_meta = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    assert "MCP-Protocol-Version" in mismatch(no_meta, modern_headers("tools/list"))


def test_mcp_method_must_be_there_and_match() -> None:
    headers = modern_headers("tools/list")
    del headers["mcp-method"]
    assert "Mcp-Method header is required" in mismatch(modern("tools/list"), headers)
    assert "Mcp-Method" in mismatch(modern("tools/call", {"name": "x"}), modern_headers("tools/list", "x"))
    assert "Mcp-Method" in mismatch(modern("tools/list"), modern_headers("Tools/List"))  # values are case-sensitive


def test_a_notification_may_omit_mcp_method_but_not_contradict_it() -> None:
    note = modern("notifications/progress", request_id=None)
    headers = modern_headers("notifications/progress")
    del headers["mcp-method"]
    assert check_method_headers(note, headers) is None
    assert "Mcp-Method" in mismatch(note, modern_headers("tools/list"))


@pytest.mark.parametrize(
    ("method", "params", "sent"),
    [
        ("tools/call", {"name": "get_weather"}, None),
        ("tools/call", {"name": "get_weather"}, "delete_repo"),
        ("tools/call", {"name": "get_weather"}, "GET_WEATHER"),
        ("tools/call", {}, "get_weather"),
        ("tools/call", {"name": 7}, "7"),
        ("prompts/get", {"name": "review"}, "other"),
        ("resources/read", {"uri": "file:///a"}, "file:///b"),
        ("resources/read", {"name": "file:///a"}, "file:///a"),  # resources/read names its uri
        ("tools/call", {"name": "get_weather"}, "=?base64?not base64!?="),
        ("tools/call", {"name": "get_weather"}, "get\x01weather"),
    ],
)
def test_mcp_name_must_be_there_and_match(method: str, params: dict[str, Any], sent: str | None) -> None:
    assert "Mcp-Name" in mismatch(modern(method, params), modern_headers(method, sent))


def test_methods_without_a_name_need_no_mcp_name() -> None:
    assert check_method_headers(modern("tools/list"), modern_headers("tools/list")) is None
    assert check_method_headers(modern("server/discover"), modern_headers("server/discover", "ignored")) is None


def test_a_body_without_a_method_is_an_invalid_request() -> None:
    body = modern("tools/list")
    del body["method"]
    refusal = check_method_headers(body, modern_headers("tools/list"))
    assert refusal is not None and (refusal.status, refusal.code) == (400, INVALID_REQUEST)


@pytest.mark.parametrize(
    ("value", "decoded"),
    [
        ("get_weather", "get_weather"),
        ("name with spaces", "name with spaces"),
        (sentinel("Hello, 世界"), "Hello, 世界"),
        (sentinel(" padded "), " padded "),
        ("=?base64??=", ""),
        ("=?base64?=", None),  # the markers overlap
        ("=?base64?%%%?=", None),
        ("=?base64?" + base64.b64encode(b"\xff\xfe").decode() + "?=", None),  # not UTF-8
        ("caf\u00e9", None),  # a raw non-ASCII value
        ("line\nbreak", None),
    ],
)
def test_decode_header_value(value: str, decoded: str | None) -> None:
    assert decode_header_value(value) == decoded


# --- JSON-RPC -----------------------------------------------------------------------------------


def parse(value: object, *, allow_batch: bool = False, max_bytes: int = 1 << 20) -> Any:
    raw = value if isinstance(value, bytes) else orjson.dumps(value)
    return parse_body(raw, max_bytes=max_bytes, allow_batch=allow_batch)


def invalid(value: object, **options: Any) -> InvalidMessage:
    with pytest.raises(InvalidMessage) as caught:
        parse(value, **options)
    return caught.value


def test_standard_codes() -> None:
    codes = (PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL_ERROR, HEADER_MISMATCH)
    assert codes == (-32700, -32600, -32601, -32602, -32603, -32020)


def test_a_request() -> None:
    body = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "x", "arguments": {}}}
    parsed = parse(body)
    assert not parsed.batch
    (message,) = parsed.messages
    assert (message.kind, message.id, message.method) == (MessageKind.REQUEST, 7, "tools/call")
    assert message.params == {"name": "x", "arguments": {}}
    assert message.body == body


def test_a_request_with_a_string_id_and_no_params() -> None:
    (message,) = parse({"jsonrpc": "2.0", "id": "abc", "method": "ping"}).messages
    assert (message.kind, message.id, message.params) == (MessageKind.REQUEST, "abc", {})


def test_a_notification() -> None:
    (message,) = parse({"jsonrpc": "2.0", "method": "notifications/initialized"}).messages
    assert (message.kind, message.id, message.method) == (MessageKind.NOTIFICATION, None, "notifications/initialized")


def test_responses() -> None:
    (result,) = parse({"jsonrpc": "2.0", "id": 3, "result": {}}).messages
    assert (result.kind, result.id, result.method) == (MessageKind.RESPONSE, 3, None)
    (error,) = parse({"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "bad"}}).messages
    assert (error.kind, error.id) == (MessageKind.RESPONSE, None)
    (no_id,) = parse({"jsonrpc": "2.0", "error": {"code": -1, "message": "bad"}}).messages
    assert no_id.kind is MessageKind.RESPONSE


@pytest.mark.parametrize(
    ("body", "echoed_id"),
    [
        ({"id": 1, "method": "ping"}, 1),  # no jsonrpc
        ({"jsonrpc": "1.0", "id": 1, "method": "ping"}, 1),
        ({"jsonrpc": "2.0", "id": 1}, 1),  # neither method nor result nor error
        ({"jsonrpc": "2.0", "id": 1, "method": ""}, 1),
        ({"jsonrpc": "2.0", "id": 1, "method": 5}, 1),
        ({"jsonrpc": "2.0", "id": 1, "method": "x", "params": [1, 2]}, 1),  # MCP params are objects
        ({"jsonrpc": "2.0", "id": 1, "method": "x", "params": None}, 1),
        ({"jsonrpc": "2.0", "id": None, "method": "ping"}, None),  # MCP ids are never null
        ({"jsonrpc": "2.0", "id": 1.5, "method": "ping"}, None),
        ({"jsonrpc": "2.0", "id": True, "method": "ping"}, None),
        ({"jsonrpc": "2.0", "id": [1], "method": "ping"}, None),
        ({"jsonrpc": "2.0", "result": {}}, None),  # a result names its request
        ({"jsonrpc": "2.0", "id": 1, "result": {}, "error": {"code": 1, "message": "m"}}, 1),
        ({"jsonrpc": "2.0", "id": 1, "error": "bad"}, 1),
        ({"jsonrpc": "2.0", "id": 1, "error": {"code": "x", "message": "m"}}, 1),
        ({"jsonrpc": "2.0", "id": 1, "error": {"code": True, "message": "m"}}, 1),
        ({"jsonrpc": "2.0", "id": 1, "error": {"code": 1}}, 1),
        ({"jsonrpc": "2.0", "id": {"a": 1}, "error": {"code": 1, "message": "m"}}, None),
    ],
)
def test_invalid_messages(body: dict[str, Any], echoed_id: object) -> None:
    refused = invalid(body)
    assert (refused.code, refused.status, refused.request_id) == (INVALID_REQUEST, 400, echoed_id)
    assert orjson.loads(refused.body()) == {
        "jsonrpc": "2.0",
        "id": echoed_id,
        "error": {"code": INVALID_REQUEST, "message": refused.message},
    }


@pytest.mark.parametrize("raw", [b"", b"{", b"not json", b"\xff\xfe", b'{"jsonrpc": "2.0",}'])
def test_garbage_is_a_parse_error(raw: bytes) -> None:
    refused = invalid(raw)
    assert (refused.code, refused.status, refused.request_id) == (PARSE_ERROR, 400, None)


@pytest.mark.parametrize("value", [1, "text", None, True])
def test_json_that_is_not_an_object_is_invalid(value: object) -> None:
    assert invalid(value).code == INVALID_REQUEST


def test_the_size_cap_applies_before_parsing() -> None:
    raw = orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert parse_body(raw, max_bytes=len(raw), allow_batch=False).messages[0].method == "ping"
    refused = invalid(raw + b" ", max_bytes=len(raw))
    assert (refused.status, refused.code) == (413, INVALID_REQUEST)
    assert invalid(b"{" * 100, max_bytes=10).status == 413  # not even parsed


def test_a_batch_where_allowed() -> None:
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 9, "result": {}},
    ]
    parsed = parse(batch, allow_batch=True)
    assert parsed.batch
    kinds = [message.kind for message in parsed.messages]
    assert kinds == [MessageKind.REQUEST, MessageKind.NOTIFICATION, MessageKind.RESPONSE]


def test_a_batch_where_forbidden() -> None:
    refused = invalid([{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}], allow_batch=False)
    assert refused.code == INVALID_REQUEST and "batch" in refused.message


def test_an_empty_batch_and_a_bad_member_fail_the_batch() -> None:
    assert invalid([], allow_batch=True).code == INVALID_REQUEST
    bad = [{"jsonrpc": "2.0", "id": 1, "method": "ping"}, {"jsonrpc": "2.0", "id": 2}]
    refused = invalid(bad, allow_batch=True)
    assert (refused.code, refused.request_id) == (INVALID_REQUEST, 2)
    assert invalid([1], allow_batch=True).code == INVALID_REQUEST


def test_classify_alone() -> None:
    assert classify({"jsonrpc": "2.0", "id": 1, "method": "ping"}).kind is MessageKind.REQUEST
    with pytest.raises(InvalidMessage):
        classify("ping")


def test_error_and_result_bodies() -> None:
    assert orjson.loads(error_response(5, METHOD_NOT_FOUND, "Method not found")) == {
        "jsonrpc": "2.0",
        "id": 5,
        "error": {"code": -32601, "message": "Method not found"},
    }
    with_data = orjson.loads(error_response(None, INTERNAL_ERROR, "upstream failed", {"upstream_status": 502}))
    assert with_data == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32603, "message": "upstream failed", "data": {"upstream_status": 502}},
    }
    assert orjson.loads(result_response("a", {})) == {"jsonrpc": "2.0", "id": "a", "result": {}}
