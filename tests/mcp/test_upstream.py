"""`McpBackend` against real MCP servers (the official SDK's `MCPServer`) and against servers that misbehave.

The SDK servers (tests/upstreams/mcp_servers.py) prove the client speaks Streamable HTTP as the
reference implementation does: the handshake, JSON and SSE answers, sessions and their end, the GET
stream, the stateless mode and the 2026-07-28 era. A small aiohttp server proves every way a backend
can fail becomes one `BackendError`, without leaking a header value.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from relaygate.mcp.sse_reader import MalformedSse, SseEvent, SseReader, parse_event
from relaygate.mcp.upstream import BackendError, InitResult, McpBackend, UpstreamReply
from relaygate.wire_types import JSON
from tests.helpers.gateway import free_port
from tests.upstreams.aiohttp_server import AiohttpServer
from tests.upstreams.mcp_servers import DOTTED_TOOL_NAME, LONG_TOOL_NAME, McpTestServer

CLIENT_PARAMS: JSON = {"capabilities": {}, "clientInfo": {"name": "relaygate-tests", "version": "0"}}
VERSION = "2025-11-25"
MODERN = "2026-07-28"
UPSTREAM_SECRET = "Bearer upstream-secret"
CALLER_TOKEN = "Bearer rg-caller-token-must-never-leave"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A session like the gateway's: its own default read timeout, which each call overrides."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_read=600)) as client:
        yield client


def call(request_id: int, name: str, arguments: JSON, progress_token: str | None = None) -> JSON:
    params: JSON = {"name": name, "arguments": arguments}
    if progress_token is not None:
        params["_meta"] = {"progressToken": progress_token}
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


async def started(backend: McpBackend, session: aiohttp.ClientSession) -> InitResult:
    return await backend.initialize(session, CLIENT_PARAMS, VERSION)


async def answer(reply: UpstreamReply) -> tuple[JSON, list[SseEvent]]:
    """The JSON-RPC response of a reply (JSON or SSE), and the events that came before it."""
    if reply.message is not None:
        return reply.message, []
    assert reply.events is not None
    events = [event async for event in reply.events]
    assert events and events[-1].message is not None
    return events[-1].message, events[:-1]


def text_of(response: JSON) -> str:
    content = response["result"]["content"]
    assert content[0]["type"] == "text"
    return str(content[0]["text"])


# The handshake


async def test_initialize_returns_result_session_and_version_then_sends_initialized(
    alpha: McpTestServer, session: aiohttp.ClientSession
) -> None:
    before = len(alpha.requests)
    init = await started(McpBackend(alpha.url, {}, 10), session)
    assert init.result["serverInfo"]["name"] == "alpha"
    assert "tools" in init.result["capabilities"]
    assert init.protocol_version == VERSION
    assert init.session_id and all("!" <= c <= "~" for c in init.session_id)
    first, second = alpha.requests[before:]
    assert first.message()["method"] == "initialize"
    assert first.message()["params"]["protocolVersion"] == VERSION
    assert first.message()["params"]["clientInfo"] == CLIENT_PARAMS["clientInfo"]
    assert first.headers["accept"] == "application/json, text/event-stream"
    assert first.headers["content-type"] == "application/json"
    assert "mcp-session-id" not in first.headers
    assert second.message() == {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert second.headers["mcp-session-id"] == init.session_id
    assert second.headers["mcp-protocol-version"] == VERSION


async def test_initialize_negotiates_the_version_asked_for(
    alpha: McpTestServer, session: aiohttp.ClientSession
) -> None:
    init = await McpBackend(alpha.url, {}, 10).initialize(session, CLIENT_PARAMS, "2025-03-26")
    assert init.protocol_version == "2025-03-26"
    assert init.result["protocolVersion"] == "2025-03-26"


async def test_initialize_over_a_json_answer(alpha_json: McpTestServer, session: aiohttp.ClientSession) -> None:
    init = await started(McpBackend(alpha_json.url, {}, 10), session)
    assert init.result["serverInfo"]["name"] == "alpha"
    assert init.session_id


# Requests: JSON and SSE answers


async def test_tools_list_and_call_with_json_answers(alpha_json: McpTestServer, session: aiohttp.ClientSession) -> None:
    backend = McpBackend(alpha_json.url, {}, 10)
    init = await started(backend, session)
    listed = await backend.request(
        session,
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        session_id=init.session_id,
        protocol_version=init.protocol_version,
    )
    assert listed.events is None and listed.message is not None and listed.status == 200
    assert listed.message["id"] == 1
    names = {tool["name"] for tool in listed.message["result"]["tools"]}
    assert {"add", "echo", "sleep_then_echo", "fail", "weather", LONG_TOOL_NAME, DOTTED_TOOL_NAME} <= names

    added = await backend.request(
        session, call(2, "add", {"a": 2, "b": 40}), session_id=init.session_id, protocol_version=VERSION
    )
    assert added.message is not None and added.message["id"] == 2
    assert text_of(added.message) == "42"
    headers = alpha_json.requests[-1].headers
    assert headers["mcp-session-id"] == init.session_id
    assert headers["mcp-protocol-version"] == VERSION


async def test_tools_call_with_an_sse_answer(alpha: McpTestServer, session: aiohttp.ClientSession) -> None:
    backend = McpBackend(alpha.url, {}, 10)
    init = await started(backend, session)
    async with await backend.request(
        session, call(7, "echo", {"text": "hello"}), session_id=init.session_id, protocol_version=VERSION
    ) as reply:
        assert reply.message is None and reply.events is not None
        response, before = await answer(reply)
    assert before == []
    assert response["id"] == 7 and text_of(response) == "hello"


async def test_sse_events_keep_their_raw_bytes_and_fields(alpha: McpTestServer, session: aiohttp.ClientSession) -> None:
    backend = McpBackend(alpha.url, {}, 10)
    init = await started(backend, session)
    reply = await backend.request(
        session,
        call(3, "sleep_then_echo", {"seconds": 0, "text": "t"}, progress_token="p-3"),
        session_id=init.session_id,
        protocol_version=VERSION,
    )
    response, progress = await answer(reply)
    assert [event.message["method"] for event in progress if event.message] == ["notifications/progress"] * 2
    assert [event.message["params"]["progressToken"] for event in progress if event.message] == ["p-3", "p-3"]
    event = progress[0]
    assert event.event == "message"
    assert event.raw.startswith(b"event: message\n") and event.raw.endswith(b"\n\n")  # ready to relay as is
    assert parse_event(event.raw[:-2]) == event
    assert text_of(response) == "t"


async def test_a_tool_error_is_a_result_not_a_backend_error(
    alpha_json: McpTestServer, session: aiohttp.ClientSession
) -> None:
    backend = McpBackend(alpha_json.url, {}, 10)
    init = await started(backend, session)
    reply = await backend.request(
        session, call(4, "fail", {"message": "disk full"}), session_id=init.session_id, protocol_version=VERSION
    )
    assert reply.message is not None
    assert reply.message["result"]["isError"] is True
    assert text_of(reply.message).endswith("disk full")


async def test_structured_content_arrives_whole(alpha_json: McpTestServer, session: aiohttp.ClientSession) -> None:
    backend = McpBackend(alpha_json.url, {}, 10)
    init = await started(backend, session)
    reply = await backend.request(
        session, call(5, "weather", {"city": "Oslo"}), session_id=init.session_id, protocol_version=VERSION
    )
    assert reply.message is not None
    assert reply.message["result"]["structuredContent"] == {"city": "Oslo", "celsius": 21.5}


@pytest.mark.parametrize("name", [LONG_TOOL_NAME, DOTTED_TOOL_NAME])
async def test_long_and_dotted_tool_names_are_callable(
    name: str, alpha: McpTestServer, session: aiohttp.ClientSession
) -> None:
    backend = McpBackend(alpha.url, {}, 10)
    init = await started(backend, session)
    arguments = {"text": "x"} if name == LONG_TOOL_NAME else {"path": "/etc/motd"}
    reply = await backend.request(
        session, call(6, name, arguments), session_id=init.session_id, protocol_version=VERSION
    )
    response, _ = await answer(reply)
    assert response["result"]["isError"] is False
    assert text_of(response) == ("long:x" if name == LONG_TOOL_NAME else "contents of /etc/motd")


async def test_the_second_server_overlaps_tool_names_with_other_answers(
    beta: McpTestServer, session: aiohttp.ClientSession
) -> None:
    """beta_server (for virtual aggregation): same `echo`/`add` names as alpha, answers that tell them apart."""
    backend = McpBackend(beta.url, {}, 10)
    init = await started(backend, session)
    assert init.result["serverInfo"]["name"] == "beta"
    listed = await backend.request(
        session,
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        session_id=init.session_id,
        protocol_version=VERSION,
    )
    assert listed.message is not None
    assert [tool["name"] for tool in listed.message["result"]["tools"]] == ["echo", "add", "multiply"]
    echoed = await backend.request(
        session, call(2, "echo", {"text": "x"}), session_id=init.session_id, protocol_version=VERSION
    )
    assert echoed.message is not None and text_of(echoed.message) == "beta:x"


# Sessions


async def test_delete_ends_the_session_and_a_later_call_gets_404(
    alpha: McpTestServer, session: aiohttp.ClientSession
) -> None:
    backend = McpBackend(alpha.url, {}, 10)
    init = await started(backend, session)
    assert init.session_id is not None
    assert await backend.delete_session(session, init.session_id, protocol_version=VERSION) is True
    deleted = alpha.requests_with("DELETE")[-1]
    assert deleted.headers["mcp-session-id"] == init.session_id
    with pytest.raises(BackendError) as caught:
        await backend.request(
            session, call(8, "echo", {"text": "x"}), session_id=init.session_id, protocol_version=VERSION
        )
    assert caught.value.status == 404 and caught.value.kind == "http_status"
    assert caught.value.message is not None and caught.value.message["error"]["message"] == "Session not found"
    assert await backend.delete_session(session, init.session_id, protocol_version=VERSION) is False  # already gone


async def test_a_stateless_server_has_no_session(stateless: McpTestServer, session: aiohttp.ClientSession) -> None:
    backend = McpBackend(stateless.url, {}, 10)
    init = await started(backend, session)
    assert init.session_id is None
    reply = await backend.request(session, call(9, "add", {"a": 1, "b": 2}), session_id=None, protocol_version=VERSION)
    assert reply.message is not None and text_of(reply.message) == "3"
    assert "mcp-session-id" not in stateless.requests[-1].headers
    assert await backend.delete_session(session, "anything", protocol_version=VERSION) is False  # 405: nothing to end


async def test_the_get_stream_carries_server_initiated_messages(
    alpha: McpTestServer, session: aiohttp.ClientSession
) -> None:
    backend = McpBackend(alpha.url, {}, 10)
    init = await started(backend, session)
    async with await backend.open_get_stream(session, session_id=init.session_id, protocol_version=VERSION) as stream:
        reply = await backend.request(
            session, call(10, "announce", {}), session_id=init.session_id, protocol_version=VERSION
        )
        response, _ = await answer(reply)
        assert text_of(response) == "announced"
        event = await anext(stream)
        assert event.message == {"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}
    get = alpha.requests_with("GET")[-1]
    assert get.headers["accept"] == "text/event-stream"
    assert get.headers["mcp-session-id"] == init.session_id
    assert "content-type" not in get.headers


async def test_a_server_without_a_get_stream_answers_405(alpha: McpTestServer, session: aiohttp.ClientSession) -> None:
    """The 2026-07-28 era removed the GET stream: the SDK answers 405."""
    with pytest.raises(BackendError) as caught:
        await McpBackend(alpha.url, {}, 10).open_get_stream(session, session_id=None, protocol_version=MODERN)
    assert caught.value.status == 405 and caught.value.kind == "http_status"


# The stateless 2026-07-28 era: same calls, its routing headers passed per call


MODERN_META: JSON = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "relaygate-tests", "version": "0"},
}


async def test_the_2026_era_discover_and_call(alpha: McpTestServer, session: aiohttp.ClientSession) -> None:
    backend = McpBackend(alpha.url, {}, 10)
    discover = {"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": MODERN_META}}
    found = await backend.request(
        session, discover, session_id=None, protocol_version=MODERN, extra_headers={"Mcp-Method": "server/discover"}
    )
    response, _ = await answer(found)
    assert MODERN in response["result"]["supportedVersions"]

    message = call(2, DOTTED_TOOL_NAME, {"path": "/a"})
    message["params"]["_meta"] = MODERN_META
    routed = {"Mcp-Method": "tools/call", "Mcp-Name": DOTTED_TOOL_NAME}
    called = await backend.request(session, message, session_id=None, protocol_version=MODERN, extra_headers=routed)
    response, _ = await answer(called)
    assert text_of(response) == "contents of /a"
    assert alpha.requests[-1].headers["mcp-name"] == DOTTED_TOOL_NAME

    with pytest.raises(BackendError) as caught:
        await backend.request(
            session,
            message,
            session_id=None,
            protocol_version=MODERN,
            extra_headers={**routed, "Mcp-Name": "other"},
        )
    assert caught.value.status == 400
    assert caught.value.message is not None and caught.value.message["error"]["code"] == -32020  # HeaderMismatch


# Headers and credentials


async def test_static_headers_are_sent_and_the_callers_token_never_arrives(
    guarded: McpTestServer, session: aiohttp.ClientSession
) -> None:
    backend = McpBackend(guarded.url, {"Authorization": UPSTREAM_SECRET}, 10)
    per_call = {"authorization": CALLER_TOKEN, "X-Tenant-Id": "t-1"}
    before = len(guarded.requests)
    init = await backend.initialize(session, CLIENT_PARAMS, VERSION, extra_headers=per_call)
    reply = await backend.request(
        session,
        call(1, "echo", {"text": "ok"}),
        session_id=init.session_id,
        protocol_version=VERSION,
        extra_headers=per_call,
    )
    response, _ = await answer(reply)
    assert text_of(response) == "ok"
    assert init.session_id is not None
    await backend.delete_session(session, init.session_id, protocol_version=VERSION, extra_headers=per_call)
    sent = guarded.requests[before:]
    assert [request.method for request in sent] == ["POST", "POST", "POST", "DELETE"]
    for request in sent:
        assert request.headers["authorization"] == UPSTREAM_SECRET  # the backend's credential wins
        assert request.headers["x-tenant-id"] == "t-1"
        assert all(CALLER_TOKEN not in value for value in request.headers.values())


async def test_per_call_headers_cannot_replace_transport_headers(
    alpha_json: McpTestServer, session: aiohttp.ClientSession
) -> None:
    backend = McpBackend(alpha_json.url, {}, 10)
    init = await started(backend, session)
    sneaky = {"Mcp-Session-Id": "forged", "MCP-Protocol-Version": "1999-01-01", "Accept": "text/html", "Host": "evil"}
    reply = await backend.request(
        session,
        call(1, "add", {"a": 1, "b": 1}),
        session_id=init.session_id,
        protocol_version=VERSION,
        extra_headers=sneaky,
    )
    assert reply.message is not None and text_of(reply.message) == "2"
    headers = alpha_json.requests[-1].headers
    assert headers["mcp-session-id"] == init.session_id
    assert headers["mcp-protocol-version"] == VERSION
    assert headers["accept"] == "application/json, text/event-stream"
    assert headers["host"] == f"127.0.0.1:{alpha_json.port}"


async def test_a_missing_credential_is_a_401_that_does_not_quote_headers(
    guarded: McpTestServer, session: aiohttp.ClientSession
) -> None:
    backend = McpBackend(guarded.url, {"Authorization": "Bearer wrong-secret"}, 10)
    with pytest.raises(BackendError) as caught:
        await started(backend, session)
    assert caught.value.status == 401 and caught.value.kind == "http_status"
    assert "wrong-secret" not in str(caught.value) and "Bearer" not in str(caught.value)


# Long calls: streamed as they happen, cut only by silence


async def test_progress_is_read_while_the_tool_is_still_running(
    alpha: McpTestServer, session: aiohttp.ClientSession
) -> None:
    backend = McpBackend(alpha.url, {}, 20)
    init = await started(backend, session)
    reply = await backend.request(
        session,
        call(11, "gated_echo", {"text": "released", "gate": "incremental"}, progress_token="p-11"),
        session_id=init.session_id,
        protocol_version=VERSION,
    )
    assert reply.events is not None
    first = await anext(reply.events)  # the tool is parked on its gate: only a relayed stream gets here
    assert first.message is not None and first.message["method"] == "notifications/progress"
    assert first.message["params"]["message"] == "waiting for the gate"
    alpha.open_gate("incremental")
    rest = [event async for event in reply.events]
    assert [event.message["id"] for event in rest if event.message] == [11]
    assert text_of(rest[-1].message or {}) == "released"


async def test_a_call_longer_than_the_timeout_that_keeps_talking_is_not_cut(
    alpha: McpTestServer, session: aiohttp.ClientSession
) -> None:
    backend = McpBackend(alpha.url, {}, 1.0)
    init = await started(backend, session)
    started_at = time.monotonic()
    reply = await backend.request(
        session,
        call(12, "ticking_echo", {"ticks": 15, "interval_s": 0.1, "text": "finished"}, progress_token="p-12"),
        session_id=init.session_id,
        protocol_version=VERSION,
    )
    response, progress = await answer(reply)
    assert time.monotonic() - started_at > backend.timeout_s  # no total timeout
    assert len(progress) == 15 and text_of(response) == "finished"


async def test_silence_mid_stream_is_an_inactivity_timeout(
    alpha: McpTestServer, session: aiohttp.ClientSession
) -> None:
    backend = McpBackend(alpha.url, {}, 10)
    init = await started(backend, session)
    quick = McpBackend(alpha.url, {}, 0.5)
    reply = await quick.request(
        session,
        call(13, "sleep_then_echo", {"seconds": 2, "text": "late"}, progress_token="p-13"),
        session_id=init.session_id,
        protocol_version=VERSION,
    )
    assert reply.events is not None
    first = await anext(reply.events)
    assert first.message is not None and first.message["params"]["message"] == "started"
    with pytest.raises(BackendError) as caught:
        await anext(reply.events)
    assert caught.value.kind == "timeout" and caught.value.status is None
    with pytest.raises(StopAsyncIteration):  # the stream is closed, not left half-read
        await anext(reply.events)


async def test_silence_before_a_json_answer_is_an_inactivity_timeout(
    alpha_json: McpTestServer, session: aiohttp.ClientSession
) -> None:
    init = await started(McpBackend(alpha_json.url, {}, 10), session)
    with pytest.raises(BackendError) as caught:
        await McpBackend(alpha_json.url, {}, 0.5).request(
            session,
            call(14, "sleep_then_echo", {"seconds": 2, "text": "late"}),
            session_id=init.session_id,
            protocol_version=VERSION,
        )
    assert caught.value.kind == "timeout"


async def test_a_closed_port_fails_fast(session: aiohttp.ClientSession) -> None:
    backend = McpBackend(f"http://127.0.0.1:{free_port()}/mcp?key=sk-in-query", {"Authorization": UPSTREAM_SECRET}, 30)
    started_at = time.monotonic()
    with pytest.raises(BackendError) as caught:
        await started(backend, session)
    assert time.monotonic() - started_at < 5  # refused at once, not after the 30 s timeout
    assert caught.value.kind == "connect" and caught.value.status is None
    assert "sk-in-query" not in str(caught.value) and "upstream-secret" not in str(caught.value)


# Servers that misbehave


SPACED_ANSWER = b'{ "jsonrpc" : "2.0",\n  "id": 1, "result": {"content": [], "isError": false} }'


class Misbehaving(AiohttpServer):
    """Each path answers one way a backend can go wrong."""

    def _routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/text", self._text)
        router.add_post("/bad-json", self._bad_json)
        router.add_post("/array", self._array)
        router.add_post("/accepted", self._accepted)
        router.add_post("/error-500", self._error_500)
        router.add_post("/redirect", self._redirect)
        router.add_post("/sse-not-json", self._sse_not_json)
        router.add_post("/sse-huge", self._sse_huge)
        router.add_post("/sse-cut", self._sse_cut)
        router.add_post("/sse-comments", self._sse_comments)
        router.add_post("/bad-session-id", self._bad_session_id)
        router.add_post("/init-refused", self._init_refused)
        router.add_post("/spaced", self._spaced)
        router.add_post("/big-json", self._big_json)

    async def _text(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text="hello", content_type="text/plain")

    async def _bad_json(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=b'{"jsonrpc": ', content_type="application/json")

    async def _array(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"[1, 2]", content_type="application/json")

    async def _accepted(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=202, content_type="application/json")

    async def _error_500(self, request: web.Request) -> web.StreamResponse:
        body = b'{"jsonrpc": "2.0", "id": null, "error": {"code": -32603, "message": "boom"}}'
        return web.Response(status=500, body=body, content_type="application/json")

    async def _redirect(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=307, headers={"Location": "http://127.0.0.1:1/elsewhere"})

    async def _sse(self, request: web.Request, *chunks: bytes, finish: bool = True) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for chunk in chunks:
            await response.write(chunk)
        if finish:
            await response.write_eof()
        return response

    async def _sse_not_json(self, request: web.Request) -> web.StreamResponse:
        return await self._sse(request, b"event: message\ndata: not json\n\n")

    async def _sse_huge(self, request: web.Request) -> web.StreamResponse:
        return await self._sse(request, b"data: " + b"x" * 5000 + b"\n\n")

    async def _sse_cut(self, request: web.Request) -> web.StreamResponse:
        return await self._sse(request, b'data: {"jsonrpc": "2.0", "method": "a"}\n\ndata: {"jsonrpc"')

    async def _sse_comments(self, request: web.Request) -> web.StreamResponse:
        message = b'data: {"jsonrpc": "2.0", "id": 1, "result": {}}\r\n\r\n'
        return await self._sse(request, b": ping\r\n\r\n", message[:10], message[10:], b": ping\r\n\r\n")

    async def _bad_session_id(self, request: web.Request) -> web.StreamResponse:
        body = b'{"jsonrpc": "2.0", "id": "relaygate-initialize", "result": {"protocolVersion": "2025-11-25"}}'
        headers = {"Mcp-Session-Id": "has space"}
        return web.Response(body=body, content_type="application/json", headers=headers)

    async def _spaced(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=SPACED_ANSWER, content_type="application/json")

    async def _big_json(self, request: web.Request) -> web.StreamResponse:
        body = b'{"jsonrpc": "2.0", "id": 1, "result": {"text": "' + b"x" * 5000 + b'"}}'
        return web.Response(body=body, content_type="application/json")

    async def _init_refused(self, request: web.Request) -> web.StreamResponse:
        body = b'{"jsonrpc": "2.0", "id": "relaygate-initialize", "error": {"code": -32602, "message": "no"}}'
        return web.Response(body=body, content_type="application/json")


@pytest.fixture
async def misbehaving() -> AsyncIterator[Misbehaving]:
    async with Misbehaving() as server:
        yield server


async def failure(server: Misbehaving, path: str, session: aiohttp.ClientSession, **options: int) -> BackendError:
    """The error a request to `path` ends in, whether at its answer or while its stream is read."""
    backend = McpBackend(server.url + path, {"Authorization": UPSTREAM_SECRET}, 5, **options)
    with pytest.raises(BackendError) as caught:
        reply = await backend.request(session, call(1, "echo", {}), session_id=None, protocol_version=VERSION)
        await answer(reply)
    assert "upstream-secret" not in str(caught.value)
    return caught.value


@pytest.mark.parametrize(
    ("path", "status", "kind"),
    [
        ("/text", 200, "content_type"),
        ("/bad-json", None, "malformed"),
        ("/array", None, "malformed"),
        ("/accepted", 202, "malformed"),
        ("/redirect", 307, "http_status"),
        ("/sse-not-json", None, "malformed"),
        ("/sse-cut", None, "malformed"),
    ],
)
async def test_misbehaviour_is_a_backend_error(
    path: str, status: int | None, kind: str, misbehaving: Misbehaving, session: aiohttp.ClientSession
) -> None:
    error = await failure(misbehaving, path, session)
    assert (error.status, error.kind) == (status, kind)


async def test_an_error_status_keeps_the_servers_jsonrpc_error(
    misbehaving: Misbehaving, session: aiohttp.ClientSession
) -> None:
    error = await failure(misbehaving, "/error-500", session)
    assert error.status == 500 and error.kind == "http_status"
    assert error.message is not None and error.message["error"] == {"code": -32603, "message": "boom"}


async def test_an_event_over_the_cap_is_refused(misbehaving: Misbehaving, session: aiohttp.ClientSession) -> None:
    error = await failure(misbehaving, "/sse-huge", session, max_message_bytes=1024)
    assert error.kind == "malformed" and "1024 bytes" in error.reason


async def test_keepalive_comments_are_dropped_and_split_events_joined(
    misbehaving: Misbehaving, session: aiohttp.ClientSession
) -> None:
    reply = await McpBackend(misbehaving.url + "/sse-comments", {}, 5).request(
        session, call(1, "echo", {}), session_id=None, protocol_version=VERSION
    )
    response, before = await answer(reply)
    assert before == [] and response == {"jsonrpc": "2.0", "id": 1, "result": {}}


async def test_initialize_refuses_an_invalid_session_id(
    misbehaving: Misbehaving, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(BackendError) as caught:
        await McpBackend(misbehaving.url + "/bad-session-id", {}, 5).initialize(session, CLIENT_PARAMS, VERSION)
    assert caught.value.kind == "malformed" and "has space" not in str(caught.value)


async def test_initialize_refused_with_a_jsonrpc_error(
    misbehaving: Misbehaving, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(BackendError) as caught:
        await McpBackend(misbehaving.url + "/init-refused", {}, 5).initialize(session, CLIENT_PARAMS, VERSION)
    assert caught.value.kind == "rpc_error" and "-32602" in caught.value.reason
    assert caught.value.message is not None and caught.value.message["error"]["message"] == "no"


# The SSE reader on its own


def test_the_reader_cuts_any_chunking_into_the_same_events() -> None:
    stream = b'id: 7\nevent: message\ndata: {"a":\ndata: 1}\n\n: ping\n\nid: 8\ndata:\n\n'
    whole = SseReader().feed(stream)
    reader = SseReader()
    byte_by_byte = [event for i in range(len(stream)) for event in reader.feed(stream[i : i + 1])]
    reader.finish()
    assert whole == byte_by_byte
    first, priming = whole
    assert (first.id, first.event, first.data, first.message) == ("7", "message", b'{"a":\n1}', {"a": 1})
    assert (priming.id, priming.data, priming.message) == ("8", b"", None)


def test_the_reader_refuses_what_is_not_an_mcp_event_stream() -> None:
    with pytest.raises(MalformedSse):
        SseReader().feed(b"data: [1]\n\n")
    with pytest.raises(MalformedSse):
        SseReader().feed(b"event: \xff\ndata: {}\n\n")
    with pytest.raises(MalformedSse):
        SseReader(max_event_bytes=64).feed(b"data: " + b"y" * 100)
    cut = SseReader()
    assert cut.feed(b"data: {}\n") == []
    with pytest.raises(MalformedSse):
        cut.finish()


async def test_a_json_answer_keeps_the_bytes_it_came_in(
    misbehaving: Misbehaving, session: aiohttp.ClientSession
) -> None:
    """The gateway relays an unchanged answer as it came (no second serialisation), so the reply keeps its bytes."""
    reply = await McpBackend(misbehaving.url + "/spaced", {}, 5).request(
        session, call(1, "echo", {}), session_id=None, protocol_version=VERSION
    )
    assert reply.raw == SPACED_ANSWER
    assert reply.message == {"jsonrpc": "2.0", "id": 1, "result": {"content": [], "isError": False}}


async def test_a_json_answer_over_the_cap_is_refused(misbehaving: Misbehaving, session: aiohttp.ClientSession) -> None:
    error = await failure(misbehaving, "/big-json", session, max_message_bytes=1024)
    assert error.kind == "malformed" and "1024 bytes" in error.reason
