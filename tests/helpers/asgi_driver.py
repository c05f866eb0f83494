"""Drive the gateway's raw ASGI app from the test's own event loop: no server, no socket, no thread.

`async with AsgiDriver(build_app(settings)) as driver:` runs the lifespan startup (a failed startup
raises `StartupFailed` with the app's message) and, on exit, the shutdown (the log sink flushes).
Requests go straight into the ASGI callable:

- `await driver.request("POST", "/api/llm/chat/completions", json=..., token=...)` -> `AsgiResponse`
  (status, headers, body, and the body `chunks` exactly as the app sent them);
- `async with driver.stream(...) as answer:` returns once the response has started; iterate
  `answer.chunks()` as the app sends them, or `await answer.disconnect()` to leave mid-stream (the app's
  `receive()` then says `http.disconnect`, as uvicorn's does, and later sends are dropped as uvicorn drops them);
- `driver.http_client()` is an `httpx2.AsyncClient` over `AsgiTransport` (streaming, unlike httpx's own
  ASGITransport, which waits for the whole body), so the real `openai`/`anthropic` SDKs run in-process:
  `AsyncOpenAI(api_key=token, base_url=driver.base_url + "/api/llm", http_client=driver.http_client())`.

The request body is delivered as one `http.request` message (or in the given `body_chunks`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import urlsplit

import httpx2
import orjson

from relaygate.http.types import Message, Scope

ASGIApp = Any  # the raw ASGI callable: `(scope, receive, send) -> Awaitable[None]`
BASE_URL = "http://gateway.test"


class StartupFailed(RuntimeError):
    """The app answered `lifespan.startup.failed`; the message is the app's."""


@dataclass
class AsgiResponse:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    chunks: list[bytes] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        wanted = name.lower().encode("latin-1")
        for key, value in self.headers:
            if key.lower() == wanted:
                return value.decode("latin-1")
        return None

    def json(self) -> Any:
        return orjson.loads(self.body)


class AsgiStream:
    """One request in flight: the response head once started, then its body chunks as the app sends them."""

    def __init__(self, app: ASGIApp, scope: Scope, body_chunks: list[bytes]) -> None:
        self._app = app
        self._scope = scope
        self._body = list(body_chunks) or [b""]
        self._disconnected = asyncio.Event()
        self._started: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._chunks: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.complete = False  # the app sent its last body message
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self._task = asyncio.create_task(self._run(), name=f"asgi {scope['method']} {scope['path']}")

    async def _receive(self) -> Message:
        if self._body:
            piece = self._body.pop(0)
            return {"type": "http.request", "body": piece, "more_body": bool(self._body)}
        await self._disconnected.wait()  # as a server does: nothing more until the client leaves
        return {"type": "http.disconnect"}

    async def _send(self, message: Message) -> None:
        if self._disconnected.is_set():
            return  # uvicorn drops what is sent to a client that left
        if message["type"] == "http.response.start":
            self._started.set_result(message)
        elif message["type"] == "http.response.body":
            piece = bytes(message.get("body", b""))
            if piece:
                self._chunks.put_nowait(piece)
            if not message.get("more_body", False):
                self.complete = True
                self._chunks.put_nowait(None)

    async def _run(self) -> None:
        try:
            await self._app(self._scope, self._receive, self._send)
        except BaseException as exc:
            if not self._started.done():
                self._started.set_exception(exc)
            raise
        finally:
            if not self._started.done():
                self._started.set_exception(AssertionError("the app returned without starting a response"))
            if not self.complete:
                self._chunks.put_nowait(None)

    async def started(self) -> Self:
        message = await self._started
        self.status = int(message["status"])
        self.headers = [(bytes(k), bytes(v)) for k, v in message.get("headers", [])]
        return self

    async def chunks(self) -> AsyncIterator[bytes]:
        while (piece := await self._chunks.get()) is not None:
            yield piece

    async def read(self) -> AsgiResponse:
        pieces = [piece async for piece in self.chunks()]
        await self._task
        return AsgiResponse(self.status, self.headers, b"".join(pieces), pieces)

    async def disconnect(self, timeout: float = 10.0) -> None:
        """Leave: the app's `receive()` answers `http.disconnect`; wait for the app to finish."""
        self._disconnected.set()
        await asyncio.wait_for(asyncio.shield(self._task), timeout)

    async def aclose(self) -> None:
        if not self._task.done():
            self._disconnected.set()
            try:
                await asyncio.wait_for(self._task, 10.0)
            except asyncio.CancelledError:
                pass


