"""The one pooled aiohttp session every upstream call goes through."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import aiohttp

from relaygate.upstream.resolver import GuardedConnector

CONNECT_TIMEOUT_SECONDS = 10.0


def create_session(
    idle_timeout: float, metadata_allowed: Callable[[str], bool], headers: Mapping[str, str] | None = None
) -> aiohttp.ClientSession:
    """A keep-alive pool shared by all requests of one process (never a session per request).

    `idle_timeout` bounds every socket read, so a stalled stream ends instead of hanging forever.
    `metadata_allowed(host)` says which hosts may be or resolve to link-local/metadata addresses.
    `headers` go on every request unless the request sets its own (the hop marker of upstream/hops.py).
    """
    connector = GuardedConnector(
        metadata_allowed,
        limit=0,  # the gateway's own concurrency is the bound; upstream pools are per host below
        limit_per_host=1000,
        ttl_dns_cache=300,
        keepalive_timeout=30.0,
        enable_cleanup_closed=True,
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT_SECONDS, sock_read=idle_timeout),
        auto_decompress=True,
        trust_env=False,
        skip_auto_headers=("User-Agent",),
        headers={"User-Agent": "relaygate", **(headers or {})},
    )
