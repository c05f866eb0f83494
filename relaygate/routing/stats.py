"""Per-target speed: time per output token (TPOT), for latency-based routing and SLA cutoffs.

Samples older than the longest window (20 minutes) are dropped as new ones arrive; every query is a
walk over one target's recent samples, bounded by `MAX_SAMPLES`.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

LATENCY_WINDOW = 20 * 60.0  # latency-based routing looks at the last 20 minutes
SLA_WINDOW = 3 * 60.0  # priority SLA cutoffs average over 3-minute windows
MAX_SAMPLES = 2_000
MAX_TRACKED_TARGETS = 100_000


class LatencyStats:
    """Recent (time, ms per output token) samples per target key."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._samples: dict[str, deque[tuple[float, float]]] = {}

    def record(self, key: str, duration_ms: float, output_tokens: int | None) -> None:
        """One successful answer: its generation time spread over its output tokens."""
        if not output_tokens or output_tokens <= 0 or duration_ms < 0:
            return
        samples = self._samples.get(key)
        if samples is None:
            if len(self._samples) >= MAX_TRACKED_TARGETS:
                self._samples.pop(next(iter(self._samples)))
            samples = self._samples[key] = deque(maxlen=MAX_SAMPLES)
        now = self._clock()
        samples.append((now, duration_ms / output_tokens))
        while samples and samples[0][0] <= now - LATENCY_WINDOW:
            samples.popleft()

    def _recent(self, key: str, window: float) -> list[float]:
        samples = self._samples.get(key)
        if not samples:
            return []
        cutoff = self._clock() - window
        return [tpot for at, tpot in samples if at > cutoff]

    def count(self, key: str, window: float = LATENCY_WINDOW) -> int:
        return len(self._recent(key, window))

    def tpot(self, key: str, window: float = LATENCY_WINDOW) -> float | None:
        """Mean ms per output token over the window, None without samples."""
        recent = self._recent(key, window)
        return sum(recent) / len(recent) if recent else None
