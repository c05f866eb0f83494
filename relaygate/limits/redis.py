"""Limits shared by every replica through Redis: one script call per reserve and per settle.

Why it looks like this:
- One round trip: reserve sends every matched key to one Lua script (lua.py) that checks and takes
  atomically, so a limit of N is N across replicas and a refusal takes nothing from other rules.
  EVALSHA with a SCRIPT LOAD fallback (redis-py's Script), so the script text crosses the wire once;
  replies are parsed by hiredis (redis-py picks it up when installed, and it is a dependency).
- Bounded Redis memory: every key has a TTL (2 x window for sliding windows, the calendar window's end
  plus a grace for budgets), so unbounded metadata values in bucket keys expire by themselves.
- Failure is a setting (docs/SCHEMAS.md `limits.on_backend_error`): `allow` admits unchecked, `deny`
  refuses with a `backend_unavailable` Refusal (503 + retry-after, never 429/500). Both are counted
  in `stats` for metrics. Short socket timeouts and no client-side retries bound what a dead Redis
  costs one request; after a failure the backend skips Redis for `retry_interval` seconds (so a
  blackholed Redis does not cost every request a timeout) and then simply tries again: the pool
  reconnects by itself, and a failed call drops its connection, so nothing is poisoned.
- Time comes from the injectable clock, not Redis TIME, so tests can move it; replicas are expected
  to run NTP (slots are 1 s for per-minute rules; a key never moves backwards in time, see lua.py).
- Standalone Redis (or one node): the script touches several keys, so on Redis Cluster put a hash
  tag in the prefix (e.g. `{rg}:limits:`) to keep them in one slot.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from relaygate.limits.backend import (
    BACKEND_RETRY_AFTER,
    MAX_USAGE_BUCKETS,
    BackendStats,
    BucketUsage,
    Clock,
    Refusal,
    RefusalReason,
    Reservation,
    amount_for,
    busiest,
    oversized,
    retry_seconds,
    sliding_usage,
)
from relaygate.limits.budgets import SETTLE_GRACE, WindowCache
from relaygate.limits.lua import RESERVE, SETTLE
from relaygate.limits.rules import OnBackendError, Plan, Rule

log = logging.getLogger("relaygate.limits")

DEFAULT_PREFIX = "relaygate:limits:"
MAX_SCANNED_KEYS = 10_000  # `usage` reads at most this many keys per rule (SCAN, bounded count per call)
_SCAN_COUNT = 500
_GLOB_SPECIAL = str.maketrans({c: "\\" + c for c in "*?[]\\"})
_ERRORS = (RedisError, OSError, asyncio.TimeoutError)


def _sliding_from_hash(fields: dict[Any, Any], rule: Rule, now_ms: int) -> tuple[float, int]:
    """A sliding bucket's hash (slot -> amount, t<slot> -> latest ms, tot, lo) read as `sliding_usage` reads it."""
    text = {(k.decode() if isinstance(k, bytes) else str(k)): v for k, v in fields.items()}
    lo_raw = text.get("lo")
    if lo_raw is None:
        return 0.0, 0
    slots: dict[int, tuple[float, float]] = {}
    for name, value in text.items():
        if name.lstrip("-").isdigit():
            slot = int(name)
            slots[slot] = (float(value), float(text.get(f"t{slot}", 0)))
    return sliding_usage(slots, int(lo_raw), rule, now_ms)


def _usd(value: float) -> str:
    """USD as a plain decimal (never exponent notation) for INCRBYFLOAT."""
    return format(value, ".12f")


