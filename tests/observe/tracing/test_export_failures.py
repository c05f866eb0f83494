"""A dead or slow collector never fails or slows a request; a full export queue drops and counts."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

from tests.helpers.gateway import free_port
from tests.helpers.otlp_receiver import OTLPReceiver
from tests.observe.tracing.conftest import Traced, running, tracing_env

REQUESTS = 30
FAST_ENOUGH = 0.5  # seconds for one chat request against a local mock (the collector is never waited on)


@contextlib.contextmanager
def gateway(root: Path, receiver: OTLPReceiver, endpoint: str, **env: str) -> Iterator[Traced]:
    generator = running(root, receiver, tracing_env(endpoint, **env))
    try:
        yield next(generator)
    finally:
        generator.close()


def timed_chats(traced: Traced) -> list[float]:
    client = traced.gateway.client(traced.alice)
    times = []
    for _ in range(REQUESTS):
        started = time.perf_counter()
        answer = client.chat.completions.create(
            model="openai-main/gpt-4o", messages=[{"role": "user", "content": "still fast?"}]
        )
        times.append(time.perf_counter() - started)
        assert answer.choices[0].message.content
    return times


def test_dead_collector_fails_and_slows_nothing(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with OTLPReceiver() as unused, gateway(tmp_path, unused, dead, OTEL_EXPORTER_OTLP_TIMEOUT="1") as traced:
        times = timed_chats(traced)
        tracing = traced.state.tracing
        assert tracing is not None
        stopping = time.perf_counter()
        traced.gateway.stop()
        assert time.perf_counter() - stopping < 8.0, "shutdown waited on the dead collector"
    assert max(times) < FAST_ENOUGH, f"slowest request {max(times):.3f}s"
    assert tracing.queue.exported == 0 and tracing.queue.failed + tracing.dropped > 0


def test_slow_collector_fills_the_queue_which_drops_and_counts(tmp_path: Path) -> None:
    with (
        OTLPReceiver(delay=1.0) as slow,
        gateway(
            tmp_path,
            slow,
            slow.endpoint,
            OTEL_BSP_MAX_QUEUE_SIZE="4",
            OTEL_BSP_MAX_EXPORT_BATCH_SIZE="2",
            OTEL_EXPORTER_OTLP_TIMEOUT="5",
        ) as traced,
    ):
        times = timed_chats(traced)
        tracing = traced.state.tracing
        assert tracing is not None
        assert max(times) < FAST_ENOUGH, f"slowest request {max(times):.3f}s"
        assert tracing.dropped > 0, "a queue of 4 cannot hold 60 spans behind a 1 s collector"
        slow.wait(lambda spans: len(spans) >= 2)  # what was queued still arrives
        assert "trace export queue full" in traced.gateway.output()
        assert traced.gateway.output().count("trace export queue full") < 5, "logged once per outage, not per span"
