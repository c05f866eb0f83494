"""The DNS guard: names resolving to link-local/metadata addresses are refused unless allowed."""

import socket

import aiohttp
import pytest
from aiohttp.abc import ResolveResult

from relaygate.upstream.resolver import GuardedConnector, GuardedResolver, MetadataDestinationRefused
from relaygate.upstream.session import create_session


class _FixedAnswers:
    """Stands in for DNS: the answers a name would get, so the guard sees a metadata address."""

    def __init__(self, *hosts: str) -> None:
        self.hosts = hosts

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [ResolveResult(hostname=host, host=h, port=port, family=family, proto=0, flags=0) for h in self.hosts]

    async def close(self) -> None:
        return None


def _guard(allowed: set[str], *answers: str) -> GuardedResolver:
    guard = GuardedResolver(lambda host: host in allowed)
    guard._inner = _FixedAnswers(*answers)  # type: ignore[assignment]
    return guard


async def test_metadata_only_answer_is_refused() -> None:
    with pytest.raises(MetadataDestinationRefused):
        await _guard(set(), "169.254.169.254").resolve("sneaky.example", 80)


async def test_metadata_answers_are_dropped_from_mixed_results() -> None:
    results = await _guard(set(), "169.254.169.254", "10.0.0.5").resolve("mixed.example", 80)
    assert [r["host"] for r in results] == ["10.0.0.5"]


async def test_allowed_host_may_resolve_to_metadata() -> None:
    results = await _guard({"imds.internal"}, "169.254.169.254").resolve("imds.internal", 80)
    assert results[0]["host"] == "169.254.169.254"


async def test_ipv6_metadata_and_mapped_ipv4_are_refused() -> None:
    for answer in ("fd00:ec2::254", "::ffff:169.254.169.254"):
        with pytest.raises(MetadataDestinationRefused):
            await _guard(set(), answer).resolve("v6.example", 80)


async def test_real_resolution_of_loopback_passes() -> None:
    results = await GuardedResolver(lambda host: False).resolve("localhost", 80)
    assert results


# -- IP literals never reach a resolver: the connector itself refuses them ---------------------------

LITERAL_METADATA_URLS = [
    "http://169.254.169.254/latest/meta-data/",
    "http://[::ffff:169.254.169.254]/",
    "http://[fd00:ec2::254]/",
    "http://2852039166/",
    "http://0xa9fea9fe/",
    "http://0251.0376.0251.0376/",
    "http://169.254.43518/",
    "http://169.254.169.254./",
]


@pytest.mark.parametrize("url", LITERAL_METADATA_URLS)
async def test_the_upstream_session_refuses_literal_metadata_addresses(url: str) -> None:
    session = create_session(5.0, lambda host: False)
    try:
        with pytest.raises(aiohttp.ClientConnectorError) as caught:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=5)):
                pass
        assert isinstance(caught.value.__cause__, MetadataDestinationRefused)
    finally:
        await session.close()


async def test_an_allowed_literal_host_passes_the_guard() -> None:
    # Resolution only (no connection is made to the address).
    connector = GuardedConnector(lambda host: host == "169.254.169.254")
    try:
        [result] = await connector._resolve_host("169.254.169.254", 80)
        assert result["host"] == "169.254.169.254"
        with pytest.raises(MetadataDestinationRefused):
            await connector._resolve_host("169.254.169.253", 80)
    finally:
        await connector.close()