def http_scope(method: str, path: str, headers: Iterable[tuple[bytes, bytes]], query: bytes = b"") -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("latin-1"),
        "query_string": query,
        "root_path": "",
        "headers": list(headers),
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
        "state": {},
    }


class AsgiDriver:
    """Lifespan and requests of one ASGI app, in the running event loop (see the module docstring)."""

    base_url = BASE_URL

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._lifespan: asyncio.Task[None] | None = None
        self._to_app: asyncio.Queue[Message] = asyncio.Queue()
        self._from_app: asyncio.Queue[Message] = asyncio.Queue()

    async def __aenter__(self) -> Self:
        async def receive() -> Message:
            return await self._to_app.get()

        async def send(message: Message) -> None:
            self._from_app.put_nowait(message)

        self._lifespan = asyncio.create_task(self.app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send))
        self._to_app.put_nowait({"type": "lifespan.startup"})
        answer = await self._from_app.get()
        if answer["type"] != "lifespan.startup.complete":
            await self._lifespan
            raise StartupFailed(answer.get("message", ""))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._lifespan is not None
        self._to_app.put_nowait({"type": "lifespan.shutdown"})
        answer = await self._from_app.get()
        assert answer["type"] == "lifespan.shutdown.complete", answer
        await self._lifespan

    @staticmethod
    def _head(
        path: str, headers: Mapping[str, str] | None, token: str | None, json: Any, body: bytes | None
    ) -> tuple[str, bytes, list[tuple[bytes, bytes]], bytes]:
        all_headers = {k.lower(): v for k, v in (headers or {}).items()}
        if token is not None:
            all_headers["authorization"] = f"Bearer {token}"
        if json is not None:
            body = orjson.dumps(json)
            all_headers.setdefault("content-type", "application/json")
        body = body or b""
        all_headers.setdefault("content-length", str(len(body)))
        all_headers.setdefault("host", urlsplit(BASE_URL).netloc)
        plain, _, query = path.partition("?")
        encoded = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in all_headers.items()]
        return plain, query.encode("latin-1"), encoded, body

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        token: str | None = None,
        json: Any = None,
        body: bytes | None = None,
    ) -> AsyncIterator[AsgiStream]:
        plain, query, encoded, data = self._head(path, headers, token, json, body)
        answer = AsgiStream(self.app, http_scope(method, plain, encoded, query), [data])
        try:
            yield await answer.started()
        finally:
            await answer.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        token: str | None = None,
        json: Any = None,
        body: bytes | None = None,
    ) -> AsgiResponse:
        async with self.stream(method, path, headers=headers, token=token, json=json, body=body) as answer:
            return await answer.read()

    def http_client(self, **options: Any) -> httpx2.AsyncClient:
        """An `httpx2.AsyncClient` whose requests go into this app (for the openai/anthropic SDKs)."""
        return httpx2.AsyncClient(transport=AsgiTransport(self.app), base_url=self.base_url, **options)


class _Body(httpx2.AsyncByteStream):
    def __init__(self, answer: AsgiStream) -> None:
        self._answer = answer

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for piece in self._answer.chunks():
            yield piece

    async def aclose(self) -> None:
        await self._answer.aclose()  # a client that stops reading early has left


class AsgiTransport(httpx2.AsyncBaseTransport):
    """httpx2 requests straight into an ASGI app; the response streams as the app sends it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        body = b"".join([piece async for piece in request.stream])  # type: ignore[union-attr]
        headers = [(k.lower(), v) for k, v in request.headers.raw]
        scope = http_scope(request.method, request.url.path, headers, request.url.query)
        answer = await AsgiStream(self.app, scope, [body]).started()
        return httpx2.Response(answer.status, headers=answer.headers, stream=_Body(answer))
