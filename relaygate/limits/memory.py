"""In-process limits: the default backend for one gateway process (no Redis).

State lives on the backend instance (held by the app), never at module level. Reserve and settle do
not await anything, so on one event loop each runs to completion without interleaving: check-all
then take-all is atomic without locks. Separate processes (workers, replicas) do NOT share these
counters; use RedisBackend for that.

Memory is bounded by activity: a sliding bucket is a 61-float ring (about 0.6 KB) and a budget
bucket one float; buckets idle for a whole window (sliding) or past their calendar window are
swept every `sweep_interval` seconds, so unbounded metadata values cost memory only while active.
"""

from __future__ import annotations

import time
from array import array

from relaygate.limits.backend import (
    MAX_USAGE_BUCKETS,
    BackendStats,
    BucketUsage,
    Clock,
    Refusal,
    RefusalReason,
    Reservation,
    admits,
    amount_for,
    busiest,
    oversized,
    retry_seconds,
    sliding_usage,
    slot_leaves_ms,
    slot_stamp,
)
from relaygate.limits.budgets import SETTLE_GRACE, WindowCache
from relaygate.limits.rules import SLOTS, Plan, Rule

_RING = SLOTS + 1  # the current slot and the SLOTS before it


class _Window:
    """A sliding window as a ring of per-slot amounts, each slot's latest reservation time, and their total."""

    __slots__ = ("counts", "last", "total", "lo", "idle_at")

    def __init__(self, cur: int) -> None:
        self.counts = array("d", bytes(8 * _RING))
        self.last = array("d", bytes(8 * _RING))  # ms of the latest reservation made in each slot
        self.total = 0.0
        self.lo = cur - SLOTS  # oldest slot still stored (counted until its latest reservation is W old)
        self.idle_at = 0  # ms after which every slot has left the window

    def advance(self, cur: int) -> int:
        """Forget slots older than cur - SLOTS; returns the effective current slot (never backwards)."""
        new_lo = cur - SLOTS
        lo = self.lo
        if new_lo <= lo:
            return lo + SLOTS
        if new_lo > lo + SLOTS:
            for i in range(_RING):
                self.counts[i] = 0.0
                self.last[i] = 0.0
            self.total = 0.0
        else:
            counts = self.counts
            for s in range(lo, new_lo):
                i = s % _RING
                self.total -= counts[i]
                counts[i] = 0.0
                self.last[i] = 0.0
        self.lo = new_lo
        return cur

    def live(self, now_ms: int, window_ms: int) -> float:
        """What counts now: the total minus the oldest slot once its latest reservation is W old."""
        i = self.lo % _RING
        if self.counts[i] and now_ms >= self.last[i] + window_ms:
            return self.total - self.counts[i]
        return self.total

    def add(self, slot: int, amount: float, stamp: float | None = None) -> None:
        i = slot % _RING
        value = self.counts[i] + amount
        if value < 0:
            amount -= value
            value = 0.0
        self.counts[i] = value
        self.total = max(0.0, self.total + amount)
        if stamp is not None and stamp > self.last[i]:
            self.last[i] = stamp

    def counts_slot(self, slot: int, now_ms: int, window_ms: int) -> bool:
        """Whether a reservation made in `slot` is still counted (stored, and its slot not W old)."""
        return self.lo <= slot <= self.lo + SLOTS and now_ms < self.last[slot % _RING] + window_ms

    def retry_ms(self, amount: float, limit: float, cur: int, window_ms: int, now_ms: int) -> int:
        """Time until enough of the oldest slots leave for `amount` to fit (each W after its latest reservation)."""
        used = self.live(now_ms, window_ms)
        freed = 0.0
        for s in range(self.lo, cur + 1):
            i = s % _RING
            count = self.counts[i]
            if not count or now_ms >= self.last[i] + window_ms:
                continue  # empty, or already out of the window (not part of `used`)
            freed += count
            if admits(used - freed, amount, limit):
                # at most W: a reservation stamped by a clock slightly ahead of ours must not say W + 1 s
                return min(int(self.last[i]) + window_ms - now_ms, window_ms)
        return window_ms


class _Counter:
    """A budget's spend in one calendar window."""

    __slots__ = ("value", "expires")

    def __init__(self, expires: int) -> None:
        self.value = 0.0
        self.expires = expires  # epoch seconds: window end + settle grace


