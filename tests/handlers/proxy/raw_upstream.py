"""A TCP upstream that answers with scripted bytes: broken HTTP framing no real server would send.

`RawUpstream({"/path": b"HTTP/1.1 200 OK\\r\\n..."})` listens on a free 127.0.0.1 port in a thread.
Each connection gets its request head read, the bytes scripted for its path written, and is closed.
Unknown paths get a well-formed 200 with body `ok`, so the gateway can be shown to still serve.
"""

from __future__ import annotations

import socket
import threading

from tests.upstreams.tcp_upstream import TCPUpstream, read_head

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nok"


class RawUpstream(TCPUpstream):
    name = "raw-upstream"

    def __init__(self, script: dict[str, bytes]) -> None:
        super().__init__()
        self.script = script
        self.heads: list[bytes] = []
        self._lock = threading.Lock()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            read = read_head(conn)
            if read is None:
                return
            head = read[0]
            with self._lock:
                self.heads.append(head)
            target = head.split(b"\r\n", 1)[0].split(b" ")[1].decode("latin-1")
            path = target.partition("?")[0]
            conn.sendall(self.script.get(path, OK))
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            return