class RedisBackend:
    """Reserve/settle against Redis; construct once per app, `aclose()` at shutdown."""

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = DEFAULT_PREFIX,
        on_backend_error: OnBackendError = "allow",
        clock: Clock = time.time,
        socket_timeout: float = 0.05,
        connect_timeout: float = 0.05,
        retry_interval: float = 0.25,
        max_connections: int = 64,
        pool_timeout: float = 1.0,
        client: Redis | None = None,
    ) -> None:
        self._own_client = client is None
        if client is None:
            # A blocking pool: a burst beyond max_connections waits for a connection (up to
            # pool_timeout) instead of failing with "Too many connections" and skipping the check.
            pool = BlockingConnectionPool.from_url(
                url,
                max_connections=max_connections,
                timeout=pool_timeout,
                socket_timeout=socket_timeout,
                socket_connect_timeout=connect_timeout,
                retry=Retry(NoBackoff(), 0),  # redis-py retries 10x with backoff by default: seconds when down
                retry_on_timeout=False,
                health_check_interval=0,
            )
            client = Redis.from_pool(pool)
        self._client: Redis = client
        self._scripts = {RESERVE: client.register_script(RESERVE), SETTLE: client.register_script(SETTLE)}
        self.prefix = prefix
        self.on_backend_error = on_backend_error
        self._clock = clock
        self._retry_interval = retry_interval
        self._down_until = 0.0  # time.monotonic() before which Redis is not tried again
        self._calendar = WindowCache()
        self.stats = BackendStats()

    async def reserve(
        self, plan: Plan, *, tokens: int = 0, cost: float = 0.0, now: float | None = None
    ) -> Reservation | Refusal:
        """One EVALSHA over every matched key; on backend failure, allow or deny per the setting."""
        if not plan:
            return Reservation(plan)
        self.stats.reserves_total += 1
        too_big = oversized(plan, tokens, cost) if plan.needs_tokens or plan.needs_cost else None
        if too_big is not None:  # decided without Redis: it holds whatever Redis would say
            self.stats.refusals_total += 1
            return too_big
        if self._down_until and time.monotonic() < self._down_until:
            return self._unavailable(plan)
        now = self._clock() if now is None else now
        now_ms = int(now * 1000)
        prefix = self.prefix
        keys: list[str] = []
        args: list[Any] = [now_ms]
        for hit in plan.hits:
            rule = hit.rule
            amount = amount_for(rule, tokens, cost)
            check = "0" if rule.audit else "1"
            if rule.sliding:
                keys.append(prefix + hit.key)
                args += ("s", repr(rule.limit), int(amount), check, now_ms // rule.slot_ms, rule.slot_ms)
            else:
                start, end = self._calendar.get(rule.period, now)
                keys.append(f"{prefix}{hit.key}:{start}")
                ttl_ms = (end + SETTLE_GRACE) * 1000 - now_ms
                args += ("c", repr(rule.limit), _usd(amount), check, end * 1000, ttl_ms)
        try:
            result = await self._eval(RESERVE, keys, args)
        except _ERRORS as exc:
            self._failed(exc)
            return self._unavailable(plan)
        self._up()
        if result[0] != 1:
            rule = plan.hits[int(result[1]) - 1].rule
            self.stats.refusals_total += 1
            reason: RefusalReason = "rate_limit" if rule.kind == "rate_limit" else "budget"
            return Refusal(reason, retry_seconds(float(result[2])), rule.id, rule.limit, rule.unit)
        remaining = tuple(float(v) for v in result[1::2])
        slots = tuple(int(v) for v in result[2::2])
        prefix_len = len(prefix)
        return Reservation(plan, tuple(k[prefix_len:] for k in keys), slots, tokens, cost, remaining)

    async def settle(
        self,
        reservation: Reservation,
        *,
        tokens: int | None = None,
        cost: float | None = None,
        now: float | None = None,
    ) -> None:
        """One EVALSHA moving tokens/cost counters by (actual - reserved). Never raises: counts failures."""
        deltas = reservation.deltas(tokens, cost)
        reservation.settled = True
        if deltas is None:
            return
        if self._down_until and time.monotonic() < self._down_until:
            self.stats.settle_errors_total += 1
            return
        now_ms = int((self._clock() if now is None else now) * 1000)
        keys: list[str] = []
        args: list[Any] = [now_ms]
        rows = zip(reservation.plan.hits, reservation.keys, reservation.slots, deltas, strict=True)
        for hit, key, slot, delta in rows:
            if not delta:
                continue
            rule = hit.rule
            keys.append(self.prefix + key)
            if rule.sliding:
                args += ("s", int(delta), slot, now_ms // rule.slot_ms, rule.slot_ms)
            else:
                args += ("c", _usd(delta), 0, 0, 0)
        try:
            await self._eval(SETTLE, keys, args)
        except _ERRORS as exc:
            self.stats.settle_errors_total += 1
            self._failed(exc)
            return
        self._up()

    async def ping(self) -> bool:
        """Readiness: Redis answers and both scripts are loaded (saves the NOSCRIPT round trips later)."""
        try:
            await self._client.ping()
            for script, runner in self._scripts.items():
                runner.sha = await self._client.script_load(script)
        except _ERRORS as exc:
            self._failed(exc)
            return False
        self._up()
        return True

    async def usage(self, rule: Rule, *, limit: int = MAX_USAGE_BUCKETS, now: float | None = None) -> list[BucketUsage]:
        """The rule's live buckets: SCAN under the prefix (at most MAX_SCANNED_KEYS keys), then one
        pipelined read. Read-only: nothing is advanced, expired or reserved. Redis errors propagate."""
        now = self._clock() if now is None else now
        now_ms = int(now * 1000)
        stem = self.prefix + rule.stem
        if rule.sliding:
            suffix = ""
        else:
            start, end = self._calendar.get(rule.period, now)
            suffix = f":{start}"
        keys: list[str] = []
        async for raw in self._client.scan_iter(match=stem.translate(_GLOB_SPECIAL) + "*", count=_SCAN_COUNT):
            key = raw.decode("utf-8", "surrogateescape") if isinstance(raw, bytes) else str(raw)
            name = key[: len(key) - len(suffix)] if suffix and key.endswith(suffix) else (None if suffix else key)
            if name is not None and (name == stem or name.startswith(stem + ":")):
                keys.append(key)
            if len(keys) >= MAX_SCANNED_KEYS:
                break
        if not keys:
            return []
        pipe = self._client.pipeline(transaction=False)
        for key in keys:
            if rule.sliding:
                pipe.hgetall(key)
            else:
                pipe.get(key)
        values = await pipe.execute()
        cut = len(self.prefix)
        out: list[BucketUsage] = []
        for key, value in zip(keys, values, strict=True):
            if not value:
                continue
            if rule.sliding:
                used, leaves_ms = _sliding_from_hash(value, rule, now_ms)
                if used > 0:
                    out.append(BucketUsage(key[cut:], used, leaves_ms / 1000.0))
            else:
                out.append(BucketUsage(key[cut : len(key) - len(suffix)], float(value), float(end)))
        return busiest(out, limit)

    async def aclose(self) -> None:
        """Close the connection pool if this backend created it."""
        if self._own_client:
            await self._client.aclose()

    async def _eval(self, script: str, keys: list[str], args: list[Any]) -> Any:
        return await self._scripts[script](keys=keys, args=args)

    def _unavailable(self, plan: Plan) -> Reservation | Refusal:
        if (plan.on_backend_error or self.on_backend_error) == "deny":
            self.stats.denied_on_error_total += 1
            return Refusal("backend_unavailable", BACKEND_RETRY_AFTER)
        self.stats.allowed_on_error_total += 1
        return Reservation(plan, degraded=True)

    def _failed(self, exc: BaseException) -> None:
        self.stats.backend_errors_total += 1
        if not self._down_until:
            # Once per outage, without the URL (it may hold a password).
            log.warning(
                "limits backend (Redis) failed: %s: %s; on_backend_error=%s",
                type(exc).__name__,
                exc,
                self.on_backend_error,
            )
        self._down_until = time.monotonic() + self._retry_interval

    def _up(self) -> None:
        if self._down_until:
            log.warning("limits backend (Redis) reachable again")
            self._down_until = 0.0
