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

`answer_at_head=True` answers as soon as the request head has arrived and counts the body as it keeps
coming (`body_bytes`): the custom-endpoint proxy streams uploads, so its tests watch a body arrive while
the answer is held. `phased_answer` answers by path, one phase at a time: `/hold-head...` nothing at all,
`/hold-body...` a chunked 200 head, `/hold-mid...` that head and one chunk `first\\n`,
`/status-NNN...` `HTTP/1.1 NNN Whatever` with a 2-byte body, anything else a well-formed `200 ok`.
`wait_for("head" | "closed" | "body:N", count)` blocks until that many connections got that far.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from tests.upstreams.tcp_upstream import TCPUpstream, read_head

Answer = Callable[[str, bytes], bytes | Iterable[bytes]]  # (path, request body) -> what is written before holding


@dataclass
class Held:
    path: str
    body: bytes  # what was read before answering (the whole Content-Length body unless answer_at_head)
    received_at: float
    answered: threading.Event = field(default_factory=threading.Event)
    closed: threading.Event = field(default_factory=threading.Event)
    closed_at: float | None = None
    sent: int = 0  # bytes of the answer written
    body_bytes: int = 0  # request body bytes received in all, also those that came after the answer


def chunk(data: bytes) -> bytes:
    """One HTTP/1.1 chunk of a `Transfer-Encoding: chunked` body."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def head(status: int = 200, content_type: str = "application/json", *, length: int | None = None) -> bytes:
    """A response head: with Content-Length `length`, or chunked when None."""
    framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return f"HTTP/1.1 {status} OK\r\nContent-Type: {content_type}\r\n{framing}\r\nConnection: close\r\n\r\n".encode(
        "latin-1"
    )


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nok"


def phased_answer(path: str, body: bytes) -> bytes:
    """The answer for a path's phase (see the module docstring)."""
    if path.startswith("/hold-head"):
        return b""
    if path.startswith("/hold-body"):
        return head(200, "text/plain")
    if path.startswith("/hold-mid"):
        return head(200, "text/plain") + chunk(b"first\n")
    if path.startswith("/status-"):
        status = path[len("/status-") : len("/status-") + 3]
        return f"HTTP/1.1 {status} Whatever\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno".encode()
    return OK


class HoldingUpstream(TCPUpstream):
    name = "holding-upstream"

    def __init__(self, answer: Answer = phased_answer, hold: float = 15.0, *, answer_at_head: bool = False) -> None:
        super().__init__()
        self.answer = answer
        self.hold = hold
        self.answer_at_head = answer_at_head
        self.connections: list[Held] = []
        self._arrived = threading.Condition()

    def reset(self) -> None:
        with self._arrived:
            self.connections.clear()

    def wait_for(self, predicate: str, count: int = 1, timeout: float = 10.0) -> list[Held]:
        """Block until `count` connections have reached `predicate`: `head`, `closed` or `body:N`
        (at least N body bytes)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._arrived:
                reached = [held for held in self.connections if self._reached(held, predicate)]
            if len(reached) >= count:
                return reached
            time.sleep(0.005)
        with self._arrived:
            raise AssertionError(f"no {count} connection(s) reached {predicate!r}: {self.connections}")

    @staticmethod
    def _reached(held: Held, predicate: str) -> bool:
        if predicate == "head":
            return True
        if predicate == "closed":
            return held.closed_at is not None
        if predicate.startswith("body:"):
            return held.body_bytes >= int(predicate[5:])
        raise ValueError(predicate)

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

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        try:
            read = read_head(conn)
            if read is None:
                return
            raw_head, body = read
            length = 0
            for line in raw_head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            while len(body) < length and not self.answer_at_head:
                piece = conn.recv(65536)
                if not piece:
                    return
                body += piece
        except OSError:
            return
        path = raw_head.split(b"\r\n", 1)[0].split(b" ")[1].decode("latin-1").partition("?")[0]
        held = Held(path, body, time.monotonic(), body_bytes=len(body))
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
            while piece := conn.recv(65536):  # the rest of the body, then b"": the gateway closed
                held.body_bytes += len(piece)
            held.closed_at = time.monotonic()
        except TimeoutError:
            return  # held for `hold` seconds and never closed by the gateway
        except OSError:
            held.closed_at = time.monotonic()  # reset by the gateway
        finally:
            held.closed.set()
