"""A fast mock OpenAI upstream: raw asyncio + uvloop protocol server, HTTP/1.1 keep-alive.

`POST .../chat/completions` answers a ~500-byte `chat.completion` JSON with usage, or, when the body
has `"stream": true`, a chunked SSE stream of 20 content chunks, a usage chunk (only if
`stream_options.include_usage` is true) and `data: [DONE]`. Events are written back to back (burst)
or with a pause of N ms between them (paced). The pace is set at start (`--pace-ms`, env
`MOCK_PACE_MS`) and can be changed at run time with `POST /__bench/pace?ms=N`, so one mock serves
every scenario of a benchmark run. `GET /health` answers 200.

For the custom-endpoint (`/proxy-api/...`) scenarios: `POST /echo-json` echoes a small JSON body in
~300 bytes of JSON, and `GET /download/<bytes>` sends that many bytes with Content-Length in 64 KiB
writes that respect the socket's backpressure (see mock_proxy.py). HTTP parsing is in mock_http.py.

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

from mock_http import ParseError, Request, dumps, error_json, loads, parse_request, response_head, simple_response
from mock_proxy import Download, bad_download, download_size, echo_response

CONTENT_CHUNKS = 20
CREATED = 1732147200
WORDS = (
    "The sea keeps its own time, folding light into every wave and returning it to the shore as a "
    "quiet promise that tomorrow the tide will come back again."
).split(" ")[:CONTENT_CHUNKS]


def completion_body(model: str) -> bytes:
    """The non-streaming chat.completion JSON (about 500 bytes)."""
    return dumps(
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
        events.append(b"data: " + dumps(chunk) + b"\n\n")
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
        events.append(b"data: " + dumps(usage_chunk) + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return [b"%x\r\n%s\r\n" % (len(e), e) for e in events]


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


class MockProtocol(asyncio.Protocol):
    """One client connection: parse requests in order, answer each, keep the connection open."""

    def __init__(self, state: MockState) -> None:
        self.state = state
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.busy = False  # a paced stream or a download is being written
        self.timer: asyncio.TimerHandle | None = None
        self.download: Download | None = None
        self.download_keep_alive = True
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.download = None
        self.transport = None

    def pause_writing(self) -> None:
        if self.download is not None:
            self.download.paused = True

    def resume_writing(self) -> None:
        download = self.download
        if download is None:
            return
        download.paused = False
        if download.pump():
            self.download = None
            self._done_writing(self.download_keep_alive)

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
        elif req.method == b"POST" and path == b"/echo-json":
            transport.write(echo_response(req.body))
        elif req.method == b"GET" and path.startswith(b"/download/"):
            self.start_download(req, path)
        elif path == b"/health":
            transport.write(simple_response(200, b"ok", "text/plain"))
        elif req.method == b"POST" and path == b"/__bench/pace":
            query = req.target.partition(b"?")[2].decode()
            params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
            self.state.pace_s = float(params.get("ms", "0")) / 1000.0
            transport.write(simple_response(200, dumps({"pace_ms": self.state.pace_s * 1000})))
        else:
            transport.write(error_json(404, f"no route for {req.method.decode()} {path.decode()}"))

    def chat(self, req: Request) -> None:
        """Answer a chat completion, plain or streamed."""
        transport = self.transport
        assert transport is not None
        try:
            payload = loads(req.body)
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

    def start_download(self, req: Request, path: bytes) -> None:
        """Send `/download/<bytes>`; the rest of the body follows in `resume_writing` when the socket drains."""
        transport = self.transport
        assert transport is not None
        size = download_size(path)
        if size is None:
            transport.write(bad_download(path))
            return
        download = Download(transport, size)
        self.download = download
        self.busy = True
        if download.start():
            self.download = None
            self.busy = False  # process() goes on with the next request (or closes)
            return
        self.download_keep_alive = req.keep_alive

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
        self._done_writing(keep_alive)

    def _done_writing(self, keep_alive: bool) -> None:
        """A paced stream or download ended outside `process()`: close, or answer what queued meanwhile."""
        self.busy = False
        if self.transport is None:
            return
        if not keep_alive:
            self.transport.close()
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
