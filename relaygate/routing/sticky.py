"""Sticky routing: a session (header or metadata values) keeps going to the target that served it."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

MAX_SESSIONS = 100_000


class StickySessions:
    """session key -> (target name, expiry), bounded so unbounded session ids cannot grow memory."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, limit: int = MAX_SESSIONS) -> None:
        self._clock = clock
        self._limit = limit
        self._sessions: OrderedDict[tuple[str, str], tuple[str, float]] = OrderedDict()

    def get(self, key: tuple[str, str]) -> str | None:
        entry = self._sessions.get(key)
        if entry is None:
            return None
        if self._clock() >= entry[1]:
            del self._sessions[key]
            return None
        return entry[0]

    def remember(self, key: tuple[str, str], target: str, ttl: float) -> None:
        self._sessions[key] = (target, self._clock() + ttl)
        self._sessions.move_to_end(key)
        while len(self._sessions) > self._limit:
            self._sessions.popitem(last=False)
