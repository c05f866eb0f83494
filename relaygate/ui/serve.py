"""Serving the dashboard's static files from the package, with a strict Content-Security-Policy.

The file table is read once per process from `relaygate/ui/static/`; a request can only name a file
in it (no path is ever joined from the URL), so there is no traversal to guard. Unknown paths under
`/ui/` get `index.html`: the page routes by its URL hash.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING

from relaygate.errors import NotFound

if TYPE_CHECKING:
    from relaygate.pipeline.call import Call

UI_PREFIX = "/ui"
_TYPES = {
    ".html": b"text/html; charset=utf-8",
    ".js": b"text/javascript; charset=utf-8",
    ".css": b"text/css; charset=utf-8",
    ".svg": b"image/svg+xml",
    ".png": b"image/png",
    ".ico": b"image/x-icon",
    ".txt": b"text/plain; charset=utf-8",
    ".json": b"application/json",
}
_SECURITY_HEADERS = (
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        b"font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)


@cache
def static_files() -> dict[str, tuple[bytes, bytes, bytes]]:
    """name -> (content, content type, etag), for every file under static/ (subfolders as `a/b.js`)."""
    table: dict[str, tuple[bytes, bytes, bytes]] = {}
    root = files("relaygate.ui").joinpath("static")
    pending = [("", root)]
    while pending:
        prefix, folder = pending.pop()
        for entry in folder.iterdir():
            if entry.is_dir():
                pending.append((f"{prefix}{entry.name}/", entry))
                continue
            suffix = "." + entry.name.rpartition(".")[2] if "." in entry.name else ""
            kind = _TYPES.get(suffix)
            if kind is None:
                continue  # licences and sources the page never loads stay in the wheel, not on the wire
            content = entry.read_bytes()
            table[prefix + entry.name] = (
                content,
                kind,
                b'"' + hashlib.sha256(content).hexdigest()[:20].encode() + b'"',
            )
    return table


async def serve_ui(call: Call) -> None:
    """GET /ui and everything under it."""
    if not call.gateway.snapshot.admin.ui_enabled:
        raise NotFound("the dashboard is turned off (gateway-admin-config ui.enabled: false)", code="ui_disabled")
    path: str = call.scope["path"]
    if path == UI_PREFIX:
        await call.send(
            {
                "type": "http.response.start",
                "status": 308,
                "headers": [(b"location", b"/ui/"), (b"content-length", b"0"), *call.base_headers],
            }
        )
        await call.send({"type": "http.response.body", "body": b""})
        return
    table = static_files()
    name = path[len(UI_PREFIX) + 1 :]
    found = table.get(name) if name else None
    if found is None:
        if "." in name.rpartition("/")[2]:
            raise NotFound(f"no such dashboard file: {name[:200]}", code="unknown_url")
        found = table.get("index.html")
        if found is None:
            raise NotFound("the dashboard's files are missing from this installation", code="ui_missing")
        cache_control = b"no-cache"
    else:
        cache_control = b"no-cache" if name.endswith(".html") else b"public, max-age=300"
    content, kind, etag = found
    headers = [
        (b"content-type", kind),
        (b"etag", etag),
        (b"cache-control", cache_control),
        *_SECURITY_HEADERS,
        *call.base_headers,
    ]
    if call.header(b"if-none-match") == etag:
        await call.send({"type": "http.response.start", "status": 304, "headers": headers})
        await call.send({"type": "http.response.body", "body": b""})
        return
    headers.append((b"content-length", str(len(content)).encode()))
    call.ctx.status = 200
    await call.send({"type": "http.response.start", "status": 200, "headers": headers})
    await call.send({"type": "http.response.body", "body": content})
