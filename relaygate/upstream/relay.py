"""Sending one HTTP request upstream and exposing its answer as an `UpstreamResponse`.

Failures before an answer exists become gateway errors here (through the one map, `errors.py`):
connect failures 502, timeouts 504, a status outside 100-599 (which no client could be sent) 502.
Messages name the model, never the URL (some providers carry keys in query strings). A whole-body read
stops at the answer cap (a 502) or, for error answers, at `ERROR_BODY_LIMIT` (the rest is dropped):
memory stays bounded whatever the upstream sends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
from yarl import URL

from relaygate.errors import BadGateway
from relaygate.upstream.caps import DEFAULT_CAPS, AnswerCaps
from relaygate.upstream.errors import NETWORK_ERRORS, model_open_error, model_read_error, model_stream_error
from relaygate.upstream.hops import chained_via

ERROR_BODY_LIMIT = 1 << 20  # bytes of an error answer kept (its message and type are at the start)


class HTTPUpstreamResponse:
    """An aiohttp response relayed as-is (OpenAI-shaped upstreams need no translation)."""

    __slots__ = ("_response", "_model", "_cap", "_body", "status", "content_type", "retry_after", "headers")
    parsed: dict[str, Any] | None = None  # relayed bytes: parsed by whoever needs to

    def __init__(self, response: aiohttp.ClientResponse, model: str = "", caps: AnswerCaps = DEFAULT_CAPS) -> None:
        self._response = response
        self._model = model
        self._cap = caps.answer_bytes
        self._body: bytes | None = None  # kept: an adapter may read an error body before the handler does
        self.status = response.status
        self.content_type = response.headers.get("Content-Type", "application/json")
        self.retry_after = response.headers.get("Retry-After")
        self.headers = response.headers  # adapters read provider headers (error types, token counts)

    async def read(self) -> bytes:
        if self._body is None:
            try:
                self._body = await self._read_capped()
            except NETWORK_ERRORS as exc:
                if isinstance(exc, TimeoutError):
                    raise  # the attempt's own deadline decides what a timeout is called
                raise model_read_error(exc)
        return self._body

    async def _read_capped(self) -> bytes:
        """The body, never holding more than the cap: past it a success is a 502, an error is cut short."""
        response = self._response
        failed = response.status >= 400
        cap = min(self._cap, ERROR_BODY_LIMIT) if failed else self._cap
        length = response.content_length
        if length is not None and length <= cap:
            return await response.read()  # aiohttp reads no more than Content-Length
        if not failed and length is not None:
            response.close()
            raise self._too_large(cap)
        parts: list[bytes] = []
        size = 0
        content = response.content
        while chunk := await content.readany():
            size += len(chunk)
            if size > cap:
                response.close()  # the rest is never read: the connection cannot be reused
                if not failed:
                    raise self._too_large(cap)
                parts.append(chunk[: len(chunk) - (size - cap)])
                break
            parts.append(chunk)
        return b"".join(parts)

    def _too_large(self, cap: int) -> BadGateway:
        return BadGateway(
            f"the upstream of model {self._model} answered with more than {cap} bytes, the gateway's "
            "cap on a model answer (max_answer_bytes)",
            code="upstream_answer_too_large",
        )

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except NETWORK_ERRORS as exc:
            raise model_stream_error(exc)

    def close(self) -> None:
        self._response.release() if self._response.content.at_eof() else self._response.close()


async def send(
    session: aiohttp.ClientSession,
    method: str,
    url: str | URL,  # a URL built with encoded=True goes on the wire exactly as written
    *,
    headers: Mapping[str, str],
    data: bytes,
    model: str,
    caps: AnswerCaps = DEFAULT_CAPS,
) -> HTTPUpstreamResponse:
    """Open the upstream exchange (the caller bounds it with its own deadline)."""
    if (via := chained_via()) is not None:  # the request arrived with a Via chain: send it on (hops.py)
        headers = {**headers, "Via": via}
    try:
        response = await session.request(method, url, headers=headers, data=data, allow_redirects=False)
    except NETWORK_ERRORS as exc:
        raise model_open_error(exc, model)
    if not 100 <= response.status <= 599:  # no HTTP status: a broken upstream, as a reset would be
        response.close()
        raise BadGateway(
            f"the upstream of model {model} answered with HTTP status {response.status}, which is not a valid status",
            code="invalid_upstream_status",
        )
    return HTTPUpstreamResponse(response, model, caps)
