"""`settle_later`: what a finished, failed, cut or abandoned request leaves counted against a tokens rule."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from relaygate.context import RequestContext, Usage
from relaygate.limits.backend import Reservation
from relaygate.limits.gate import settle_later
from relaygate.limits.memory import MemoryBackend
from tests.limits.conftest import FakeClock, compile_, user

MODEL = "anth/claude"
ESTIMATE = 2207  # 207 input tokens + max_tokens 2000


@dataclass
class _Gateway:
    """The two attributes `settle_later` uses."""

    limits: MemoryBackend
    background: set[asyncio.Task[None]] = field(default_factory=set)


async def _used_after(clock: FakeClock, *, status: int, usage: Usage, truncated: bool = False) -> float:
    """Reserve ESTIMATE tokens, end the request as described, settle; return the tokens left counted."""
    gateway = _Gateway(MemoryBackend(clock=clock))
    plan = compile_([{"id": "tpm", "limit_to": 100_000, "unit": "tokens_per_minute"}]).match(user(), MODEL, {})
    reservation = await gateway.limits.reserve(plan, tokens=ESTIMATE)
    assert isinstance(reservation, Reservation)
    ctx = RequestContext("req-1", "POST", "/api/llm/messages", status=status, usage=usage, truncated=truncated)
    settle_later(gateway, reservation, ctx)  # type: ignore[arg-type]
    await asyncio.gather(*gateway.background)
    probe = await gateway.limits.reserve(plan, tokens=0)
    assert isinstance(probe, Reservation)
    return 100_000 - probe.remaining[0]


async def test_a_completed_request_settles_to_its_reported_usage(clock: FakeClock) -> None:
    assert await _used_after(clock, status=200, usage=Usage(input_tokens=207, output_tokens=40)) == 247


async def test_a_stream_the_client_left_keeps_its_estimate_despite_partial_usage(clock: FakeClock) -> None:
    # An Anthropic stream reports input tokens and 1 output token in message_start; the client leaves
    # after it while the upstream goes on writing: that usage is not what the request used.
    assert await _used_after(clock, status=499, usage=Usage(input_tokens=207, output_tokens=1)) == ESTIMATE


async def test_a_cut_stream_is_charged_its_usage_when_that_exceeds_the_estimate(clock: FakeClock) -> None:
    used = await _used_after(clock, status=200, usage=Usage(input_tokens=207, output_tokens=3000), truncated=True)
    assert used == 3207


@pytest.mark.parametrize("status", [499, 200])
async def test_no_usage_keeps_the_estimate(clock: FakeClock, status: int) -> None:
    assert await _used_after(clock, status=status, usage=Usage(), truncated=status == 200) == ESTIMATE


async def test_a_failed_request_without_usage_gives_the_estimate_back(clock: FakeClock) -> None:
    assert await _used_after(clock, status=502, usage=Usage()) == 0
