"""Connect-time guard against link-local / cloud-metadata destinations.

A manifest's `base_url` may name a host whose DNS answer (now or after a change) is 169.254.169.254
or fd00:ec2::254, and a literal address may be written in a form the config check did not expect.
Literal addresses are refused when the config is compiled and again here: `GuardedConnector` checks
hosts that are IP literals (aiohttp never asks a resolver about those), `GuardedResolver` checks the
answers for names. A host is exempt only when its base URL opted in with
`allow_metadata_destinations: true`.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from aiohttp import TCPConnector
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from relaygate.upstream.destinations import is_metadata_address

if TYPE_CHECKING:
    from aiohttp.tracing import Trace

HostAllowed = Callable[[str], bool]


class MetadataDestinationRefused(OSError):
    """Raised as a connection error, so the request fails like any unreachable upstream (502)."""


def _refusal(host: str) -> MetadataDestinationRefused:
    return MetadataDestinationRefused(
        f"refusing to connect to {host}: a link-local/metadata address (set allow_metadata_destinations: true to allow)"
    )


class GuardedResolver(AbstractResolver):
    """Wraps the default resolver and drops metadata addresses for hosts not explicitly allowed."""

    def __init__(self, allowed: HostAllowed) -> None:
        self._inner = DefaultResolver()
        self._allowed = allowed

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if self._allowed(host):
            return results
        safe = [r for r in results if not is_metadata_address(r["host"])]
        if not safe:
            raise _refusal(host)
        return safe

    async def close(self) -> None:
        await self._inner.close()


class GuardedConnector(TCPConnector):
    """A TCP connector that refuses literal metadata addresses before connecting.

    aiohttp returns an IP-literal host without consulting the resolver, so the resolver's guard
    never sees `http://169.254.169.254` or `http://[::ffff:a9fe:a9fe]`; this checks those hosts
    (in every numeric spelling) once per new connection, never per request on a pooled one.
    """

    def __init__(self, allowed: HostAllowed, **options: Any) -> None:
        super().__init__(resolver=GuardedResolver(allowed), **options)
        self._metadata_allowed = allowed

    async def _resolve_host(self, host: str, port: int, traces: Sequence[Trace] | None = None) -> list[ResolveResult]:
        if is_metadata_address(host) and not self._metadata_allowed(host):  # False for names: those resolve
            raise _refusal(host)
        return await super()._resolve_host(host, port, traces=traces)
