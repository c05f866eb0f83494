"""`LegacySseBackend` against the official SDK's legacy HTTP+SSE server (`MCPServer(...).sse_app()`).

The backend offers the calls `McpBackend` does, over one held SSE connection per gateway session: the
handshake, answers correlated by rewritten ids (concurrent callers reusing one id), progress routed by
rewritten tokens, server-initiated messages to the GET stream (or dropped and counted), a process that
does not hold the connection (another replica, a restarted backend) initializing again transparently,
the endpoint's origin checked, credentials on every request and never a caller's token, the inactivity
timeout, DELETE and shutdown closing connections, and idle ones expiring.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator, Iterator

import aiohttp
import orjson
import pytest

from relaygate.mcp import legacy_session_id
from relaygate.mcp.legacy_pool import LegacyConnections
from relaygate.mcp.legacy_sse import LegacySseBackend
from relaygate.mcp.sse_reader import SseEvent
from relaygate.mcp.upstream import BackendError, UpstreamReply
from relaygate.wire_types import JSON
from tests.helpers.gateway import free_port
from tests.upstreams.mcp_sse_servers import LegacySseTestServer, MisbehavingSse

CLIENT_PARAMS: JSON = {"capabilities": {"roots": {}}, "clientInfo": {"name": "legacy-tests", "version": "7"}}
VERSION = "2025-11-25"
UPSTREAM_SECRET = "Bearer legacy-secret"


@pytest.fixture(scope="module")
def legacy() -> Iterator[LegacySseTestServer]:
    with LegacySseTestServer(required_headers={"Authorization": UPSTREAM_SECRET}).running() as server:
        yield server


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_read=600)) as client:
        yield client


@pytest.fixture
async def pool() -> AsyncIterator[LegacyConnections]:
    connections = LegacyConnections()
    yield connections
    await connections.aclose()


def backend(server: LegacySseTestServer, pool: LegacyConnections, timeout_s: float = 10) -> LegacySseBackend:
    return LegacySseBackend("alpha", server.url, {"Authorization": UPSTREAM_SECRET}, timeout_s, pool)


def call(request_id: object, name: str, arguments: JSON, progress_token: object = None) -> JSON:
    params: JSON = {"name": name, "arguments": arguments}
    if progress_token is not None:
        params["_meta"] = {"progressToken": progress_token}
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


async def answer(reply: UpstreamReply) -> tuple[JSON, list[SseEvent]]:
    """The response of a reply and the events before it."""
    assert reply.events is not None and reply.message is None
    events = [event async for event in reply.events]
    assert events and events[-1].message is not None
    return events[-1].message, events[:-1]


def text_of(response: JSON) -> str:
    return str(response["result"]["content"][0]["text"])


async def started(server: LegacySseTestServer, pool: LegacyConnections, session: aiohttp.ClientSession) -> str:
    init = await backend(server, pool).initialize(session, CLIENT_PARAMS, VERSION)
    assert init.session_id is not None
    return init.session_id


async def test_initialize_opens_the_stream_and_names_the_connection(
    legacy: LegacySseTestServer, pool: LegacyConnections, session: aiohttp.ClientSession
) -> None:
    before = len(legacy.requests)
    init = await backend(legacy, pool).initialize(session, CLIENT_PARAMS, VERSION)
    assert init.result["serverInfo"]["name"] == "alpha"
    assert init.protocol_version == VERSION
    assert init.session_id is not None and init.session_id.startswith("l1.")
    assert all("!" <= c <= "~" for c in init.session_id)
    get, first, second = legacy.requests[before:]
    assert get.method == "GET" and get.headers["accept"] == "text/event-stream"
    assert first.message()["method"] == "initialize"
    assert first.message()["params"]["clientInfo"] == {"name": "legacy-tests", "version": "7"}
    assert second.message() == {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert len(pool) == 1


async def test_list_and_call_answer_under_the_callers_ids(
    legacy: LegacySseTestServer, pool: LegacyConnections, session: aiohttp.ClientSession
) -> None:
    session_id = await started(legacy, pool, session)
    alpha = backend(legacy, pool)
    listing, _ = await answer(
        await alpha.request(
            session,
            {"jsonrpc": "2.0", "id": "list-1", "method": "tools/list"},
            session_id=session_id,
            protocol_version=VERSION,
        )
    )
    assert listing["id"] == "list-1"
    assert "add" in [tool["name"] for tool in listing["result"]["tools"]]
    added, _ = await answer(
        await alpha.request(session, call(7, "add", {"a": 2, "b": 3}), session_id=session_id, protocol_version=VERSION)
    )
    assert added["id"] == 7 and text_of(added) == "5"
    failed, _ = await answer(
        await alpha.request(
            session, call(8, "fail", {"message": "no"}), session_id=session_id, protocol_version=VERSION
        )
    )
    assert failed["result"]["isError"] is True
    # On the wire, every request went under an id of the connection's own.
    wire_ids = [
        message["id"] for message in legacy.posts() if "id" in message and message.get("method") != "initialize"
    ]
    assert 7 not in wire_ids[-2:] and "list-1" not in wire_ids


async def test_concurrent_callers_reusing_one_id_get_their_own_answers(
    legacy: LegacySseTestServer, pool: LegacyConnections, session: aiohttp.ClientSession
) -> None:
    session_id = await started(legacy, pool, session)
    alpha = backend(legacy, pool)
    replies = await asyncio.gather(
        *(
            alpha.request(session, call(1, "echo", {"text": f"t{i}"}), session_id=session_id, protocol_version=VERSION)
            for i in range(5)
        )
    )
    answers = [await answer(reply) for reply in replies]
    assert sorted(text_of(message) for message, _ in answers) == [f"t{i}" for i in range(5)]
    assert all(message["id"] == 1 for message, _ in answers)


async def test_progress_reaches_its_request_under_the_callers_token(
    legacy: LegacySseTestServer, pool: LegacyConnections, session: aiohttp.ClientSession
) -> None:
    session_id = await started(legacy, pool, session)
    alpha = backend(legacy, pool)
    reply = await alpha.request(
        session,
        call("c1", "gated_echo", {"text": "late", "gate": "legacy-g1"}, progress_token="p1"),
        session_id=session_id,
        protocol_version=VERSION,
    )
    assert reply.events is not None
    first = await reply.events.__anext__()
    assert first.message is not None and first.message["method"] == "notifications/progress"
    assert first.message["params"]["progressToken"] == "p1"  # while the tool still waits
    legacy.open_gate("legacy-g1")
    rest = [event async for event in reply.events]
    assert rest[-1].message is not None and rest[-1].message["id"] == "c1" and text_of(rest[-1].message) == "late"
    assert rest[-1].raw.startswith(b"event: message\ndata: ")


async def test_server_messages_go_to_the_get_stream_else_are_dropped_and_counted(
    legacy: LegacySseTestServer, pool: LegacyConnections, session: aiohttp.ClientSession
) -> None:
    session_id = await started(legacy, pool, session)
    alpha = backend(legacy, pool)
    announce = call(3, "announce", {})
    await answer(await alpha.request(session, announce, session_id=session_id, protocol_version=VERSION))
    for _ in range(100):
        if pool.dropped:
            break
        await asyncio.sleep(0.01)
    assert pool.dropped == 1  # list_changed, with no GET stream open
    stream = await alpha.open_get_stream(session, session_id=session_id, protocol_version=VERSION)
    await answer(await alpha.request(session, announce, session_id=session_id, protocol_version=VERSION))
    event = await asyncio.wait_for(stream.__anext__(), 5)
    assert event.message is not None and event.message["method"] == "notifications/tools/list_changed"
    await stream.aclose()
    assert pool.dropped == 1


async def test_a_cancellation_names_the_request_by_its_wire_id(
    legacy: LegacySseTestServer, pool: LegacyConnections, session: aiohttp.ClientSession
) -> None:
    session_id = await started(legacy, pool, session)
    alpha = backend(legacy, pool)
    gated = call("mine", "gated_echo", {"text": "t", "gate": "legacy-cancel"}, progress_token="pc")
    reply = await alpha.request(session, gated, session_id=session_id, protocol_version=VERSION)
    assert reply.events is not None
    await reply.events.__anext__()  # the progress event: the tool is running
    cancelled = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "mine"}}
    await alpha.notify(session, cancelled, session_id=session_id, protocol_version=VERSION)
    sent_call, sent_cancel = legacy.posts()[-2:]
    assert sent_call["params"]["name"] == "gated_echo" and isinstance(sent_call["id"], int)
    assert sent_cancel["params"]["requestId"] == sent_call["id"]
    await reply.aclose()
    legacy.open_gate("legacy-cancel")
    # Nothing in flight under that id any more: a cancellation of it is not sent.
    await alpha.notify(session, cancelled, session_id=session_id, protocol_version=VERSION)
    assert legacy.posts()[-1] == sent_cancel


async def test_a_stateless_request_gets_a_connection_of_its_own(
    legacy: LegacySseTestServer, pool: LegacyConnections, session: aiohttp.ClientSession
) -> None:
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "stateless-client", "version": "1"},
    }
    message = {
        **call(1, "echo", {"text": "alone"}),
        "params": {"name": "echo", "arguments": {"text": "alone"}, "_meta": meta},
    }
    gets = len(legacy.requests_with("GET"))
    reply = await backend(legacy, pool).request(session, message, session_id=None, protocol_version="2026-07-28")
    assert text_of((await answer(reply))[0]) == "alone"
    assert len(legacy.requests_with("GET")) == gets + 1 and len(pool) == 0
    initialize, _, sent = legacy.posts()[-3:]
    assert initialize["params"]["clientInfo"] == {"name": "stateless-client", "version": "1"}
    assert initialize["params"]["protocolVersion"] == "2025-11-25"
    assert "_meta" not in sent["params"]  # the 2026-07-28 envelope is not the legacy server's


async def test_another_process_initializes_again_with_the_clients_params(
    legacy: LegacySseTestServer, pool: LegacyConnections, session: aiohttp.ClientSession
) -> None:
    session_id = await started(legacy, pool, session)
    other = LegacyConnections()  # another replica: it holds no connection for this session
    try:
        before = len(legacy.requests)
        reply = await backend(legacy, other).request(
            session, call(4, "echo", {"text": "elsewhere"}), session_id=session_id, protocol_version=VERSION
        )
        assert text_of((await answer(reply))[0]) == "elsewhere"
        messages = [request.message() for request in legacy.requests[before:] if request.method == "POST"]
        assert messages[0]["method"] == "initialize"
        assert messages[0]["params"]["protocolVersion"] == VERSION
        assert messages[0]["params"]["clientInfo"] == {"name": "legacy-tests", "version": "7"}
        assert messages[0]["params"]["capabilities"] == {"roots": {}}
        assert messages[1]["method"] == "notifications/initialized"
        assert messages[2]["method"] == "tools/call"
        assert len(other) == 1
    finally:
        await other.aclose()


# The SDK's SSE server, stopped with a stream open, leaves its per-connection memory streams unclosed.
SDK_SHUTDOWN_LEAK = "ignore:Exception ignored in.*MemoryObject:pytest.PytestUnraisableExceptionWarning"


@pytest.mark.filterwarnings(SDK_SHUTDOWN_LEAK)
async def test_a_restarted_backend_is_initialized_again(
    pool: LegacyConnections, session: aiohttp.ClientSession
) -> None:
    with LegacySseTestServer().running() as server:
        alpha = LegacySseBackend("alpha", server.url, {}, 10, pool)
        session_id = (await alpha.initialize(session, CLIENT_PARAMS, VERSION)).session_id
        assert session_id is not None
        server.restart()
        gc.collect()  # the SDK's leak (see SDK_SHUTDOWN_LEAK) is reported here, not in a later test
        for attempt in range(2):  # whether the gateway notices the closed stream first or the POST's 404
            reply = await alpha.request(
                session, call(attempt, "echo", {"text": "again"}), session_id=session_id, protocol_version=VERSION
            )
            assert text_of((await answer(reply))[0]) == "again"
        methods = [message["method"] for message in server.posts()]
        assert methods[-4:] == ["initialize", "notifications/initialized", "tools/call", "tools/call"]
        await pool.aclose()  # before the server stops: its stream ends from this side


async def test_credentials_on_every_request_and_transport_headers_never_from_callers(
    legacy: LegacySseTestServer, pool: LegacyConnections, session: aiohttp.ClientSession
) -> None:
    before = len(legacy.requests)
    extra = {"X-Tenant-Id": "t1", "Mcp-Session-Id": "forged", "Authorization": "Bearer rg-caller-token"}
    init = await backend(legacy, pool).initialize(session, CLIENT_PARAMS, VERSION, extra_headers=extra)
    reply = await backend(legacy, pool).request(
        session,
        call(5, "echo", {"text": "x"}),
        session_id=init.session_id,
        protocol_version=VERSION,
        extra_headers=extra,
    )
    await answer(reply)
    for request in legacy.requests[before:]:
        assert request.headers["authorization"] == UPSTREAM_SECRET  # auth_data wins over a caller's value
        assert request.headers["x-tenant-id"] == "t1"
        assert "mcp-session-id" not in request.headers
        assert "rg-caller-token" not in orjson.dumps(request.headers).decode()


async def test_silence_longer_than_the_timeout_is_an_inactivity_timeout(
    legacy: LegacySseTestServer, pool: LegacyConnections, session: aiohttp.ClientSession
) -> None:
    alpha = backend(legacy, pool, timeout_s=0.5)
    session_id = (await alpha.initialize(session, CLIENT_PARAMS, VERSION)).session_id
    ticking = call(6, "ticking_echo", {"ticks": 5, "interval_s": 0.2, "text": "ticked"}, progress_token=6)
    reply = await alpha.request(session, ticking, session_id=session_id, protocol_version=VERSION)
    assert text_of((await answer(reply))[0]) == "ticked"  # 1 s in all, never silent for 0.5 s
    silent = call(7, "sleep_then_echo", {"seconds": 1.5, "text": "never"}, progress_token=7)
    reply = await alpha.request(session, silent, session_id=session_id, protocol_version=VERSION)
    with pytest.raises(BackendError) as caught:
        await answer(reply)
    assert caught.value.kind == "timeout"


async def test_delete_closes_the_connection_and_shutdown_closes_all(
    legacy: LegacySseTestServer, session: aiohttp.ClientSession
) -> None:
    pool = LegacyConnections()
    first = await started(legacy, pool, session)
    await started(legacy, pool, session)
    assert len(pool) == 2
    assert await backend(legacy, pool).delete_session(session, first) is True
    assert len(pool) == 1
    assert await backend(legacy, pool).delete_session(session, first) is False  # nothing held any more
    await pool.aclose()
    assert len(pool) == 0
    with pytest.raises(BackendError):
        await started(legacy, pool, session)


async def test_idle_connections_expire_and_the_table_is_bounded(
    legacy: LegacySseTestServer, session: aiohttp.ClientSession
) -> None:
    pool = LegacyConnections(max_connections=2, idle_seconds=0.3)
    try:
        ids = [await started(legacy, pool, session) for _ in range(3)]
        assert len(pool) == 2  # the least recently used was closed
        key = ("alpha", legacy_session_id.decode(ids[0])[0])
        assert pool.held(key) is None
        deadline = time.monotonic() + 5
        while len(pool) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert len(pool) == 0
        # An expired session still works: it is opened (and initialized) again.
        reply = await backend(legacy, pool).request(
            session, call(8, "echo", {"text": "back"}), session_id=ids[0], protocol_version=VERSION
        )
        assert text_of((await answer(reply))[0]) == "back"
    finally:
        await pool.aclose()


async def test_an_id_from_another_transport_is_a_404(
    legacy: LegacySseTestServer, pool: LegacyConnections, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(BackendError) as caught:
        await backend(legacy, pool).request(
            session, call(9, "echo", {"text": "x"}), session_id="a-streamable-session", protocol_version=VERSION
        )
    assert caught.value.status == 404


# Servers that misbehave


@pytest.fixture
async def elsewhere() -> AsyncIterator[MisbehavingSse]:
    async with MisbehavingSse() as server:
        yield server


@pytest.mark.parametrize(
    ("path", "status", "kind"),
    [
        ("/other-origin", None, "malformed"),
        ("/other-port", None, "malformed"),
        ("/redirect", 307, "http_status"),
        ("/no-endpoint", None, "timeout"),
        ("/json", 200, "content_type"),
    ],
)
async def test_a_bad_sse_url_is_refused_before_anything_is_posted(
    path: str,
    status: int | None,
    kind: str,
    elsewhere: MisbehavingSse,
    pool: LegacyConnections,
    session: aiohttp.ClientSession,
) -> None:
    alpha = LegacySseBackend("alpha", elsewhere.url + path, {"Authorization": UPSTREAM_SECRET}, 0.5, pool)
    with pytest.raises(BackendError) as caught:
        await alpha.initialize(session, CLIENT_PARAMS, VERSION)
    assert (caught.value.status, caught.value.kind) == (status, kind)
    assert "legacy-secret" not in str(caught.value) and "attacker" not in str(caught.value)
    assert elsewhere.posts == 0 and len(pool) == 0


async def test_a_closed_port_fails_fast(pool: LegacyConnections, session: aiohttp.ClientSession) -> None:
    alpha = LegacySseBackend("alpha", f"http://127.0.0.1:{free_port()}/sse", {}, 30, pool)
    started_at = time.monotonic()
    with pytest.raises(BackendError) as caught:
        await alpha.initialize(session, CLIENT_PARAMS, VERSION)
    assert time.monotonic() - started_at < 5
    assert caught.value.kind == "connect"


def test_the_session_id_carries_bounded_client_params() -> None:
    connection_id = legacy_session_id.new_connection_id()
    big = {"capabilities": {"x": "y" * 400}, "clientInfo": {"name": "n" * 400, "version": "1"}}
    for params, expected in [
        (CLIENT_PARAMS, CLIENT_PARAMS),
        (
            {**CLIENT_PARAMS, "clientInfo": {"name": "n" * 400, "version": "1"}},
            {**CLIENT_PARAMS, "clientInfo": legacy_session_id.DEFAULT_CLIENT_INFO},
        ),
        (big, {"capabilities": {}, "clientInfo": legacy_session_id.DEFAULT_CLIENT_INFO}),
        ({}, {"capabilities": {}, "clientInfo": legacy_session_id.DEFAULT_CLIENT_INFO}),
    ]:
        session_id = legacy_session_id.encode(connection_id, params)
        assert len(session_id) < 400
        assert legacy_session_id.decode(session_id) == (connection_id, expected)
    for foreign in ("abc", "l1.short.x", "l2." + connection_id + "."):
        with pytest.raises(legacy_session_id.NotLegacy):
            legacy_session_id.decode(foreign)
