"""Target health: automatic cooldown after repeated failures, shared by every routing strategy.

docs/SCHEMAS.md semantics: only upstream-caused failures count (401, 403, 429, 5xx, network errors);
`threshold` failures inside `window` seconds cool a target for `base_cooldown` seconds; a repeat
cooldown doubles (capped); a success resets; a 429 with `retry-after` cools at least that long.
Cooled targets are tried last, never skipped. The clock is injectable so tests can walk the edges.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("relaygate.routing")

MAX_TRACKED_TARGETS = 100_000
_MAX_DOUBLINGS = 32  # keeps `2 ** streak` finite; any real cap is reached long before


def counts_toward_cooldown(status: int | None, network_error: bool) -> bool:
    """401, 403, 429, 5xx and upstream network errors; never 400/404/413/422 or caller-side events."""
    if network_error:
        return True
    if status is None:
        return False
    return status in (401, 403, 429) or 500 <= status <= 599


@dataclass(frozen=True, slots=True)
class CooldownPolicy:
    """How failures turn into cooldown (custom endpoints: 3 in 60 s -> 30 s, doubling to 5 min)."""

    threshold: int = 3
    window: float = 60.0
    base_cooldown: float = 30.0
    max_cooldown: float = 300.0


@dataclass(slots=True)
class _TargetHealth:
    failures: deque[float] = field(default_factory=deque)  # bounded: only the last `threshold` matter
    cooled_until: float = 0.0
    streak: int = 0  # consecutive cooldowns without a success in between


class HealthTracker:
    """In-process cooldown state keyed by target key (e.g. `proxy:acct/endpoint`)."""

    def __init__(self, policy: CooldownPolicy | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy or CooldownPolicy()
        self._clock = clock
        self._targets: dict[str, _TargetHealth] = {}
        # Called with (key, seconds) when a cooldown starts or grows here (replicas share it via Redis).
        self.on_cooldown: Callable[[str, float], None] | None = None
        self.cooldowns: Counter[str] = Counter()  # cooldowns started here, by key (metrics read it)

    def apply_remote(self, key: str, seconds: float) -> None:
        """A cooldown another replica started: honoured here too (no failure counted, no streak)."""
        if not seconds > 0:
            return
        state = self._targets.get(key)
        if state is None:
            if len(self._targets) >= MAX_TRACKED_TARGETS:
                self._targets.pop(next(iter(self._targets)))
            state = _TargetHealth(failures=deque(maxlen=max(self.policy.threshold, 1)))
            self._targets[key] = state
        state.cooled_until = max(state.cooled_until, self._clock() + min(seconds, self.policy.max_cooldown))

    def now(self) -> float:
        return self._clock()

    def is_cooled(self, key: str, now: float | None = None) -> bool:
        state = self._targets.get(key)
        if state is None:
            return False
        return (self._clock() if now is None else now) < state.cooled_until

    def tracked(self) -> int:
        """How many targets have state (bounded by MAX_TRACKED_TARGETS)."""
        return len(self._targets)

    def cooled_until(self, key: str) -> float:
        state = self._targets.get(key)
        return state.cooled_until if state is not None else 0.0

    def record_success(self, key: str) -> None:
        """A success clears failures and the doubling streak (an active cooldown ends too)."""
        state = self._targets.get(key)
        if state is not None:
            del self._targets[key]

    def record_failure(self, key: str, retry_after: float | None = None) -> bool:
        """Count one upstream failure; True when it started or lengthened a cooldown."""
        now = self._clock()
        policy = self.policy
        state = self._targets.pop(key, None)  # re-inserted below: eviction drops the least recently failed
        if state is None:
            if len(self._targets) >= MAX_TRACKED_TARGETS:
                self._targets.pop(next(iter(self._targets)))
            state = _TargetHealth(failures=deque(maxlen=max(policy.threshold, 1)))
        self._targets[key] = state
        failures = state.failures
        failures.append(now)
        while failures and now - failures[0] >= policy.window:  # exactly `window` old: no longer counts
            failures.popleft()
        was_cooled = now < state.cooled_until
        counted = len(failures)
        cooled = False
        if len(failures) >= policy.threshold and now >= state.cooled_until:
            duration = min(policy.base_cooldown * 2.0**state.streak, policy.max_cooldown)
            state.streak = min(state.streak + 1, _MAX_DOUBLINGS)
            state.cooled_until = now + duration
            failures.clear()
            cooled = True
        if retry_after is not None and retry_after > 0:  # NaN fails the comparison and is ignored
            until = now + min(retry_after, policy.max_cooldown)
            if until > state.cooled_until:
                state.cooled_until = until
                cooled = True
        if cooled:
            if not was_cooled:  # once per cooldown: a longer one for a cooled target is not news
                _log_cooldown(key, counted, policy.window, state.cooled_until - now, retry_after)
            if key in self.cooldowns or len(self.cooldowns) < MAX_TRACKED_TARGETS:
                self.cooldowns[key] += 1
            if self.on_cooldown is not None:
                self.on_cooldown(key, state.cooled_until - now)
        return cooled


def _log_cooldown(key: str, failures: int, window: float, seconds: float, retry_after: float | None) -> None:
    """WARNING: which target, why, and until when (wall clock, UTC); the key names config, never secrets."""
    until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + seconds))
    why = f"{failures} upstream failure(s) within {window:g}s"
    if retry_after is not None and retry_after > 0:
        why += f", retry-after {retry_after:g}s"
    log.warning("target cooled down: %s after %s; tried last for %.1fs, until %s", key, why, seconds, until)
