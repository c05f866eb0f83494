"""Real MCP servers for tests: the official `mcp` SDK's `MCPServer` over Streamable HTTP, on a free port.

The gateway's MCP side is tested against what real clients and servers do, not against a mock of our
own reading of the spec. Each `McpTestServer` is an `MCPServer` with a fixed set of tools, wrapped in a
small ASGI layer that records the headers of every request (to prove what the gateway sends, and that
the caller's Relaygate token never arrives) and, optionally, answers 401 unless static headers are
present (an upstream credential from `auth_data`). It runs under uvicorn on a background thread with
its own event loop, so sync and async tests can use it alike:

    with McpTestServer(required_headers={"Authorization": "Bearer upstream-secret"}).running() as server:
        server.url          # http://127.0.0.1:PORT/mcp
        server.requests     # [RecordedRequest(method, headers), ...]

Servers: `alpha_server()` (the full tool set), `beta_server()` (overlapping names with other answers,
for virtual aggregation), and either with `stateless=True` (no sessions) or `json_response=True`
(one JSON answer instead of an SSE stream). `McpTestServer("paged", tools=7, page_size=3)` is the
SDK's low-level `Server` listing `{prefix}0..{prefix}6` three to a page (`nextCursor` "offset-3", ...;
an unknown cursor is -32602), each tool answering `{server}:{tool}` (paginated listings, which the
high-level `MCPServer` never sends).

Tools of `alpha_server()`:
- `add(a, b)`, `echo(text)`;
- `sleep_then_echo(seconds, text)`: a progress notification, silence for `seconds`, another progress
  notification, then `text` (a long call that streams, and a silence longer than an inactivity timeout);
- `ticking_echo(ticks, interval_s, text)`: a progress notification every `interval_s`, then `text`
  (longer in total than an inactivity timeout, but never silent for that long);
- `announce()`: sends `notifications/tools/list_changed` on the session's GET stream;
- `gated_echo(text, gate)`: a progress notification, then waits until the test calls
  `server.open_gate(gate)`; proves an answer is relayed incrementally without depending on timing;
- `fail(message)`: a result with `isError: true`;
- `LONG_TOOL_NAME` (100 characters) and `files.read` (dotted): names a gateway must keep callable;
- `weather(city)`: a result with `structuredContent`.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Self, TypedDict

import anyio
import orjson
import uvicorn
from mcp import types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MCP_PATH = "/mcp"
LONG_TOOL_NAME = "long_" + "x" * 90 + "_tool"  # 100 characters
DOTTED_TOOL_NAME = "files.read"
GATE_WAIT_SECONDS = 30.0  # a gate nobody opens ends its call instead of hanging the server's shutdown

assert len(LONG_TOOL_NAME) == 100


class Weather(TypedDict):
    """The structured answer of `weather` (a TypedDict return makes the SDK send structuredContent)."""

    city: str
    celsius: float


@dataclass
class RecordedRequest:
    """What one HTTP request to the server carried: its method, headers (names lower-case) and body."""

    method: str
    headers: dict[str, str]
    body: bytearray = field(default_factory=bytearray)

    def message(self) -> Any:
        """The body as JSON (a JSON-RPC message), or None when there was none."""
        return orjson.loads(self.body) if self.body else None


@dataclass
class _Gates:
    """Named events a tool waits on and a test opens (threading events: the test runs on another loop)."""

    events: dict[str, threading.Event] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, name: str) -> threading.Event:
        with self.lock:
            return self.events.setdefault(name, threading.Event())


class _RecordHeaders:
    """ASGI layer in front of the SDK's app: records each request's headers, refuses missing credentials."""

    def __init__(self, app: ASGIApp, requests: list[RecordedRequest], required: Mapping[str, str]) -> None:
        self.app = app
        self.requests = requests
        self.required = {name.lower(): value for name, value in required.items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        record = RecordedRequest(scope["method"], headers)
        self.requests.append(record)
        if any(headers.get(name) != value for name, value in self.required.items()):
            await send({"type": "http.response.start", "status": 401, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"missing upstream credentials"})
            return

        async def recording_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                record.body += message.get("body", b"")
            return message

        await self.app(scope, recording_receive, send)


def alpha_server(gates: _Gates | None = None) -> MCPServer[Any]:
    """The full tool set (see the module docstring)."""
    server: MCPServer[Any] = MCPServer("alpha", version="1.0.0", log_level="WARNING")
    gates = gates or _Gates()

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @server.tool()
    def echo(text: str) -> str:
        """Echo the text back."""
        return text

    @server.tool()
    async def sleep_then_echo(seconds: float, text: str, ctx: Context) -> str:
        """Report progress, stay silent for `seconds`, report progress again, then echo."""
        await ctx.report_progress(0, seconds, "started")
        await anyio.sleep(seconds)
        await ctx.report_progress(seconds, seconds, "done")
        return text

    @server.tool()
    async def ticking_echo(ticks: int, interval_s: float, text: str, ctx: Context) -> str:
        """Report progress every `interval_s`, `ticks` times, then echo: long, but never silent for long."""
        for tick in range(ticks):
            await ctx.report_progress(tick, ticks)
            await anyio.sleep(interval_s)
        return text

    @server.tool()
    async def announce(ctx: Context) -> str:
        """Send notifications/tools/list_changed outside this request: it goes to the session's GET stream."""
        await ctx.session.send_tool_list_changed()
        return "announced"

    @server.tool()
    async def gated_echo(text: str, gate: str, ctx: Context) -> str:
        """Report progress, then wait until the test opens `gate`, then echo."""
        await ctx.report_progress(0, 1, "waiting for the gate")
        event = gates.get(gate)
        opened = await anyio.to_thread.run_sync(event.wait, GATE_WAIT_SECONDS)
        if not opened:
            raise ToolError(f"gate {gate} was never opened")
        return text

    @server.tool()
    def fail(message: str) -> str:
        """Fail: the SDK answers a result with isError: true carrying `message`."""
        raise ToolError(message)

    @server.tool(name=LONG_TOOL_NAME)
    def long_named(text: str) -> str:
        """A tool whose name is 100 characters long."""
        return f"long:{text}"

    @server.tool(name=DOTTED_TOOL_NAME)
    def files_read(path: str) -> str:
        """A tool with a dot in its name."""
        return f"contents of {path}"

    @server.tool()
    def weather(city: str) -> Weather:
        """A structured answer (structuredContent plus its text form)."""
        return Weather(city=city, celsius=21.5)

    return server


