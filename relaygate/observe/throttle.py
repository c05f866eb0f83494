"""At most one warning per key per interval, with a count of the ones held back.

A failing upstream fails every request that reaches it; one log line per failure would flood the log
(and cost the event loop a synchronous write each). A `Throttle` lets the first through, counts the
rest, and hands the count to the next one it lets through.
"""

from __future__ import annotations

import time
from collections.abc import Callable

MAX_KEYS = 1024


class Throttle:
    """Per-key gate: `allow(key)` is None (held back, counted) or the count held back since the last."""

    def __init__(
        self, interval: float, *, clock: Callable[[], float] = time.monotonic, max_keys: int = MAX_KEYS
    ) -> None:
        self.interval = interval
        self._clock = clock
        self._max_keys = max(max_keys, 1)
        self._keys: dict[str, list[float | int]] = {}  # key -> [last report time, held back since]

    def allow(self, key: str) -> int | None:
        """None when `key` reported less than `interval` ago (counted); else how many were held back."""
        now = self._clock()
        entry = self._keys.get(key)
        if entry is not None and now - entry[0] < self.interval:
            entry[1] += 1
            return None
        held = int(entry[1]) if entry is not None else 0
        if entry is None and len(self._keys) >= self._max_keys:
            self._keys.pop(next(iter(self._keys)))  # the oldest key: bounded whatever keys callers cause
        self._keys[key] = [now, 0]
        return held

    def pending(self, key: str) -> int:
        """How many were held back since `key` last reported (to report them at shutdown); resets."""
        entry = self._keys.get(key)
        if entry is None:
            return 0
        held = int(entry[1])
        entry[1] = 0
        return held
