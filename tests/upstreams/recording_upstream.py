"""An HTTP upstream that records exactly what reached it and answers as told (aiohttp, own thread).

Every request is recorded (`upstream.seen`) with its raw request target (path and query as they
arrived on the wire, percent-encoding untouched), headers in order, body size and SHA-256, and
whether the body arrived complete. Answers:

- `GET /download/{n}`: `n` bytes (a repeating pattern), streamed in 64 KiB pieces.
- `GET /sse/{n}?interval=S`: `n` server-sent events, `S` seconds apart.
- `GET /gzip`: the fixed bytes `GZIP_BODY` with `Content-Encoding: gzip`.
- anything else: JSON `{"upstream", "method", "target", "body_size", "body_sha256"}`.

Behaviour (thread-safe, cleared by `reset()`): `answer(...)` sets the standing behaviour for every
request; `answer_next(...)` queues one-offs that are used first. A behaviour is a status, extra
headers, a delay before answering, or `drop=True` (the connection is closed without an answer).
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import ssl
import threading
import time
from dataclasses import dataclass, field

import orjson
from aiohttp import web

from tests.upstreams.aiohttp_server import AiohttpServer

PATTERN = bytes(range(256)) * 256  # 64 KiB
KEEP_BODY_LIMIT = 2 << 20
GZIP_BODY = gzip.compress(b'{"gzipped": true, "filler": "' + b"relaygate " * 200 + b'"}', mtime=0)


def pattern_bytes(size: int) -> bytes:
    """The first `size` bytes `/download/{size}` sends."""
    return (PATTERN * (size // len(PATTERN) + 1))[:size]


@dataclass(frozen=True)
class Behaviour:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False


@dataclass
class Seen:
    """One request as it arrived."""

    method: str
    target: str  # raw request target: path + "?" + query, exactly as sent
    headers: list[tuple[str, str]]
    body_size: int = 0
    body_sha256: str = ""
    body: bytes = b""  # kept up to KEEP_BODY_LIMIT
    complete: bool = False  # the whole body arrived
    at: float = 0.0  # time.monotonic() on arrival

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]

    @property
    def query(self) -> str:
        return self.target.partition("?")[2]

    def header(self, name: str) -> str | None:
        values = self.header_values(name)
        return values[0] if values else None

    def header_values(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


class RecordingUpstream(AiohttpServer):
    """One recording server on a free port of `host` (HTTPS when given an SSL context)."""

    client_max_size = 1 << 40

    def __init__(
        self, name: str = "upstream", ssl_context: ssl.SSLContext | None = None, host: str = "127.0.0.1"
    ) -> None:
        self.name = name
        self.host = host
        self.ssl_context = ssl_context
        self._lock = threading.Lock()
        self._seen: list[Seen] = []
        self._standing = Behaviour()
        self._queued: list[Behaviour] = []

    # -- behaviour and recordings -----------------------------------------------------------------

    def answer(
        self, status: int = 200, *, headers: dict[str, str] | None = None, delay: float = 0.0, drop: bool = False
    ) -> None:
        """The standing behaviour for every request without a queued one-off."""
        with self._lock:
            self._standing = Behaviour(status, dict(headers or {}), delay, drop)

    def answer_next(
        self,
        status: int = 200,
        *,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
        drop: bool = False,
        count: int = 1,
    ) -> None:
        """Queue `count` one-off behaviours, used before the standing one."""
        with self._lock:
            self._queued.extend([Behaviour(status, dict(headers or {}), delay, drop)] * count)

    def reset(self) -> None:
        with self._lock:
            self._seen.clear()
            self._queued.clear()
            self._standing = Behaviour()

    @property
    def seen(self) -> list[Seen]:
        with self._lock:
            return list(self._seen)

    @property
    def count(self) -> int:
        with self._lock:
            return len(self._seen)

    def last(self) -> Seen:
        seen = self.seen
        assert seen, f"upstream {self.name} received no request"
        return seen[-1]

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Seen]:
        """Block until at least `count` requests were recorded (their bodies read or failed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = [s for s in self.seen if s.at]
            if len(seen) >= count:
                return seen
            time.sleep(0.01)
        raise AssertionError(f"upstream {self.name} saw {self.count} requests, expected {count}")

    def _behaviour(self) -> Behaviour:
        with self._lock:
            return self._queued.pop(0) if self._queued else self._standing

    # -- HTTP -------------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers]
        seen = Seen(request.method, request.raw_path, headers)
        with self._lock:
            self._seen.append(seen)
        digest = hashlib.sha256()
        kept: list[bytes] = []
        try:
            async for chunk in request.content.iter_any():
                digest.update(chunk)
                seen.body_size += len(chunk)
                if seen.body_size <= KEEP_BODY_LIMIT:
                    kept.append(chunk)
            seen.complete = True
        except Exception:  # the sender gave up mid-body
            seen.complete = False
        seen.body = b"".join(kept)
        seen.body_sha256 = digest.hexdigest()
        seen.at = time.monotonic()
        behaviour = self._behaviour()
        if behaviour.delay:
            await asyncio.sleep(behaviour.delay)
        if behaviour.drop or not seen.complete:
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError()
        path = request.path
        if path.startswith("/download/") and behaviour.status == 200:
            return await self._download(request, int(path.rsplit("/", 1)[1]))
        if path.startswith("/sse/") and behaviour.status == 200:
            return await self._sse(request, int(path.rsplit("/", 1)[1]), float(request.query.get("interval", "0")))
        if path == "/gzip" and behaviour.status == 200:
            return web.Response(
                body=GZIP_BODY, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}
            )
        payload = {
            "upstream": self.name,
            "method": seen.method,
            "target": seen.target,
            "body_size": seen.body_size,
            "body_sha256": seen.body_sha256,
        }
        return web.Response(
            status=behaviour.status,
            body=orjson.dumps(payload),
            content_type="application/json",
            headers=behaviour.headers,
        )

    async def _download(self, request: web.Request, size: int) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.content_length = size
        await response.prepare(request)
        sent = 0
        while sent < size:
            piece = PATTERN[: min(len(PATTERN), size - sent)]
            await response.write(piece)
            sent += len(piece)
        await response.write_eof()
        return response

    async def _sse(self, request: web.Request, events: int, interval: float) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        for index in range(events):
            if index:
                await asyncio.sleep(interval)
            await response.write(f"id: {index}\ndata: event {index}\n\n".encode())
        await response.write_eof()
        return response

    def _thread_name(self) -> str:
        return f"recording-{self.name}"
