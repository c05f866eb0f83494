"""The one pooled aiohttp session every upstream call goes through."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import aiohttp

from relaygate.upstream.resolver import GuardedConnector, HostAllowed

CONNECT_TIMEOUT_SECONDS = 10.0

# Builds the session's connector (inside the running loop) from the metadata-destination rule. The
# default is `guarded_connector`; tests pass their own to route upstream hosts to in-process servers
# (the seam httpx calls a transport).
ConnectorFactory = Callable[[HostAllowed], aiohttp.BaseConnector]


def guarded_connector(metadata_allowed: HostAllowed) -> aiohttp.BaseConnector:
    """The production connector: pooled, keep-alive, refusing link-local/metadata destinations."""
    return GuardedConnector(
        metadata_allowed,
        limit=0,  # the gateway's own concurrency is the bound; upstream pools are per host below
        limit_per_host=1000,
        ttl_dns_cache=300,
        keepalive_timeout=30.0,
        enable_cleanup_closed=True,
    )


def create_session(
    idle_timeout: float,
    metadata_allowed: Callable[[str], bool],
    headers: Mapping[str, str] | None = None,
    *,
    connector_factory: ConnectorFactory | None = None,
) -> aiohttp.ClientSession:
    """A keep-alive pool shared by all requests of one process (never a session per request).

    `idle_timeout` bounds every socket read, so a stalled stream ends instead of hanging forever.
    `metadata_allowed(host)` says which hosts may be or resolve to link-local/metadata addresses.
    `headers` go on every request unless the request sets its own (the hop marker of upstream/hops.py).
    `connector_factory` replaces the connector (default `guarded_connector`).
    """
    connector = (connector_factory or guarded_connector)(metadata_allowed)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT_SECONDS, sock_read=idle_timeout),
        auto_decompress=True,
        trust_env=False,
        skip_auto_headers=("User-Agent",),
        headers={"User-Agent": "relaygate", **(headers or {})},
    )
