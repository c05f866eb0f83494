"""Raw HTTP/1.1 over a socket, for requests no client library would send and answers read to the close."""

from __future__ import annotations

import socket
from dataclasses import dataclass

import orjson

from tests.helpers.error_shape import assert_error_shape


def exchange(port: int, data: bytes, *, timeout: float = 10.0) -> bytes:
    """Send `data` (tolerating a refusal mid-send) and read until the gateway closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        return read_to_close(sock)


def read_to_close(sock: socket.socket) -> bytes:
    received = bytearray()
    try:
        while piece := sock.recv(65536):
            received.extend(piece)
    except ConnectionResetError:
        pass
    return bytes(received)


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    rest: bytes  # whatever followed the first response

    def error(self) -> dict[str, object]:
        assert self.headers.get("content-type") == "application/json", self.headers
        return assert_error_shape(orjson.loads(self.body))


def parse(raw: bytes) -> Response:
    """The first response in `raw` (Content-Length framed)."""
    head, sep, rest = raw.partition(b"\r\n\r\n")
    assert sep, f"no complete response head in {raw[:200]!r}"
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    size = int(headers["content-length"])
    return Response(int(status_line.split(" ")[1]), headers, rest[:size], rest[size:])


def head(target: str = "/health", *lines: str, method: str = "GET") -> bytes:
    return (f"{method} {target} HTTP/1.1\r\n" + "".join(line + "\r\n" for line in lines) + "\r\n").encode("latin-1")
