"""A thread-per-connection TCP server on a free 127.0.0.1 port: the base of the hand-written upstreams.

Subclasses answer a connection in `_handle` (run on its own thread; the connection is closed after it)
and read the request head with `read_head`; `running()` serves while the `with` block runs.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Self


class TCPUpstream:
    name = "tcp-upstream"

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self._thread: threading.Thread | None = None
        self._stopping = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @contextmanager
    def running(self) -> Iterator[Self]:
        self._sock.listen(64)
        self._sock.settimeout(0.2)
        self._thread = threading.Thread(target=self._serve, name=self.name, daemon=True)
        self._thread.start()
        try:
            yield self
        finally:
            self._stopping = True
            self._thread.join(5)
            self._sock.close()

    def _serve(self) -> None:
        while not self._stopping:
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve_one, args=(conn,), daemon=True).start()

    def _serve_one(self, conn: socket.socket) -> None:
        with conn:
            self._handle(conn)

    def _handle(self, conn: socket.socket) -> None:
        raise NotImplementedError


def read_head(conn: socket.socket) -> tuple[bytes, bytes] | None:
    """The request head and the bytes after it that came with it; None when the client left first."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = conn.recv(65536)
        if not piece:
            return None
        data += piece
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest
