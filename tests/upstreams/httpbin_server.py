"""httpbin (the real one, from PyPI) served on a free 127.0.0.1 port from a background thread.

`HttpbinServer()` speaks plain HTTP; `HttpbinServer(ssl_context=ctx)` speaks HTTPS with whatever
certificate the context carries (the TLS tests use a `trustme` CA). Werkzeug's threaded server
speaks HTTP/1.1, so streamed answers (`/stream-bytes`, `/drip`) arrive chunked.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Self

from werkzeug.serving import BaseWSGIServer, make_server

logging.getLogger("werkzeug").setLevel(logging.ERROR)


def _bytes_only(app: Any) -> Any:
    """httpbin 0.10.0 (the release that installs beside Playwright's greenlet 3) answers `/bytes` with
    a bytearray, which Werkzeug's server refuses; hand it bytes."""

    def wsgi(environ: Any, start_response: Any) -> Iterator[bytes]:
        answer = app(environ, start_response)
        try:
            for chunk in answer:
                yield bytes(chunk)
        finally:
            close = getattr(answer, "close", None)
            if close is not None:
                close()

    return wsgi


class HttpbinServer:
    """One httpbin instance; `url` is its origin (`http://127.0.0.1:PORT` or `https://...`)."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None, host: str = "127.0.0.1") -> None:
        self.host = host
        self.ssl_context = ssl_context
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def start(self) -> Self:
        from httpbin import app  # imported late: it logs a warning about the optional Swagger UI

        self._server = make_server(self.host, 0, _bytes_only(app), threaded=True, ssl_context=self.ssl_context)
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, name="httpbin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    @contextmanager
    def running(self) -> Iterator[Self]:
        self.start()
        try:
            yield self
        finally:
            self.stop()
