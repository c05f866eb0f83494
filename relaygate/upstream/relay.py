"""Sending one HTTP request upstream and exposing its answer as an `UpstreamResponse`.

Failures before an answer exists become gateway errors here: connect failures 502, timeouts 504.
Messages name the model, never the URL (some providers carry keys in query strings).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import aiohttp
from yarl import URL

from relaygate.errors import BadGateway, GatewayTimeout


class HTTPUpstreamResponse:
    """An aiohttp response relayed as-is (OpenAI-shaped upstreams need no translation)."""

    __slots__ = ("_response", "status", "content_type", "retry_after", "headers")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.content_type = response.headers.get("Content-Type", "application/json")
        self.retry_after = response.headers.get("Retry-After")
        self.headers = response.headers  # adapters read provider headers (error types, token counts)

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
            raise BadGateway(f"upstream connection broke while reading the answer ({type(exc).__name__})")

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
            raise BadGateway(f"upstream connection broke mid-stream ({type(exc).__name__})")
        except TimeoutError:
            raise GatewayTimeout("the upstream stalled mid-stream for longer than the idle timeout")

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
) -> HTTPUpstreamResponse:
    """Open the upstream exchange (the caller bounds it with its own deadline)."""
    try:
        response = await session.request(method, url, headers=headers, data=data, allow_redirects=False)
    except aiohttp.ClientConnectorError as exc:
        raise BadGateway(f"could not connect to the upstream of model {model} ({type(exc).__name__})")
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError, aiohttp.ClientPayloadError) as exc:
        raise BadGateway(f"the upstream of model {model} closed the connection ({type(exc).__name__})")
    except aiohttp.ClientResponseError as exc:
        raise BadGateway(f"the upstream of model {model} sent a malformed answer ({type(exc).__name__})")
    except TimeoutError:
        raise GatewayTimeout(f"the upstream of model {model} did not answer in time")
    return HTTPUpstreamResponse(response)
