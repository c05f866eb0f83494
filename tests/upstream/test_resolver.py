"""The DNS guard: names resolving to link-local/metadata addresses are refused unless allowed."""

import socket

import pytest
from aiohttp.abc import ResolveResult

from relaygate.upstream.resolver import GuardedResolver, MetadataDestinationRefused


class _FixedAnswers:
    """Stands in for DNS: the answers a name would get, so the guard sees a metadata address."""

    def __init__(self, *hosts: str) -> None:
        self.hosts = hosts

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
                      ) -> list[ResolveResult]:
        return [ResolveResult(hostname=host, host=h, port=port, family=family, proto=0, flags=0)
                for h in self.hosts]

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
