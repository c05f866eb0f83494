"""An upstream that quotes the credential it was sent back in its answer, as careless services do
(`403 key abc123 is not allowed`, a `WWW-Authenticate` naming the token).

Every request is answered from its query string:

- `quote=NAME`: the request header whose value is quoted (default `x-service-key`); `part=scheme`
  quotes only what follows the auth scheme (`Bearer <token>` -> `<token>`), `part=password` the
  password of a Basic pair;
- `status=N` (default 200); `type=T` the `Content-Type` (default `text/plain`);
- `form=json`: `{"error": {"message": "key <v> is not allowed"}}` instead of the plain sentence;
- `pad=N`: N filler bytes after the sentence; `chunked=1`: no Content-Length, two writes
  (`pause=S` seconds apart);
  `gzip=1`: the body gzip-compressed with `Content-Encoding: gzip`;
- `header=1`: the value is also quoted in `X-Echo-Key` and `WWW-Authenticate`.
"""

from __future__ import annotations

import asyncio
import base64
import gzip

import orjson
from aiohttp import web

from tests.upstreams.aiohttp_server import AiohttpServer


def quoted(request: web.Request) -> str:
    value = request.headers.get(request.query.get("quote", "x-service-key"), "")
    part = request.query.get("part")
    if part == "scheme":
        return value.partition(" ")[2]
    if part == "password":
        return base64.b64decode(value.partition(" ")[2]).decode().partition(":")[2]
    return value


def answer_body(request: web.Request) -> bytes:
    sentence = f"key {quoted(request)} is not allowed"
    if request.query.get("form") == "json":
        body = orjson.dumps({"error": {"message": sentence, "type": "forbidden"}})
    else:
        body = sentence.encode()
    return body + b"." * int(request.query.get("pad", "0"))


class EchoUpstream(AiohttpServer):
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        query = request.query
        body = answer_body(request)
        headers = {"Content-Type": query.get("type", "text/plain")}
        if query.get("header") == "1":
            value = quoted(request)
            headers["X-Echo-Key"] = value
            headers["WWW-Authenticate"] = f'Key realm="svc", key="{value}"'
        if query.get("gzip") == "1":
            body = gzip.compress(body, mtime=0)
            headers["Content-Encoding"] = "gzip"
        response = web.StreamResponse(status=int(query.get("status", "200")), headers=headers)
        if query.get("chunked") == "1":
            response.enable_chunked_encoding()
            await response.prepare(request)
            half = len(body) // 2
            await response.write(body[:half])
            await asyncio.sleep(float(query.get("pause", "0")))
            await response.write(body[half:])
        else:
            response.content_length = len(body)
            await response.prepare(request)
            if request.method != "HEAD":  # a HEAD answer has the length but no body bytes
                await response.write(body)
        await response.write_eof()
        return response

    def _thread_name(self) -> str:
        return "echo-upstream"
