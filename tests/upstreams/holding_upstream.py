"""A TCP upstream that answers part of a request and then holds the connection, timing when it is closed.

`HoldingUpstream(answer)` listens on a free 127.0.0.1 port in a thread. Each connection gets its request
(head and Content-Length body) read; `answer(path, body)` gives the bytes to write (b"": nothing, not
even a status line), or an iterable of pieces written one after the other (an answer too large to hold
in memory: writing stops when the peer closes); then the connection is held open, writing nothing
more, for `hold` seconds or until the peer closes it. Every connection is a `Held` record: when its
request arrived, when the answer was written, how many bytes of it were, and when the peer closed the
connection (None if it never did within `hold`). Tests use it to show that the gateway closes an upstream connection
promptly when the caller leaves in every phase: before the upstream's headers, after its headers with
no body yet, and in the middle of a stream or body.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Self

Answer = Callable[[str, bytes], bytes | Iterable[bytes]]  # (path, request body) -> what is written before holding


@dataclass
class Held:
    path: str
    body: bytes
    received_at: float
    answered: threading.Event = field(default_factory=threading.Event)
    closed: threading.Event = field(default_factory=threading.Event)
    closed_at: float | None = None
    sent: int = 0  # bytes of the answer written


def chunk(data: bytes) -> bytes:
    """One HTTP/1.1 chunk of a `Transfer-Encoding: chunked` body."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def head(status: int = 200, content_type: str = "application/json", *, length: int | None = None) -> bytes:
    """A response head: with Content-Length `length`, or chunked when None."""
    framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return f"HTTP/1.1 {status} OK\r\nContent-Type: {content_type}\r\n{framing}\r\nConnection: close\r\n\r\n".encode(
        "latin-1"
    )


class HoldingUpstream:
    def __init__(self, answer: Answer, hold: float = 15.0) -> None:
        self.answer = answer
        self.hold = hold
        self.connections: list[Held] = []
        self._arrived = threading.Condition()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self._thread: threading.Thread | None = None
        self._stopping = False

    @contextmanager
    def running(self) -> Iterator[Self]:
        self._sock.listen(64)
        self._sock.settimeout(0.2)
        self._thread = threading.Thread(target=self._serve, name="holding-upstream", daemon=True)
        self._thread.start()
        try:
            yield self
        finally:
            self._stopping = True
            self._thread.join(5)
            self._sock.close()

    def mark(self) -> int:
        """A point in the connection history: take it before sending the request `request_since` waits for."""
        with self._arrived:
            return len(self.connections)

    def request_since(self, seen: int, path: str, timeout: float = 10.0) -> Held:
        """The first connection after `seen` (a `mark()`) whose request is for `path`."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                for held in self.connections[seen:]:
                    if held.path == path:
                        return held
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no request for {path} reached the upstream within {timeout}s")
                self._arrived.wait(remaining)

    def _serve(self) -> None:
        while not self._stopping:
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    piece = conn.recv(65536)
                    if not piece:
                        return
                    data += piece
                raw_head, _, body = data.partition(b"\r\n\r\n")
                length = 0
                for line in raw_head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                while len(body) < length:
                    piece = conn.recv(65536)
                    if not piece:
                        return
                    body += piece
            except OSError:
                return
            path = raw_head.split(b"\r\n", 1)[0].split(b" ")[1].decode("latin-1").partition("?")[0]
            held = Held(path, body, time.monotonic())
            with self._arrived:
                self.connections.append(held)
                self._arrived.notify_all()
            try:
                out = self.answer(path, body)
                for piece in [out] if isinstance(out, bytes) else out:
                    conn.sendall(piece)
                    held.sent += len(piece)
                held.answered.set()
                conn.settimeout(self.hold)
                while conn.recv(65536):  # the gateway sends nothing more: b"" is its close
                    pass
                held.closed_at = time.monotonic()
            except TimeoutError:
                return  # held for `hold` seconds and never closed by the gateway
            except OSError:
                held.closed_at = time.monotonic()  # reset by the gateway
            finally:
                held.closed.set()
