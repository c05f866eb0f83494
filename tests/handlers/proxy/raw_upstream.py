"""A TCP upstream that answers with scripted bytes: broken HTTP framing no real server would send.

`RawUpstream({"/path": b"HTTP/1.1 200 OK\\r\\n..."})` listens on a free 127.0.0.1 port in a thread.
Each connection gets its request head read, the bytes scripted for its path written, and is closed.
Unknown paths get a well-formed 200 with body `ok`, so the gateway can be shown to still serve.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Self

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nok"


class RawUpstream:
    def __init__(self, script: dict[str, bytes]) -> None:
        self.script = script
        self.heads: list[bytes] = []
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self._thread: threading.Thread | None = None
        self._stopping = False

    def start(self) -> Self:
        self._sock.listen(64)
        self._sock.settimeout(0.2)
        self._thread = threading.Thread(target=self._serve, name="raw-upstream", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping = True
        if self._thread is not None:
            self._thread.join(5)
        self._sock.close()

    @contextmanager
    def running(self) -> Iterator[Self]:
        self.start()
        try:
            yield self
        finally:
            self.stop()

    def _serve(self) -> None:
        while not self._stopping:
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    piece = conn.recv(65536)
                    if not piece:
                        return
                    data += piece
                head = data.split(b"\r\n\r\n", 1)[0]
                with self._lock:
                    self.heads.append(head)
                target = head.split(b"\r\n", 1)[0].split(b" ")[1].decode("latin-1")
                path = target.partition("?")[0]
                conn.sendall(self.script.get(path, OK))
                conn.shutdown(socket.SHUT_WR)
            except OSError:
                return
