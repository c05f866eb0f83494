"""A tiny blocking HTTP client for readiness checks and probes (wrk does the load), and one Redis command."""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Mapping

CHAT_PATH = "/v1/chat/completions"


def http_request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 5.0,
) -> tuple[int, bytes]:
    """One request on a fresh connection; (status, body)."""
    status, _, answer = http_exchange(port, method, path, body, headers, timeout)
    return status, answer


def http_exchange(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 5.0,
) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection; (status, response headers with lower-cased names, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        resp = conn.getresponse()
        return resp.status, {name.lower(): value for name, value in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def stream_ttfb(port: int, body: bytes, headers: Mapping[str, str], timeout: float = 5.0) -> tuple[float, float, int]:
    """(seconds to the first `data:` byte, seconds to the end, events) for one streamed request."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        start = time.perf_counter()
        conn.request("POST", CHAT_PATH, body=body, headers=dict(headers))
        resp = conn.getresponse()
        if resp.status != 200:
            raise http.client.HTTPException(f"stream answered {resp.status}: {resp.read()[:300]!r}")
        first = resp.read1(65536)
        ttfb = time.perf_counter() - start
        rest = resp.read()
        total = time.perf_counter() - start
        data = first + rest
        return ttfb, total, sum(1 for line in data.split(b"\n") if line.startswith(b"data:"))
    finally:
        conn.close()


def redis_command(port: int, *args: str, host: str = "127.0.0.1", timeout: float = 2.0) -> bytes:
    """One Redis command over RESP on a fresh connection; the first reply line (e.g. b"+PONG", b":1")."""
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(b"".join(parts))
        reply = b""
        while b"\r\n" not in reply:
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    return reply.split(b"\r\n", 1)[0]
