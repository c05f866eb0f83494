"""DNS resolution that refuses link-local / cloud-metadata destinations.

A manifest's `base_url` may name a host whose DNS answer (now or after a change) is 169.254.169.254
or fd00:ec2::254. Literal addresses are refused when the config is compiled; names are checked here,
at connect time, unless the host belongs to an endpoint with `allow_metadata_destinations: true`.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from relaygate.config.compile_proxy import is_metadata_address


class MetadataDestinationRefused(OSError):
    """Raised as a connection error, so the request fails like any unreachable upstream (502)."""


class GuardedResolver(AbstractResolver):
    """Wraps the default resolver and drops metadata addresses for hosts not explicitly allowed."""

    def __init__(self, allowed: Callable[[str], bool]) -> None:
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
            raise MetadataDestinationRefused(f"refusing to connect to {host}: it resolves to a link-local/metadata "
                                             "address (set allow_metadata_destinations: true to allow)")
        return safe

    async def close(self) -> None:
        await self._inner.close()
