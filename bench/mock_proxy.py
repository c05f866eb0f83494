"""The mock upstream's custom-endpoint routes (what `/proxy-api/...` is benchmarked with).

`POST /echo-json` parses a small JSON body and answers ~300 bytes of JSON that contain it.
`GET /download/<bytes>` answers `<bytes>` bytes of `application/octet-stream` with a Content-Length
header (not chunked), written in 64 KiB writes that wait for the socket whenever the transport's
write buffer is full (asyncio `pause_writing`/`resume_writing`), so the mock never holds more than
~one chunk plus the transport's high-water mark per download.
"""

from __future__ import annotations

import asyncio
from typing import Any

from mock_http import dumps, error_json, loads, response_head, simple_response

DOWNLOAD_CHUNK = 64 * 1024
MAX_DOWNLOAD = 4 * 1024**3
_CHUNK = b"\x5a" * DOWNLOAD_CHUNK  # one shared buffer; every write is a slice of it (no per-chunk allocation)
ECHO_SIZE = 300  # bytes of the /echo-json answer for the benchmark's request (padded up to this)


def echo_response(body: bytes) -> bytes:
    """The whole `/echo-json` answer: the parsed body echoed inside a small envelope (~300 bytes)."""
    try:
        payload: Any = loads(body)
    except ValueError:
        return error_json(400, "body is not JSON")
    envelope: dict[str, Any] = {
        "object": "echo",
        "id": "echo-bench-0001",
        "received_bytes": len(body),
        "echo": payload,
        "server": "relaygate-bench-mock",
        "pad": "",
    }
    short = ECHO_SIZE - len(dumps(envelope))
    if short > 0:
        envelope["pad"] = "." * short
    return simple_response(200, dumps(envelope))


def download_size(path: bytes) -> int | None:
    """The byte count of `/download/<bytes>`, None when the path is not a valid download."""
    tail = path.removeprefix(b"/download/")
    if tail == path or not tail.isdigit():
        return None
    size = int(tail)
    return size if size <= MAX_DOWNLOAD else None


def download_head(size: int) -> bytes:
    """Status line and headers of a download answer."""
    return response_head(
        200,
        [
            ("content-type", "application/octet-stream"),
            ("x-request-id", "req_bench"),
            ("content-length", str(size)),
        ],
    )


class Download:
    """One download in progress on a connection: `pump()` writes until the transport pauses or it is done."""

    __slots__ = ("transport", "remaining", "paused")

    def __init__(self, transport: asyncio.Transport, size: int) -> None:
        self.transport = transport
        self.remaining = size
        self.paused = False

    def start(self) -> bool:
        """Write the head and as much of the body as the transport takes; True when all is written."""
        self.transport.write(download_head(self.remaining))
        return self.pump()

    def pump(self) -> bool:
        """Write 64 KiB slices while the transport is not paused; True when the body is complete."""
        transport = self.transport
        while self.remaining > 0 and not self.paused:
            if transport.is_closing():
                return False
            n = min(DOWNLOAD_CHUNK, self.remaining)
            transport.write(_CHUNK if n == DOWNLOAD_CHUNK else _CHUNK[:n])
            self.remaining -= n  # write() may call pause_writing() synchronously, ending the loop
        return self.remaining == 0


def bad_download(path: bytes) -> bytes:
    """The answer to a malformed `/download/...` path."""
    return error_json(400, f"bad download size in {path.decode(errors='replace')} (0..{MAX_DOWNLOAD} bytes)")
