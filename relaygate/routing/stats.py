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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from relaygate.context import RequestContext

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


RECENT_WINDOW = 5 * 60.0  # the dashboard's "recent": the last five minutes
RECENT_SAMPLES = 256  # per target: p50 and error rate over at most this many latest attempts


class _Recent:
    """One target's latest attempts: (time, ms, failed), oldest first, bounded."""

    __slots__ = ("samples",)

    def __init__(self) -> None:
        self.samples: deque[tuple[float, float, bool]] = deque(maxlen=RECENT_SAMPLES)


class RecentAttempts:
    """Recent upstream attempts per target key (`model:acct/integration`, `proxy:acct/endpoint`): request
    count, latency p50 and error rate over the last `RECENT_WINDOW` seconds, for the admin API.

    A `gateway.recorders` entry: it reads the attempts of the finished-request record after the answer
    is out (one deque append per attempt, no sorting), so the request path pays nothing for it; the
    median is computed only when the admin API asks. Memory is bounded: `RECENT_SAMPLES` per target,
    `MAX_TRACKED_TARGETS` targets (the least recently added is dropped first).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._targets: dict[str, _Recent] = {}

    def __call__(self, ctx: RequestContext, record: object) -> None:
        attempts = ctx.attempts
        if not attempts:
            return
        prefix = "model:"
        if ctx.operation == "proxy":  # a custom endpoint's attempts name the endpoint: qualify it
            prefix = f"proxy:{(ctx.requested_model or '').partition('/')[0]}/"
        now = self._clock()
        for attempt in attempts:
            self.record(prefix + attempt.target, attempt.duration_ms, _failed(attempt.status, attempt.error), now)

    def record(self, key: str, duration_ms: float, failed: bool, now: float | None = None) -> None:
        series = self._targets.get(key)
        if series is None:
            if len(self._targets) >= MAX_TRACKED_TARGETS:
                self._targets.pop(next(iter(self._targets)))
            series = self._targets[key] = _Recent()
        series.samples.append((self._clock() if now is None else now, duration_ms, failed))

    def summary(self, *keys: str) -> tuple[int, float | None, float | None]:
        """(attempts, latency p50 in ms, error rate 0..1) over the window, across `keys` (a virtual
        model's targets together); (0, None, None) without any attempt."""
        cutoff = self._clock() - RECENT_WINDOW
        durations: list[float] = []
        errors = 0
        for key in keys:
            series = self._targets.get(key)
            if series is None:
                continue
            for at, ms, failed in series.samples:
                if at > cutoff:
                    durations.append(ms)
                    errors += failed
        if not durations:
            return 0, None, None
        durations.sort()
        middle = len(durations) // 2
        p50 = durations[middle] if len(durations) % 2 else (durations[middle - 1] + durations[middle]) / 2.0
        return len(durations), round(p50, 3), round(errors / len(durations), 4)


def _failed(status: int | None, error: str | None) -> bool:
    """An upstream's fault: no answer (network error, timeout), a 5xx, 429, 401 or 403 (as cooldown counts)."""
    if status is None:
        return error is not None
    return status >= 500 or status in (401, 403, 429)
