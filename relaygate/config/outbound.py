"""Load-time checks of every outbound base URL: metadata destinations, and the gateway itself.

Every URL the gateway sends requests to (provider accounts and their `base_url` overrides,
self-hosted `url`s, custom endpoints, ngrok providers) passes `OutboundCheck.problem` when the config
is compiled:
- a literal link-local / cloud-metadata address (any numeric spelling) is refused unless the owner
  set `allow_metadata_destinations: true` (names are checked at connect time, `upstream/resolver.py`);
- a URL that reaches the gateway itself (its own listen port on a loopback address, on the address
  it is bound to, or on any local address when bound to 0.0.0.0 / ::) is refused: every request to
  it would loop. Only URLs on the gateway's port are resolved, so a load does no DNS for others.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from relaygate.upstream.destinations import IPAddress, is_metadata_address, parse_address

METADATA_RULE = "points at a link-local/cloud-metadata address; set allow_metadata_destinations: true to allow it"
_WILDCARDS = ("", "0.0.0.0", "::")


@dataclass(frozen=True, slots=True)
class GatewayAddress:
    """Where this gateway listens (`serve --host/--port`; `check --host/--port`)."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def _is_local(address: IPAddress) -> bool:
    """True when the address belongs to this machine (binding a socket to it succeeds)."""
    if address.is_loopback or address.is_unspecified:
        return True
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((str(address), 0))
        except OSError:
            return False
    return True


def _resolve(host: str) -> set[IPAddress]:
    """Addresses of a name (empty when it does not resolve: then it is no loop we can prove)."""
    literal = parse_address(host)
    if literal is not None:
        return {literal}
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return set()
    out: set[IPAddress] = set()
    for info in infos:
        address = parse_address(str(info[4][0]))
        if address is not None:
            out.add(address)
    return out


@dataclass(slots=True)
class OutboundCheck:
    """One compile's checks; name resolutions are memoised for the duration of the compile."""

    gateway: GatewayAddress | None = None
    _seen: dict[str, set[IPAddress]] = field(default_factory=dict)

    def problem(self, url: str, *, allow_metadata: bool = False) -> str | None:
        """The rule `url` breaks, or None when it may be used."""
        try:
            parts = urlsplit(url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            return None  # the schema already refused it
        host = parts.hostname or ""
        if not allow_metadata and is_metadata_address(host):
            return METADATA_RULE
        if self.gateway is not None and port == self.gateway.port and self._is_gateway(host):
            return (
                f"points at this gateway itself ({self.gateway}): every request sent there would loop "
                "back into the gateway; use the real upstream's address"
            )
        return None

    def _is_gateway(self, host: str) -> bool:
        assert self.gateway is not None
        targets = self._addresses(host)
        if not targets:
            return False
        bound = self.gateway.host.strip("[]")
        if bound in _WILDCARDS:
            return any(_is_local(address) for address in targets)
        own = self._addresses(bound)
        if any(address.is_loopback for address in own) and any(address.is_loopback for address in targets):
            return True  # 127.0.0.1 vs localhost vs 127.0.0.2: one loopback service, same port
        return bool(own & targets)

    def _addresses(self, host: str) -> set[IPAddress]:
        key = host.lower().rstrip(".")
        if key not in self._seen:
            self._seen[key] = _resolve(key)
        return self._seen[key]


def url_host(url: str) -> str:
    """The host of a URL as the upstream session sees it (lower case, IPv6 without brackets)."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return ""
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(host).compressed
    return host