def beta_server() -> MCPServer[Any]:
    """Tool names that overlap alpha's (`echo`, `add`) with different answers, and one of its own."""
    server: MCPServer[Any] = MCPServer("beta", version="2.0.0", log_level="WARNING")

    @server.tool()
    def echo(text: str) -> str:
        """Echo with a prefix, so a test can tell which server answered."""
        return f"beta:{text}"

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers, plus 1000 (a different answer from alpha's add)."""
        return a + b + 1000

    @server.tool()
    def multiply(a: int, b: int) -> int:
        """Only beta has this tool."""
        return a * b

    return server


def paged_server(name: str, count: int, page_size: int, prefix: str = "tool_") -> Server[Any]:
    """`count` tools listed `page_size` to a page (see the module docstring)."""
    names = [f"{prefix}{index}" for index in range(count)]

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        cursor = params.cursor if params is not None else None
        start = 0
        if cursor is not None:
            if not cursor.startswith("offset-") or not cursor[7:].isdigit():
                raise MCPError(-32602, f"unknown cursor {cursor!r}")
            start = int(cursor[7:])
        end = start + page_size
        tools = [
            types.Tool(name=tool, description=f"{name} {tool}", input_schema={"type": "object"})
            for tool in names[start:end]
        ]
        return types.ListToolsResult(tools=tools, next_cursor=f"offset-{end}" if end < count else None)

    async def call_tool(ctx: ServerRequestContext[Any], params: types.CallToolRequestParams) -> types.CallToolResult:
        if params.name not in names:
            raise MCPError(-32602, f"Unknown tool: {params.name}")
        return types.CallToolResult(content=[types.TextContent(type="text", text=f"{name}:{params.name}")])

    return Server(name, version="1.0.0", on_list_tools=list_tools, on_call_tool=call_tool)


class McpTestServer:
    """One SDK server served by uvicorn on a background thread (see the module docstring)."""

    def __init__(
        self,
        kind: str = "alpha",
        *,
        required_headers: Mapping[str, str] | None = None,
        stateless: bool = False,
        json_response: bool = False,
        tools: int = 7,
        page_size: int = 3,
        prefix: str = "tool_",
    ) -> None:
        self.kind = kind
        self.paging = (tools, page_size, prefix)
        self.required_headers = dict(required_headers or {})
        self.stateless = stateless
        self.json_response = json_response
        self.requests: list[RecordedRequest] = []
        self.port = 0
        self._gates = _Gates()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The MCP endpoint (`http://127.0.0.1:PORT/mcp`)."""
        return f"http://127.0.0.1:{self.port}{MCP_PATH}"

    def open_gate(self, name: str) -> None:
        """Let a `gated_echo` call waiting on `name` (or a later one) finish."""
        self._gates.get(name).set()

    def requests_with(self, method: str) -> list[RecordedRequest]:
        """The recorded requests of one HTTP method."""
        return [request for request in self.requests if request.method == method]

    def _app(self) -> ASGIApp:
        mcp: MCPServer[Any] | Server[Any]
        if self.kind == "paged":
            mcp = paged_server(f"paged-{self.paging[2]}", *self.paging)
        else:
            mcp = alpha_server(self._gates) if self.kind == "alpha" else beta_server()
        app = mcp.streamable_http_app(
            streamable_http_path=MCP_PATH,
            stateless_http=self.stateless,
            json_response=self.json_response,
        )
        return _RecordHeaders(app, self.requests, self.required_headers)

    def start(self) -> Self:
        """Bind a free port (the same one again after a `stop()`) and serve until `stop()`; returns once
        uvicorn accepts connections."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))  # 0 the first time; a restart takes the same port again
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app(),
            loop="asyncio",
            lifespan="on",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        server = self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=_serve, args=(server, sock), name=f"mcp-{self.kind}-{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                raise RuntimeError(f"the {self.kind} MCP server did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        """Stop serving (open streams are cut after a one-second grace) and join the thread."""
        for event in self._gates.events.values():
            event.set()  # no tool stays parked on a gate
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(15)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(5)
        self._server = None
        self._thread = None

    @contextmanager
    def running(self) -> Iterator[Self]:
        self.start()
        try:
            yield self
        finally:
            self.stop()


def _serve(server: uvicorn.Server, sock: socket.socket) -> None:
    """The thread's body: uvicorn on its own asyncio loop, then the socket closed."""
    try:
        asyncio.run(server.serve(sockets=[sock]))
    finally:
        sock.close()
