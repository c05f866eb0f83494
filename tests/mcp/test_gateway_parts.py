"""The MCP gateway's small parts on their own: the paths, per-user headers, listings (collisions are
reported, never silent), the name directory, the mirrored-header encoding and the listing cursor."""

from __future__ import annotations

import logging

import orjson
import pytest

from relaygate.handlers.mcp import server_name
from relaygate.mcp.client_headers import parse_client_headers, upstream_headers
from relaygate.mcp.http_errors import McpRefused
from relaygate.mcp.list_cursor import InvalidCursor, decode_cursor, encode_cursor, member_cursor
from relaygate.mcp.protocol import decode_header_value
from relaygate.mcp.tool_directory import ToolDirectory
from relaygate.mcp.tool_listing import listed_tools
from relaygate.pipeline.mcp_request import encode_header_value
from relaygate.runtime.mcp import McpPolicy, McpServer, VirtualMcpServer, VirtualMember


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/mcp/github", "github"),
        ("/mcp/github/", "github"),
        ("/api/llm/mcp/github/server", "github"),
        ("/mcp/v1/github/mcp", "github"),
        ("/mcp/v1", "v1"),
        ("/mcp/github/extra", None),
        ("/mcp/", None),
        ("/api/llm/mcp/github", None),
    ],
)
def test_paths(path: str, name: str | None) -> None:
    assert server_name(path) == name


def test_client_headers_only_where_allowed_and_never_transport_names() -> None:
    raw = orjson.dumps({"open": {"Authorization": "Bearer mine"}, "closed": {"X-Key": "k"}}).decode()
    parsed = parse_client_headers(raw)
    request = {"x-tenant-id": "acme", "authorization": "Bearer rg-caller"}
    open_server = McpServer("open", "http://u", allow_client_headers=True, forward_headers=frozenset({"x-tenant-id"}))
    closed = McpServer("closed", "http://u")
    assert upstream_headers(open_server, request, parsed) == {"x-tenant-id": "acme", "Authorization": "Bearer mine"}
    assert upstream_headers(closed, request, parsed) == {}
    for bad in ('{"open": {"Host": "x"}}', '{"open": {"Mcp-Session-Id": "x"}}', "[1]", "not json", '{"a": 1}'):
        with pytest.raises(McpRefused) as caught:
            parse_client_headers(bad)
        assert caught.value.status == 400
    assert parse_client_headers(None) == {}


def test_virtual_listing_reports_a_collision_and_keeps_the_first(caplog: pytest.LogCaptureFixture) -> None:
    policy = McpPolicy(
        servers={"a": McpServer("a", "http://a"), "b": McpServer("b", "http://b")},
        virtual_servers={"v": VirtualMcpServer("v", (VirtualMember("a"),))},
    )
    subjects = frozenset({"user:x"})
    tools = [{"name": "files.read"}, {"name": "files_read"}, {"name": "ok"}]
    with caplog.at_level(logging.WARNING, "relaygate.mcp"):
        listed, names = listed_tools(policy, "v", subjects, [("a", tools)], prefixed=True)
    assert [t["name"] for t in listed] == ["a__files_read", "a__ok"]
    assert names.resolve("a__files_read") == ("a", "files.read")
    assert "files_read" in caplog.text and "files.read" in caplog.text
    directory = ToolDirectory(limit=10)
    directory.learn("v", names, [t["name"] for t in listed])
    assert directory.resolve("v", "a__files_read") == ("a", "files.read")
    assert directory.resolve("other", "a__files_read") is None


@pytest.mark.parametrize("value", ["plain", "files.read", "naïve", " padded ", "=?base64?x?="])
def test_mirrored_header_values_round_trip(value: str) -> None:
    assert decode_header_value(encode_header_value(value)) == value


def test_list_cursor_round_trips_and_refuses_what_it_did_not_make() -> None:
    cursor = encode_cursor("v", [("a", "offset-3"), ("b", "naïve/+=")])
    assert cursor is not None and "=" not in cursor and "+" not in cursor and "/" not in cursor
    assert list(decode_cursor("v", cursor).items()) == [("a", "offset-3"), ("b", "naïve/+=")]
    assert encode_cursor("v", []) is None
    for bad in (None, "", "not base64 !", cursor[:-3], cursor + "x", "x" * 70_000):
        with pytest.raises(InvalidCursor):
            decode_cursor("v", bad)
    with pytest.raises(InvalidCursor):
        decode_cursor("w", cursor)  # another virtual server's
    assert member_cursor("next") == "next"
    assert member_cursor("") is None and member_cursor(3) is None and member_cursor("x" * 5000) is None
