"""Talking to the gateway without a client that tidies up: http.client (no redirects, no
decompression, paths sent as written) and a raw socket for requests no client would send."""

from __future__ import annotations

import hashlib
import http.client
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass
class WireAnswer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    first_byte_at: float = 0.0  # seconds from sending to the first body byte
    finished_at: float = 0.0  # seconds from sending to the end of the body
    size: int = 0  # body bytes received (also when `keep_body=False`)
    sha256: str = ""

    def header(self, name: str) -> str | None:
        values = self.header_values(name)
        return values[0] if values else None

    def header_values(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self) -> Any:
        return orjson.loads(self.body)


def send(
    port: int,
    method: str,
    target: str,
    *,
    token: str | None = None,
    headers: dict[str, str] | list[tuple[str, str]] | None = None,
    body: bytes | Iterable[bytes] | None = None,
    timeout: float = 30.0,
    read_size: int = 65536,
    keep_body: bool = True,
) -> WireAnswer:
    """One request over a fresh connection, headers exactly as given (no Accept-Encoding added; `Host`
    only when not given). The body is read piece by piece, with timings, size and SHA-256 recorded."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    items = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    if token is not None:
        items.append(("Authorization", f"Bearer {token}"))
    started = time.monotonic()
    try:
        names = {k.lower() for k, _ in items}
        conn.putrequest(method, target, skip_host="host" in names, skip_accept_encoding=True)
        chunked = body is not None and not isinstance(body, bytes)
        for name, value in items:
            conn.putheader(name, value)
        if isinstance(body, bytes) and "content-length" not in names:
            conn.putheader("Content-Length", str(len(body)))
        if chunked and "transfer-encoding" not in names:
            conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        if isinstance(body, bytes):
            conn.send(body)
        elif body is not None:
            for piece in body:
                conn.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            conn.send(b"0\r\n\r\n")
        response = conn.getresponse()
        pieces: list[bytes] = []
        first = 0.0
        size = 0
        digest = hashlib.sha256()
        while True:
            piece = response.read1(read_size) if method != "HEAD" else b""
            if not piece:
                break
            if not first:
                first = time.monotonic() - started
            size += len(piece)
            digest.update(piece)
            if keep_body:
                pieces.append(piece)
        if response.length:  # Content-Length promised more than arrived before the connection closed
            raise http.client.IncompleteRead(b"".join(pieces), response.length)
        return WireAnswer(
            response.status,
            response.getheaders(),
            b"".join(pieces),
            first,
            time.monotonic() - started,
            size,
            digest.hexdigest(),
        )
    finally:
        conn.close()


def raw_exchange(port: int, data: bytes, *, timeout: float = 5.0) -> bytes:
    """Write `data` as is and read until the gateway closes the connection or goes quiet."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        received = bytearray()
        sock.settimeout(timeout)
        try:
            while True:
                piece = sock.recv(65536)
                if not piece:
                    break
                received.extend(piece)
        except (TimeoutError, ConnectionResetError):
            pass
        return bytes(received)


def raw_status(response: bytes) -> int:
    """The status code of the first response in `response` (0 when there is none)."""
    line = response.split(b"\r\n", 1)[0].split(b" ")
    return int(line[1]) if len(line) > 1 and line[0].startswith(b"HTTP/") and line[1].isdigit() else 0


def raw_body(response: bytes) -> bytes:
    """The body of the first response (Content-Length framed, as gateway errors are)."""
    head, _, rest = response.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return rest[: int(value.strip())]
    return rest