class MemoryBackend:
    """Per-process reserve/settle over sliding windows (rate limits) and calendar counters (budgets)."""

    def __init__(self, *, clock: Clock = time.time, sweep_interval: float = 60.0) -> None:
        self._clock = clock
        self._windows: dict[str, _Window] = {}
        self._counters: dict[str, _Counter] = {}
        self._calendar = WindowCache()
        self._sweep_interval_ms = int(sweep_interval * 1000)
        self._next_sweep_ms = 0
        self.stats = BackendStats()

    def __len__(self) -> int:
        """Live buckets (for tests and a gauge)."""
        return len(self._windows) + len(self._counters)

    async def reserve(
        self, plan: Plan, *, tokens: int = 0, cost: float = 0.0, now: float | None = None
    ) -> Reservation | Refusal:
        """All-or-nothing check-and-take over every hit of the plan."""
        if not plan:
            return Reservation(plan)
        self.stats.reserves_total += 1
        too_big = oversized(plan, tokens, cost) if plan.needs_tokens or plan.needs_cost else None
        if too_big is not None:
            self.stats.refusals_total += 1
            return too_big
        now = self._clock() if now is None else now
        now_ms = int(now * 1000)
        if now_ms >= self._next_sweep_ms:
            self.sweep(now)
        hits = plan.hits
        keys: list[str] = []
        slots: list[int] = []
        used: list[float] = []
        amounts: list[float] = []
        for hit in hits:
            rule = hit.rule
            amount = amount_for(rule, tokens, cost)
            if rule.sliding:
                key = hit.key
                cur = now_ms // rule.slot_ms
                window = self._windows.get(key)
                if window is not None:
                    cur = window.advance(cur)
                u = 0.0 if window is None else window.live(now_ms, rule.window_ms)
                if not rule.audit and not admits(u, amount, rule.limit):
                    retry = window.retry_ms(amount, rule.limit, cur, rule.window_ms, now_ms) if window else 1000
                    return self._refuse(rule, retry)
            else:
                start, end = self._calendar.get(rule.period, now)
                key = f"{hit.key}:{start}"
                counter = self._counters.get(key)
                cur = 0
                u = 0.0 if counter is None else counter.value
                if not rule.audit and not admits(u, amount, rule.limit):
                    return self._refuse(rule, end * 1000 - now_ms)
            keys.append(key)
            slots.append(cur)
            used.append(u)
            amounts.append(amount)
        for hit, key, slot, amount in zip(hits, keys, slots, amounts, strict=True):
            rule = hit.rule
            if rule.sliding:
                window = self._windows.get(key)
                if window is None:
                    window = self._windows[key] = _Window(slot)
                window.add(slot, amount, slot_stamp(now_ms, slot, rule.slot_ms))
                window.idle_at = slot_leaves_ms(slot, rule.slot_ms)
            else:
                counter = self._counters.get(key)
                if counter is None:
                    _, end = self._calendar.get(rule.period, now)
                    counter = self._counters[key] = _Counter(end + SETTLE_GRACE)
                counter.value += amount
        remaining = tuple(h.rule.limit - u - a for h, u, a in zip(hits, used, amounts, strict=True))
        return Reservation(plan, tuple(keys), tuple(slots), tokens, cost, remaining)

    async def settle(
        self,
        reservation: Reservation,
        *,
        tokens: int | None = None,
        cost: float | None = None,
        now: float | None = None,
    ) -> None:
        """Move tokens/cost counters by (actual - reserved); the reserved slot if still counted, else now."""
        deltas = reservation.deltas(tokens, cost)
        reservation.settled = True
        if deltas is None:
            return
        now_ms = int((self._clock() if now is None else now) * 1000)
        rows = zip(reservation.plan.hits, reservation.keys, reservation.slots, deltas, strict=True)
        for hit, key, slot, delta in rows:
            if not delta:
                continue
            rule = hit.rule
            if rule.sliding:
                cur = now_ms // rule.slot_ms
                window = self._windows.get(key)
                if window is None:
                    if delta < 0:
                        continue
                    window = self._windows[key] = _Window(cur)
                cur = window.advance(cur)  # first, so a slot that has left is never touched
                if slot <= cur and window.counts_slot(slot, now_ms, rule.window_ms):
                    window.add(slot, delta)
                elif delta > 0:  # the reservation aged out (a request longer than the window)
                    window.add(cur, delta, slot_stamp(now_ms, cur, rule.slot_ms))
                    window.idle_at = max(window.idle_at, slot_leaves_ms(cur, rule.slot_ms))
            else:
                counter = self._counters.get(key)
                if counter is not None:
                    counter.value = max(0.0, counter.value + delta)

    def sweep(self, now: float | None = None) -> None:
        """Drop buckets nothing is counted in any more; runs by itself every `sweep_interval`."""
        now = self._clock() if now is None else now
        now_ms = int(now * 1000)
        for key in [k for k, w in self._windows.items() if w.idle_at <= now_ms]:
            del self._windows[key]
        for key in [k for k, c in self._counters.items() if c.expires <= now]:
            del self._counters[key]
        self._next_sweep_ms = now_ms + self._sweep_interval_ms

    async def usage(self, rule: Rule, *, limit: int = MAX_USAGE_BUCKETS, now: float | None = None) -> list[BucketUsage]:
        """The rule's live buckets, read without advancing or sweeping anything."""
        now = self._clock() if now is None else now
        now_ms = int(now * 1000)
        stem, nested = rule.stem, rule.stem + ":"
        out: list[BucketUsage] = []
        if rule.sliding:
            for key, window in list(self._windows.items()):
                if key != stem and not key.startswith(nested):
                    continue
                slots = {}
                for slot in range(window.lo, window.lo + _RING):
                    i = slot % _RING
                    if window.counts[i]:
                        slots[slot] = (window.counts[i], window.last[i])
                used, leaves_ms = sliding_usage(slots, window.lo, rule, now_ms)
                if used > 0:
                    out.append(BucketUsage(key, used, leaves_ms / 1000.0))
        else:
            start, end = self._calendar.get(rule.period, now)
            suffix = f":{start}"
            for key, counter in list(self._counters.items()):
                if key.endswith(suffix) and (key == stem + suffix or key.startswith(nested)):
                    out.append(BucketUsage(key[: -len(suffix)], counter.value, float(end)))
        return busiest(out, limit)

    async def aclose(self) -> None:
        """Nothing to release; present for the Backend protocol."""

    def _refuse(self, rule: Rule, retry_ms: float) -> Refusal:
        self.stats.refusals_total += 1
        reason: RefusalReason = "rate_limit" if rule.kind == "rate_limit" else "budget"
        return Refusal(reason, retry_seconds(retry_ms), rule.id, rule.limit, rule.unit)
