"""Which destination addresses are link-local or cloud metadata services, in every spelling.

A base URL or a DNS answer can name 169.254.169.254 as `2852039166`, `0xa9fea9fe`, `0251.0376.0251.0376`,
`169.254.43518`, `::ffff:169.254.169.254` or `[fd00:ec2::254]`; all of them reach the metadata
service, so all of them are recognised here. Used when a config is compiled (literal hosts) and at
connect time (literal hosts and DNS answers); nothing here does I/O.
"""

from __future__ import annotations

import ipaddress
import re
import socket

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA_NETWORKS = (
    ipaddress.ip_network("169.254.0.0/16"),  # IPv4 link-local: AWS, GCP, Azure, OCI metadata (169.254.169.254)
    ipaddress.ip_network("fe80::/10"),  # IPv6 link-local
    ipaddress.ip_network("fd00:ec2::254/128"),  # AWS metadata over IPv6
    ipaddress.ip_network("100.100.100.200/32"),  # Alibaba Cloud metadata
)

# The forms inet_aton(3) accepts: 1 to 4 parts, each decimal, octal (leading 0) or hex (0x).
_NUMERIC_IPV4 = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}$", re.IGNORECASE)


def parse_address(host: str) -> IPAddress | None:
    """The IP address a URL host or DNS answer denotes, or None for a name.

    Accepts brackets, IPv6 zone ids, a trailing dot and the legacy numeric IPv4 forms, as the
    socket layer would; an IPv4-mapped IPv6 address is returned as its IPv4 address.
    """
    text = host.strip().strip("[]").split("%", 1)[0].rstrip(".")
    if not text:
        return None
    try:
        address: IPAddress = ipaddress.ip_address(text)
    except ValueError:
        if not _NUMERIC_IPV4.match(text):
            return None
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(text))
        except OSError:
            return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_metadata_address(host: str) -> bool:
    """True when `host` is an address (in any spelling) in a link-local or cloud-metadata range."""
    address = parse_address(host)
    return address is not None and any(address in network for network in METADATA_NETWORKS)
