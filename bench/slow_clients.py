#!/usr/bin/env python3
"""Other requests' latency with and without 200 slow clients attacking Relaygate (README issue 10, point 35).

    python bench/slow_clients.py [--rounds 3] [--duration 10] [--slow 200] [--connections 1,16]

Starts the bench mock upstream and `relaygate serve` of this checkout (PYTHONPATH is set to it)
with its default limits (bench/targets.py: the same config and token as bench/run.py). Per round
and concurrency, wrk runs on the chat path twice: alone, and while `--slow` slow sockets are kept
open: half trickle a request head one byte a second, half drip a declared 100 kB chat body one
byte a second. The gateway closes them (408 after the header timeout, or after the body-rate
grace); each closed one is reopened at once, so `--slow` of them are open all the time. Prints a
markdown table of rps, p50 and p99 (medians over rounds) and how many slow sockets were opened and
answered 408.
"""

from __future__ import annotations

import argparse
import os
import selectors
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
REPO = Path(__file__).resolve().parents[1]

import targets as tg  # noqa: E402
import wrk  # noqa: E402
from configs import PLAIN_MODEL  # noqa: E402
from measuring import json_body  # noqa: E402


class SlowClients:
    """Keeps `count` slow sockets open against `port` from one thread, reopening those the gateway closes."""

    def __init__(self, port: int, token: str, count: int) -> None:
        self.port = port
        self.count = count
        self.head = b"POST /api/llm/chat/completions HTTP/1.1\r\nHost: x\r\nX-Slow: "
        self.body_head = (
            f"POST /api/llm/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
        ).encode()
        self.opened = 0
        self.answered_408 = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._selector = selectors.DefaultSelector()

    def __enter__(self) -> SlowClients:
        for i in range(self.count):
            self._open(i)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        for key in list(self._selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        self._selector.close()

    def _open(self, kind: int) -> None:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        sock.sendall(self.body_head if kind % 2 else self.head)
        sock.setblocking(False)
        self._selector.register(sock, selectors.EVENT_READ, kind)
        self.opened += 1

    def _run(self) -> None:
        next_drip = time.monotonic()
        while not self._stop.is_set():
            for key, _ in self._selector.select(timeout=0.1):
                sock: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    data = sock.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if data.startswith(b"HTTP/1.1 408"):
                    self.answered_408 += 1
                self._selector.unregister(sock)
                sock.close()
                self._open(key.data)
            if time.monotonic() >= next_drip:  # one byte a second on every slow socket
                next_drip += 1.0
                for key in list(self._selector.get_map().values()):
                    try:
                        key.fileobj.send(b"d")  # type: ignore[union-attr]
                    except OSError:
                        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--slow", type=int, default=200, help="slow sockets kept open")
    parser.add_argument("--connections", default="1,16", help="wrk concurrencies")
    args = parser.parse_args()
    concurrencies = [int(c) for c in args.connections.split(",")]
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    tmp = Path(tempfile.mkdtemp(prefix="relaygate-slow-"))
    children = tg.Children()
    results: dict[tuple[int, bool], list[wrk.WrkResult]] = {}
    opened = answered = 0
    try:
        mock = tg.start_mock(children, tmp, None)
        target = tg.start_relaygate(children, tmp, mock, None, "uvicorn", json_body(PLAIN_MODEL, False).encode())
        body = json_body(PLAIN_MODEL, False)
        for _ in range(args.rounds):
            for connections in concurrencies:
                for with_slow in (False, True):
                    wrk.run(target.url, connections, 2, body, token=target.token, metadata=target.metadata)  # warm-up
                    if with_slow:
                        with SlowClients(target.port, target.token or "", args.slow) as slow:
                            time.sleep(1.0)
                            result = wrk.run(
                                target.url,
                                connections,
                                args.duration,
                                body,
                                token=target.token,
                                metadata=target.metadata,
                            )
                        opened += slow.opened
                        answered += slow.answered_408
                    else:
                        result = wrk.run(
                            target.url, connections, args.duration, body, token=target.token, metadata=target.metadata
                        )
                    if result.non2xx or result.socket_errors:
                        print(f"!! errors: {result.non2xx} non-2xx, {result.socket_errors} socket errors")
                    results.setdefault((connections, with_slow), []).append(result)
    finally:
        children.stop_all()
    print(f"| wrk connections | slow sockets | rps | p50 ms | p99 ms |  (medians of {args.rounds} rounds)")
    print("| --- | --- | --- | --- | --- |")
    for (connections, with_slow), runs in sorted(results.items()):
        print(
            f"| c{connections} | {args.slow if with_slow else 0} | {statistics.median(r.rps for r in runs):.0f} "
            f"| {statistics.median(r.p50_ms for r in runs):.2f} | {statistics.median(r.p99_ms for r in runs):.2f} |"
        )
    print(f"slow sockets opened: {opened}, answered 408: {answered}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
