"""`settle_later`: what a finished, failed, cut or abandoned request leaves counted against a tokens rule.

`settle_later` runs in the handler's `finally`, before the dispatcher has turned a raised error into
`ctx.status`: a request failing there still has status 0 (no answer started).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from relaygate.context import RequestContext, Usage
from relaygate.limits.backend import Backend, Reservation
from relaygate.pipeline.admission import settle_later
from tests.limits.conftest import compile_, user

MODEL = "anth/claude"
ESTIMATE = 2207  # 207 input tokens + max_tokens 2000
LIMIT = 100_000


@dataclass
class _SettleHost:
    """The two attributes `settle_later` uses."""

    limits: Backend
    background: set[asyncio.Task[None]] = field(default_factory=set)


def _plan():  # type: ignore[no-untyped-def]
    return compile_(
        [{"id": "tpm", "limit_to": LIMIT, "unit": "tokens_per_minute"}],
        [{"id": "daily", "limit_to": 10.0, "unit": "cost_per_day"}],
    ).match(user(), MODEL, {})


async def _counted(gateway: _SettleHost) -> tuple[float, float]:
    """(tokens, dollars) counted now: a zero-amount probe reports what is left."""
    probe = await gateway.limits.reserve(_plan(), tokens=0, cost=0.0)
    assert isinstance(probe, Reservation), probe
    return LIMIT - probe.remaining[0], round(10.0 - probe.remaining[1], 9)


async def _used_after(
    backend: Backend, *, status: int, usage: Usage, truncated: bool = False, ttft_ms: float | None = None
) -> float:
    """Reserve ESTIMATE tokens, end the request as described, settle; return the tokens left counted."""
    gateway = _SettleHost(backend)
    reservation = await backend.reserve(_plan(), tokens=ESTIMATE, cost=0.5)
    assert isinstance(reservation, Reservation)
    ctx = RequestContext(
        "req-1", "POST", "/api/llm/messages", status=status, usage=usage, truncated=truncated, ttft_ms=ttft_ms
    )
    settle_later(gateway, reservation, ctx)  # type: ignore[arg-type]
    await asyncio.gather(*gateway.background)
    return (await _counted(gateway))[0]


async def test_a_completed_request_settles_to_its_reported_usage(backend: Backend) -> None:
    assert await _used_after(backend, status=200, usage=Usage(input_tokens=207, output_tokens=40)) == 247


async def test_a_stream_the_client_left_keeps_its_estimate_despite_partial_usage(backend: Backend) -> None:
    # An Anthropic stream reports input tokens and 1 output token in message_start; the client leaves
    # after content went out while the upstream goes on writing: that usage is not what the request used.
    assert (
        await _used_after(backend, status=499, usage=Usage(input_tokens=207, output_tokens=1), ttft_ms=120.0)
        == ESTIMATE
    )


async def test_a_cut_stream_is_charged_its_usage_when_that_exceeds_the_estimate(backend: Backend) -> None:
    used = await _used_after(
        backend, status=200, usage=Usage(input_tokens=207, output_tokens=3000), truncated=True, ttft_ms=80.0
    )
    assert used == 3207


@pytest.mark.parametrize(("status", "truncated"), [(499, False), (200, True), (200, False)])
async def test_an_answered_request_without_usage_keeps_the_estimate(
    backend: Backend, status: int, truncated: bool
) -> None:
    used = await _used_after(backend, status=status, usage=Usage(), truncated=truncated, ttft_ms=50.0)
    assert used == ESTIMATE


@pytest.mark.parametrize(
    "status",
    [
        0,  # an error raised before any answer: adapter 400, upstream 4xx/5xx, 502 unreachable, 504, all fallbacks
        502,  # an upstream error status the handler recorded before raising (the Responses relay)
        429,
        499,  # the caller left before the first content
    ],
)
async def test_a_request_that_failed_before_any_answer_gives_everything_back(backend: Backend, status: int) -> None:
    gateway = _SettleHost(backend)
    reservation = await backend.reserve(_plan(), tokens=ESTIMATE, cost=0.5)
    assert isinstance(reservation, Reservation)
    assert await _counted(gateway) == (ESTIMATE, 0.5)
    settle_later(
        gateway,
        reservation,
        RequestContext(
            "r",
            "POST",
            "/api/llm/chat/completions",  # type: ignore[arg-type]
            status=status,
        ),
    )
    await asyncio.gather(*gateway.background)
    assert await _counted(gateway) == (0, 0.0)


async def test_a_thousand_mixed_failures_leave_every_counter_at_zero(backend: Backend) -> None:
    # Failures as the handlers leave them: raised before an answer (status 0: gateway or adapter
    # 400s, unreachable upstreams, timeouts, streams failing before content, every fallback failing),
    # an upstream error status recorded, and callers leaving before the first content. Each batch is
    # in flight together (the estimates must fit), then settles.
    gateway = _SettleHost(backend)
    kinds = [0, 502, 503, 504, 429, 499]
    for batch in range(25):
        held = []
        for i in range(40):
            reservation = await backend.reserve(_plan(), tokens=ESTIMATE, cost=0.2)
            assert isinstance(reservation, Reservation), (batch, i, reservation)
            held.append(reservation)
        for i, reservation in enumerate(held):
            status = kinds[(batch * 40 + i) % len(kinds)]
            ctx = RequestContext("r", "POST", "/api/llm/chat/completions", status=status, streaming=bool(i % 2))
            settle_later(gateway, reservation, ctx)  # type: ignore[arg-type]
        await asyncio.gather(*gateway.background)
    assert await _counted(gateway) == (0, 0.0)
    # The whole limit is free again: an estimate of exactly the limit fits.
    assert isinstance(await backend.reserve(_plan(), tokens=LIMIT, cost=10.0), Reservation)
