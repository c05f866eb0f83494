"""The one aiohttp error map, against real sockets: what each failure is called on each path."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp.http_exceptions import BadStatusLine

from relaygate.errors import BadGateway, GatewayError, GatewayTimeout
from relaygate.upstream import relay
from relaygate.upstream.errors import (
    CONNECT,
    DISCONNECTED,
    MALFORMED,
    NETWORK_ERRORS,
    TIMEOUT,
    account_broke_message,
    account_open_error,
    endpoint_broke_message,
    endpoint_open_error,
    failure_kind,
    model_open_error,
    model_read_error,
    model_stream_error,
)

Serve = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"


async def _hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.close()


async def _garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"NOT HTTP AT ALL\r\n\r\n")
    await writer.drain()
    writer.close()


async def _cut_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(HEAD + b"Content-Length: 1000\r\n\r\n" + b'{"partial":')
    await writer.drain()
    writer.close()


async def _stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(HEAD + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
    await writer.drain()
    await asyncio.sleep(5)
    writer.close()


async def _serving(serve: Serve) -> AsyncIterator[int]:
    """The port of a server running `serve` per connection; every connection is closed when it stops."""
    writers: list[asyncio.StreamWriter] = []

    async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await serve(reader, writer)

    server = await asyncio.start_server(tracked, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for writer in writers:
            writer.close()
        await server.wait_closed()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _raised(serve: Serve | None, read: bool = False, *, sock_read: float | None = None) -> BaseException:
    """What aiohttp raises for one request to `serve` (a closed port when None), opening or reading."""
    timeout = aiohttp.ClientTimeout(total=None, sock_read=sock_read)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        servings = _serving(serve) if serve is not None else None
        port = await anext(servings) if servings is not None else _closed_port()
        response: aiohttp.ClientResponse | None = None
        try:
            response = await session.get(f"http://127.0.0.1:{port}/")
            if read:
                async for _ in response.content.iter_any():
                    pass
        except NETWORK_ERRORS as exc:
            return exc
        finally:
            if response is not None:
                response.close()
            if servings is not None:
                await servings.aclose()
    raise AssertionError("nothing was raised")


async def test_each_failure_gets_its_kind() -> None:
    assert failure_kind(await _raised(None)) == CONNECT
    assert isinstance(await _raised(None), aiohttp.ClientConnectorError)
    assert failure_kind(await _raised(_hang_up)) == DISCONNECTED
    assert failure_kind(await _raised(_garbage)) == MALFORMED
    assert failure_kind(await _raised(_cut_body, read=True)) == DISCONNECTED
    assert failure_kind(await _raised(_stall, read=True, sock_read=0.2)) == TIMEOUT
    assert failure_kind(BadStatusLine("x")) == DISCONNECTED  # the proxy's raw parser errors
    assert failure_kind(ConnectionResetError()) == DISCONNECTED
    assert failure_kind(aiohttp.InvalidURL("http://[::1")) == CONNECT


def _said(error: GatewayError) -> tuple[type[GatewayError], int, str]:
    return type(error), error.status, error.message


async def test_llm_calls_name_the_model() -> None:
    refused = await _raised(None)
    assert _said(model_open_error(refused, "acct/m")) == (
        BadGateway,
        502,
        "could not connect to the upstream of model acct/m (ClientConnectorError)",
    )
    assert _said(model_open_error(await _raised(_hang_up), "acct/m")) == (
        BadGateway,
        502,
        "the upstream of model acct/m closed the connection (ServerDisconnectedError)",
    )
    garbage = await _raised(_garbage)
    assert _said(model_open_error(garbage, "acct/m")) == (
        BadGateway,
        502,
        f"the upstream of model acct/m sent a malformed answer ({type(garbage).__name__})",
    )
    assert _said(model_open_error(TimeoutError(), "acct/m")) == (
        GatewayTimeout,
        504,
        "the upstream of model acct/m did not answer in time",
    )
    cut = await _raised(_cut_body, read=True)
    assert _said(model_read_error(cut)) == (
        BadGateway,
        502,
        f"upstream connection broke while reading the answer ({type(cut).__name__})",
    )
    assert _said(model_stream_error(cut)) == (
        BadGateway,
        502,
        f"upstream connection broke mid-stream ({type(cut).__name__})",
    )
    stalled = await _raised(_stall, read=True, sock_read=0.2)
    assert _said(model_stream_error(stalled)) == (
        GatewayTimeout,
        504,
        "the upstream stalled mid-stream for longer than the idle timeout",
    )


async def test_resource_and_proxy_paths_keep_their_words() -> None:
    refused = await _raised(None)
    assert _said(account_open_error(refused, "openai-main")) == (
        BadGateway,
        502,
        "could not reach provider account openai-main (ClientConnectorError)",
    )
    assert _said(account_open_error(TimeoutError(), "openai-main")) == (
        GatewayTimeout,
        504,
        "provider account openai-main did not answer in time",
    )
    assert account_broke_message(refused) == "provider connection broke mid-answer (ClientConnectorError)"
    assert _said(endpoint_open_error(refused, "acct/ep")) == (
        BadGateway,
        502,
        "endpoint acct/ep failed: ClientConnectorError",
    )
    assert endpoint_broke_message(TimeoutError()) == "upstream body broke after headers (TimeoutError)"


@pytest.mark.parametrize(
    ("serve", "message"),
    [
        (None, "could not connect to the upstream of model acct/m (ClientConnectorError)"),
        (_hang_up, "the upstream of model acct/m closed the connection (ServerDisconnectedError)"),
    ],
)
async def test_relay_send_uses_the_map(serve: Serve | None, message: str) -> None:
    async with aiohttp.ClientSession() as session:
        servings = _serving(serve) if serve is not None else None
        port = await anext(servings) if servings is not None else _closed_port()
        try:
            with pytest.raises(BadGateway) as caught:
                await relay.send(session, "GET", f"http://127.0.0.1:{port}/", headers={}, data=b"", model="acct/m")
        finally:
            if servings is not None:
                await servings.aclose()
    assert caught.value.message == message


async def test_a_cut_body_is_a_502_when_read_and_a_timeout_is_left_to_the_attempt() -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_read=0.2)) as session:
        for serve, expected in ((_cut_body, BadGateway), (_stall, TimeoutError)):
            servings = _serving(serve)
            port = await anext(servings)
            try:
                response = await relay.send(
                    session, "GET", f"http://127.0.0.1:{port}/", headers={}, data=b"", model="m"
                )
                with pytest.raises(expected):
                    await response.read()
                response.close()
            finally:
                await servings.aclose()
