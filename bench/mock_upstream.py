"""A fast mock OpenAI upstream: raw asyncio + uvloop protocol server, HTTP/1.1 keep-alive.

`POST .../chat/completions` answers a ~500-byte `chat.completion` JSON with usage, or, when the body
has `"stream": true`, a chunked SSE stream of 20 content chunks, a usage chunk (only if
`stream_options.include_usage` is true) and `data: [DONE]`. Events are written back to back (burst)
or with a pause of N ms between them (paced). The pace is set at start (`--pace-ms`, env
`MOCK_PACE_MS`) and can be changed at run time with `POST /__bench/pace?ms=N`, so one mock serves
every scenario of a benchmark run. `GET /health` answers 200.

Run: `python bench/mock_upstream.py --port 9000 [--pace-ms 2]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time
from collections.abc import Callable
from typing import Any, cast

try:
    import orjson

    def _loads(data: bytes) -> Any:
        return orjson.loads(data)

    def _dumps(obj: Any) -> bytes:
        return orjson.dumps(obj)

except ImportError:  # pragma: no cover - orjson is a relaygate dependency
    import json

    def _loads(data: bytes) -> Any:
        return json.loads(data)

    def _dumps(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()


CONTENT_CHUNKS = 20
MAX_HEADER = 64 * 1024
MAX_BODY = 16 * 1024 * 1024
CREATED = 1732147200
WORDS = (
    "The sea keeps its own time, folding light into every wave and returning it to the shore as a "
    "quiet promise that tomorrow the tide will come back again."
).split(" ")[:CONTENT_CHUNKS]

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 413: "Payload Too Large"}


def completion_body(model: str) -> bytes:
    """The non-streaming chat.completion JSON (about 500 bytes)."""
    return _dumps(
        {
            "id": "chatcmpl-bench-0001",
            "object": "chat.completion",
            "created": CREATED,
            "model": model,
            "system_fingerprint": "fp_bench0001",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": " ".join(WORDS),
                        "refusal": None,
                    },
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": 27,
                "completion_tokens": CONTENT_CHUNKS,
                "total_tokens": 27 + CONTENT_CHUNKS,
                "prompt_tokens_details": {"cached_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0},
            },
        }
    )


def stream_events(model: str, include_usage: bool) -> list[bytes]:
    """The SSE events of one stream, each already framed as one HTTP chunk."""
    events: list[bytes] = []
    for i, word in enumerate(WORDS):
        delta: dict[str, Any] = {"content": word if i == 0 else " " + word}
        if i == 0:
            delta = {"role": "assistant", **delta}
        chunk: dict[str, Any] = {
            "id": "chatcmpl-bench-0001",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": model,
            "system_fingerprint": "fp_bench0001",
            "choices": [
                {
                    "index": 0,
                    "delta": delta,
                    "logprobs": None,
                    "finish_reason": "stop" if i == len(WORDS) - 1 else None,
                }
            ],
        }
        if include_usage:
            chunk["usage"] = None
        events.append(b"data: " + _dumps(chunk) + b"\n\n")
    if include_usage:
        usage_chunk = {
            "id": "chatcmpl-bench-0001",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": model,
            "system_fingerprint": "fp_bench0001",
            "choices": [],
            "usage": {
                "prompt_tokens": 27,
                "completion_tokens": len(WORDS),
                "total_tokens": 27 + len(WORDS),
            },
        }
        events.append(b"data: " + _dumps(usage_chunk) + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return [b"%x\r\n%s\r\n" % (len(e), e) for e in events]


def response_head(status: int, headers: list[tuple[str, str]]) -> bytes:
    """An HTTP/1.1 status line plus headers."""
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}"]
    lines += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


STREAM_HEAD = response_head(
    200,
    [
        ("content-type", "text/event-stream; charset=utf-8"),
        ("cache-control", "no-cache"),
        ("x-request-id", "req_bench"),
        ("transfer-encoding", "chunked"),
    ],
)
LAST_CHUNK = b"0\r\n\r\n"


class MockState:
    """Per-server settings and caches shared by all connections."""

    def __init__(self, pace_ms: float) -> None:
        self.pace_s = pace_ms / 1000.0
        self._json: dict[str, bytes] = {}
        self._streams: dict[tuple[str, bool], list[bytes]] = {}

    def json_response(self, model: str) -> bytes:
        """Head and body of the non-streaming answer for `model` (cached)."""
        cached = self._json.get(model)
        if cached is None:
            body = completion_body(model)
            head = response_head(
                200,
                [
                    ("content-type", "application/json"),
                    ("x-request-id", "req_bench"),
                    ("content-length", str(len(body))),
                ],
            )
            cached = self._json[model] = head + body
        return cached

    def stream(self, model: str, include_usage: bool) -> list[bytes]:
        """The chunk-framed events for `model` (cached)."""
        key = (model, include_usage)
        cached = self._streams.get(key)
        if cached is None:
            cached = self._streams[key] = stream_events(model, include_usage)
        return cached


def simple_response(status: int, body: bytes, ctype: str = "application/json") -> bytes:
    """A complete small response with Content-Length."""
    return response_head(status, [("content-type", ctype), ("content-length", str(len(body)))]) + body


def error_json(status: int, message: str) -> bytes:
    """An OpenAI-shaped error response."""
    body = _dumps({"error": {"message": message, "type": "invalid_request_error", "code": None}})
    return simple_response(status, body)


class Request:
    """One parsed request: method, target, whether to keep the connection, body."""

    __slots__ = ("method", "target", "keep_alive", "body")

    def __init__(self, method: bytes, target: bytes, keep_alive: bool, body: bytes) -> None:
        self.method = method
        self.target = target
        self.keep_alive = keep_alive
        self.body = body


class ParseError(Exception):
    """The bytes are not an HTTP/1.1 request we can answer."""


def _dechunk(buf: bytes | bytearray, start: int) -> tuple[bytes, int] | None:
    """Decode a chunked body from `start`; (body, end offset) or None when incomplete."""
    parts: list[bytes] = []
    pos = start
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        try:
            size = int(bytes(buf[pos:eol]).split(b";", 1)[0].strip(), 16)
        except ValueError as exc:
            raise ParseError("bad chunk size") from exc
        pos = eol + 2
        if size == 0:
            end = buf.find(b"\r\n\r\n", pos - 2)  # trailers (usually none) end with an empty line
            if end < 0:
                return None
            return b"".join(parts), end + 4
        if len(buf) < pos + size + 2:
            return None
        parts.append(bytes(buf[pos : pos + size]))
        pos += size + 2


def parse_request(buf: bytearray) -> tuple[Request, int] | None:
    """Parse one request from the front of `buf`; (request, bytes used) or None when incomplete."""
    head_end = buf.find(b"\r\n\r\n")
    if head_end < 0:
        if len(buf) > MAX_HEADER:
            raise ParseError("header too large")
        return None
    head = bytes(buf[:head_end])
    first, _, rest = head.partition(b"\r\n")
    try:
        method, target, version = first.split(b" ", 2)
    except ValueError as exc:
        raise ParseError("bad request line") from exc
    keep_alive = version == b"HTTP/1.1"
    length = 0
    chunked = False
    if rest:
        for line in rest.split(b"\r\n"):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value.strip())
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                token = value.strip().lower()
                if token == b"close":
                    keep_alive = False
                elif token == b"keep-alive":
                    keep_alive = True
    body_start = head_end + 4
    if chunked:
        decoded = _dechunk(buf, body_start)
        if decoded is None:
            return None
        body, end = decoded
        return Request(method, target, keep_alive, body), end
    if length > MAX_BODY:
        raise ParseError("body too large")
    end = body_start + length
    if len(buf) < end:
        return None
    return Request(method, target, keep_alive, bytes(buf[body_start:end])), end


class MockProtocol(asyncio.Protocol):
    """One client connection: parse requests in order, answer each, keep the connection open."""

    def __init__(self, state: MockState) -> None:
        self.state = state
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.busy = False  # a paced stream is being written
        self.timer: asyncio.TimerHandle | None = None
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.busy:
            self.process()

    def process(self) -> None:
        """Answer every complete request in the buffer (stops while a paced stream runs)."""
        while self.transport is not None and not self.busy and not self.closing:
            try:
                parsed = parse_request(self.buf)
            except (ParseError, ValueError):
                self.transport.write(error_json(400, "malformed request"))
                self.transport.close()
                self.closing = True
                return
            if parsed is None:
                return
            req, used = parsed
            del self.buf[:used]
            self.handle(req)
            if not req.keep_alive and not self.busy:
                self.transport.close()
                self.closing = True

    def handle(self, req: Request) -> None:
        """Route one request."""
        transport = self.transport
        assert transport is not None
        path = req.target.split(b"?", 1)[0]
        if req.method == b"POST" and path.endswith(b"/chat/completions"):
            self.chat(req)
        elif path == b"/health":
            transport.write(simple_response(200, b"ok", "text/plain"))
        elif req.method == b"POST" and path == b"/__bench/pace":
            query = req.target.partition(b"?")[2].decode()
            params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
            self.state.pace_s = float(params.get("ms", "0")) / 1000.0
            transport.write(simple_response(200, _dumps({"pace_ms": self.state.pace_s * 1000})))
        else:
            transport.write(error_json(404, f"no route for {req.method.decode()} {path.decode()}"))

    def chat(self, req: Request) -> None:
        """Answer a chat completion, plain or streamed."""
        transport = self.transport
        assert transport is not None
        try:
            payload = _loads(req.body)
            model = str(payload.get("model") or "gpt-4o")
        except (ValueError, AttributeError):
            transport.write(error_json(400, "body is not a JSON object"))
            return
        if payload.get("stream") is not True:
            transport.write(self.state.json_response(model))
            return
        options = payload.get("stream_options") or {}
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        events = self.state.stream(model, include_usage)
        if self.state.pace_s <= 0:
            transport.write(STREAM_HEAD + b"".join(events) + LAST_CHUNK)
            return
        self.busy = True
        transport.write(STREAM_HEAD + events[0])
        self._schedule(events, 1, req.keep_alive)

    def _schedule(self, events: list[bytes], index: int, keep_alive: bool) -> None:
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(self.state.pace_s, self._next_event, events, index, keep_alive)

    def _next_event(self, events: list[bytes], index: int, keep_alive: bool) -> None:
        self.timer = None
        transport = self.transport
        if transport is None:
            return
        if index < len(events) - 1:
            transport.write(events[index])
            self._schedule(events, index + 1, keep_alive)
            return
        transport.write(events[index] + LAST_CHUNK)
        self.busy = False
        if not keep_alive:
            transport.close()
            self.closing = True
            return
        if self.buf:
            self.process()


async def serve(host: str, port: int, pace_ms: float, ready: Callable[[int], None] | None = None) -> None:
    """Serve until SIGINT/SIGTERM."""
    loop = asyncio.get_running_loop()
    state = MockState(pace_ms)
    server = await loop.create_server(lambda: MockProtocol(state), host, port, backlog=4096)
    bound = server.sockets[0].getsockname()[1]
    if ready is not None:
        ready(bound)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("MOCK_PORT", "9000")))
    parser.add_argument(
        "--pace-ms",
        type=float,
        default=float(os.environ.get("MOCK_PACE_MS", "0")),
        help="ms between SSE events (0 = burst; the paced benchmark mode uses 2)",
    )
    args = parser.parse_args()
    started = time.perf_counter()

    def ready(port: int) -> None:
        print(
            f"mock upstream listening on {args.host}:{port} pace_ms={args.pace_ms} "
            f"(startup {time.perf_counter() - started:.3f}s)",
            flush=True,
        )

    coro = serve(args.host, args.port, args.pace_ms, ready)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a relaygate dependency
        asyncio.run(coro)
    else:
        uvloop.run(coro)


if __name__ == "__main__":
    main()
