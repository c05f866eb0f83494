"""Per-target speed: time per output token (TPOT), for latency-based routing and SLA cutoffs.

Samples older than the longest window (20 minutes) are dropped as new ones arrive and before every
query, and each target keeps a running sum, so the latency strategy's per-request questions (how many
recent samples, their mean) are O(1). Shorter windows (SLA cutoffs) walk back from the newest sample
only as far as the window reaches, bounded by `MAX_SAMPLES`.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

LATENCY_WINDOW = 20 * 60.0  # latency-based routing looks at the last 20 minutes
SLA_WINDOW = 3 * 60.0  # priority SLA cutoffs average over 3-minute windows
MAX_SAMPLES = 2_000
MAX_TRACKED_TARGETS = 100_000


class _Series:
    """One target's (time, ms per output token) samples, oldest first, with their sum."""

    __slots__ = ("samples", "total")

    def __init__(self) -> None:
        self.samples: deque[tuple[float, float]] = deque()
        self.total = 0.0

    def add(self, at: float, tpot: float) -> None:
        if len(self.samples) >= MAX_SAMPLES:
            self.total -= self.samples.popleft()[1]
        self.samples.append((at, tpot))
        self.total += tpot

    def prune(self, now: float) -> None:
        """Drop samples outside the longest window (exactly `LATENCY_WINDOW` old no longer counts)."""
        samples = self.samples
        cutoff = now - LATENCY_WINDOW
        while samples and samples[0][0] <= cutoff:
            self.total -= samples.popleft()[1]
        if not samples:
            self.total = 0.0  # no drift survives an empty series

    def window(self, cutoff: float) -> tuple[int, float]:
        """(count, sum) of samples newer than `cutoff`."""
        count = 0
        total = 0.0
        for at, tpot in reversed(self.samples):
            if at <= cutoff:
                break
            count += 1
            total += tpot
        return count, total


class LatencyStats:
    """Recent (time, ms per output token) samples per target key."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._series: dict[str, _Series] = {}

    def record(self, key: str, duration_ms: float, output_tokens: int | None) -> None:
        """One successful answer: its generation time spread over its output tokens."""
        if not output_tokens or output_tokens <= 0 or not duration_ms >= 0:  # NaN is refused too
            return
        series = self._series.get(key)
        if series is None:
            if len(self._series) >= MAX_TRACKED_TARGETS:
                self._series.pop(next(iter(self._series)))
            series = self._series[key] = _Series()
        now = self._clock()
        series.add(now, duration_ms / output_tokens)
        series.prune(now)

    def _stats(self, key: str, window: float) -> tuple[int, float]:
        series = self._series.get(key)
        if series is None:
            return 0, 0.0
        now = self._clock()
        series.prune(now)
        if window >= LATENCY_WINDOW:
            return len(series.samples), series.total
        return series.window(now - window)

    def count(self, key: str, window: float = LATENCY_WINDOW) -> int:
        return self._stats(key, window)[0]

    def tpot(self, key: str, window: float = LATENCY_WINDOW) -> float | None:
        """Mean ms per output token over the window, None without samples."""
        count, total = self._stats(key, window)
        return total / count if count else None
