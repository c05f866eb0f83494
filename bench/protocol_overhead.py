#!/usr/bin/env python3
"""CPU per request of the gateway's HTTP protocol vs uvicorn's own, without sockets or the gateway.

    python bench/protocol_overhead.py [--requests 20000] [--rounds 7]

Feeds the same keep-alive requests (the bench's chat request with its headers, one read each) to
`relaygate.server_protocol.GatewayProtocol` and to uvicorn's `HttpToolsProtocol` over an in-memory
transport, each answered by a minimal ASGI app, and prints µs per request of each and the difference:
what the head limits and slow-client timers add to every request. Rounds alternate the two classes,
so a noisy machine slows both alike; the minimum over rounds is the least disturbed. On a loaded
machine whole-gateway A/B runs (bench/run.py) vary far more than this difference; this isolates it.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import uvloop  # noqa: E402
from uvicorn.config import Config  # noqa: E402
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol  # noqa: E402
from uvicorn.server import ServerState  # noqa: E402

from relaygate.server_protocol import GatewayProtocol, ServerLimits  # noqa: E402
from relaygate.settings import Settings  # noqa: E402

BODY = (
    b'{"model":"bench-openai/gpt-4o","messages":[{"role":"system","content":"You are a helpful assistant."},'
    b'{"role":"user","content":"Write one sentence about the sea, please."}],"max_tokens":64,"temperature":0.2}'
)
REQUEST = (
    b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json\r\n"
    b"Accept: application/json, text/event-stream\r\nAuthorization: Bearer rg-0123456789abcdef-secret\r\n"
    b'x-tfy-metadata: {"app":"bench"}\r\nContent-Length: ' + str(len(BODY)).encode() + b"\r\n\r\n" + BODY
)
ANSWER = b'{"id":"chatcmpl-1","object":"chat.completion","choices":[]}'


class Transport(asyncio.Transport):
    """Accepts writes and drops them; enough of a transport for the protocol."""

    def __init__(self) -> None:
        super().__init__()
        self.written = 0
        self.closing = False

    def write(self, data: Any) -> None:
        self.written += len(data)

    def close(self) -> None:
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8080), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        pass


async def app(scope: Any, receive: Any, send: Any) -> None:
    message = await receive()
    assert message["body"]
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(ANSWER)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": ANSWER})


async def per_request_us(cls: type[HttpToolsProtocol], requests: int) -> float:
    config = Config(app, http=cls, lifespan="off", access_log=False, log_level="warning", proxy_headers=False)
    config.relaygate_limits = ServerLimits.from_settings(Settings())  # type: ignore[attr-defined]
    config.load()
    state = ServerState()
    protocol = cls(config, state, {}, asyncio.get_running_loop())
    transport = Transport()
    protocol.connection_made(transport)
    started = time.process_time()
    for _ in range(requests):
        protocol.data_received(REQUEST)
        while state.tasks:
            await asyncio.sleep(0)
    elapsed = time.process_time() - started
    assert not transport.closing and transport.written > requests * len(ANSWER)
    protocol.connection_lost(None)
    return elapsed / requests * 1e6


async def main(requests: int, rounds: int) -> None:
    results: dict[str, list[float]] = {"uvicorn HttpToolsProtocol": [], "relaygate GatewayProtocol": []}
    await per_request_us(GatewayProtocol, 2000)  # warm-up
    await per_request_us(HttpToolsProtocol, 2000)
    for _ in range(rounds):
        results["uvicorn HttpToolsProtocol"].append(await per_request_us(HttpToolsProtocol, requests))
        results["relaygate GatewayProtocol"].append(await per_request_us(GatewayProtocol, requests))
    for name, values in results.items():
        print(f"{name:28s} min {min(values):6.2f}  median {statistics.median(values):6.2f} µs/request")
    for stat in (min, statistics.median):
        base, ours = stat(results["uvicorn HttpToolsProtocol"]), stat(results["relaygate GatewayProtocol"])
        print(f"difference ({stat.__name__}): {ours - base:+.2f} µs/request ({(ours / base - 1) * 100:+.1f}%)")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    uvloop.run(main(args.requests, args.rounds))
