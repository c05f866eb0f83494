"""A TCP upstream that holds its answer and records when the gateway closes the connection.

`HoldingUpstream()` listens on a free 127.0.0.1 port in a thread. Every connection is read to its
end (request head and body, as they come) and answered by its path, one phase at a time:

- `/hold-head...`: nothing at all (the gateway waits for response headers);
- `/hold-body...`: a chunked 200 head, then nothing (headers sent, no body byte yet);
- `/hold-mid...`: the head and one chunk `first\\n`, then nothing (mid-body);
- `/status-NNN...`: `HTTP/1.1 NNN Whatever` with a 2-byte body, then the connection is closed;
- anything else: a well-formed `200 ok`, then closed.

Each connection is a `Held` record: when its request head arrived, how many body bytes came,
and `closed_at`, the `time.monotonic()` at which the gateway closed its side (EOF or reset).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Self

HEAD_200_CHUNKED = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
FIRST_CHUNK = b"6\r\nfirst\n\r\n"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nok"


@dataclass
class Held:
    path: str = ""
    head_at: float = 0.0  # the request head was complete
    body_bytes: int = 0  # bytes received after the head
    closed_at: float = 0.0  # the gateway closed (0: still open)


class HoldingUpstream:
    def __init__(self) -> None:
        self.connections: list[Held] = []
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stopping = False
        self._threads: list[threading.Thread] = []

    @contextmanager
    def running(self) -> Iterator[Self]:
        self._sock.listen(64)
        self._sock.settimeout(0.1)
        acceptor = threading.Thread(target=self._serve, name="holding-upstream", daemon=True)
        acceptor.start()
        try:
            yield self
        finally:
            self._stopping = True
            acceptor.join(5)
            for thread in self._threads:
                thread.join(5)
            self._sock.close()

    def reset(self) -> None:
        with self._lock:
            self.connections.clear()

    def wait_for(self, predicate: str, count: int = 1, timeout: float = 10.0) -> list[Held]:
        """Block until `count` connections have reached `predicate`: `head`, `closed` or `body:N`
        (at least N body bytes)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                reached = [held for held in self.connections if self._reached(held, predicate)]
            if len(reached) >= count:
                return reached
            time.sleep(0.005)
        with self._lock:
            raise AssertionError(f"no {count} connection(s) reached {predicate!r}: {self.connections}")

    @staticmethod
    def _reached(held: Held, predicate: str) -> bool:
        if predicate == "head":
            return held.head_at > 0
        if predicate == "closed":
            return held.closed_at > 0
        if predicate.startswith("body:"):
            return held.body_bytes >= int(predicate[5:])
        raise ValueError(predicate)

    def _serve(self) -> None:
        while not self._stopping:
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held = Held()
            with self._lock:
                self.connections.append(held)
            thread = threading.Thread(target=self._hold, args=(conn, held), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _hold(self, conn: socket.socket, held: Held) -> None:
        with conn:
            conn.settimeout(0.1)
            data = b""
            answered = False
            while not self._stopping:
                try:
                    piece = conn.recv(1 << 20)
                except TimeoutError:
                    continue
                except OSError:  # reset by the gateway
                    piece = b""
                if not piece:
                    held.closed_at = time.monotonic()
                    return
                if held.head_at:
                    held.body_bytes += len(piece)
                    continue
                data += piece
                if b"\r\n\r\n" not in data:
                    continue
                head, _, rest = data.partition(b"\r\n\r\n")
                held.path = head.split(b" ", 2)[1].decode("latin-1")
                held.body_bytes = len(rest)
                held.head_at = time.monotonic()
                if not answered:
                    answered = True
                    if self._answer(conn, held.path):
                        return

    @staticmethod
    def _answer(conn: socket.socket, path: str) -> bool:
        """Send what the path's phase calls for; True when the connection is done."""
        try:
            if path.startswith("/hold-head"):
                return False
            if path.startswith("/hold-body"):
                conn.sendall(HEAD_200_CHUNKED)
                return False
            if path.startswith("/hold-mid"):
                conn.sendall(HEAD_200_CHUNKED + FIRST_CHUNK)
                return False
            if path.startswith("/status-"):
                status = path[len("/status-") : len("/status-") + 3]
                conn.sendall(f"HTTP/1.1 {status} Whatever\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno".encode())
            else:
                conn.sendall(OK)
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        return True
