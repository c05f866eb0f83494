"""The reserve/settle protocol both backends implement, and the decisions they return.

A request reserves before the upstream call and settles after it:

    plan = rules.match(principal, model, metadata)          # rules.py; EMPTY_PLAN is falsy
    decision = await backend.reserve(plan, tokens=est.total, cost=est_usd)
    if isinstance(decision, Refusal): raise decision.error()  # 429 / 429 budget_exceeded / 400 / 503
    ...upstream call...
    await backend.settle(decision, tokens=used_tokens, cost=used_usd)   # None = unknown: keep estimate

Reserve is all or nothing over every matched rule (rate limits and budgets in one atomic step): if
one rule refuses nothing is taken from the others, and the refusal names the first refusing rule in
plan order. Amounts per rule: requests_* rules take 1, tokens_* rules take `tokens`, budgets take
`cost` (USD). Settle moves the tokens/cost rules by (actual - reserved); request counts never change.

Admission test, the same for every rule and both backends (and the Lua script), with `used`
including in-flight reservations: a rule admits a request only when its amount fits in what is left,
`used + amount <= limit`, and something is left at all, `used < limit` (so a request with nothing to
reserve, e.g. cost 0 for an unknown price or custom-endpoint traffic on a tokens rule, is still
refused once the limit is reached). A tolerance of EPSILON absorbs float rounding of dollar sums.
- requests: amount 1, exactly "at most N".
- tokens/cost: the estimate must fit, and it is taken at once, so concurrent requests see each
  other's estimates and a limit is never overshot by admission; only settlement to actual usage
  (which may exceed a pessimistic estimate) can take a counter past its limit.
- a request whose amount alone exceeds a (non-audit) tokens or cost rule's whole limit can never
  fit: reserve refuses it with `never_fits` (answered 400 `exceeds_limit`, no retry-after) without
  touching any counter, before the backend is asked (`oversized`).

Sliding windows (rate limits): a window of length W is counted in SLOTS (60) sub-windows of W/60
aligned to the epoch (1 s for per-minute rules, 1 min per hour, 24 min per day), each holding its
amount and the time of its latest reservation. A slot is counted until that latest reservation is W
old (so at most 61 slots are live: the current one, the 59 before it, and the oldest one until it
leaves). Accuracy: every reservation is counted for at least W, so **no sliding window of length W
ever holds more than N** (no double burst at a boundary); the price is that an earlier reservation
in the same slot is remembered until the slot's latest one leaves, so room can come back up to 1/60
of a window late. That beats the two-bucket counter (its weighted estimate can admit up to ~2N in a
true sliding window) and GCRA (a rate with burst N: up to 2N - 1 in a window), at a bounded cost of
61 small counters per bucket. Retry-after is exact under this model and never more than W: the time
until enough old slots have left for the request to fit (in-flight reservations settled meanwhile
can only make it earlier), capped at W because callers read their clocks before the call (a request
refused by a reservation stamped a few ms later than its own "now" must not be told W + 1 s).

Outside the protocol on purpose: a reserve interrupted by cancellation (client gone mid-call) may
have been applied; its estimate then stays counted until it slides out. Settle after a degraded
(unchecked) admission does nothing: there is nothing to correct.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from relaygate.errors import BadRequest, BudgetExceeded, GatewayError, RateLimited, ServiceUnavailable
from relaygate.limits.rules import SLOTS, Plan, Rule

Clock = Callable[[], float]  # epoch seconds (wall clock: windows are shared across replicas)
RefusalReason = Literal["rate_limit", "budget", "backend_unavailable"]

BACKEND_RETRY_AFTER = 1  # seconds suggested to callers refused because the backend is down
EPSILON = 1e-9  # float rounding of summed dollars (0.1 + 0.2 > 0.3); far below any token or $ amount


def admits(used: float, amount: float, limit: float) -> bool:
    """The admission test shared by both backends (and mirrored in the Lua script): the amount fits."""
    return used + amount <= limit + EPSILON and used + EPSILON < limit


def oversized(plan: Plan, tokens: int, cost: float) -> Refusal | None:
    """The first enforced tokens/cost rule whose whole limit is smaller than this request's amount."""
    for hit in plan.hits:
        rule = hit.rule
        if rule.audit or rule.measure == "requests":
            continue
        amount = tokens if rule.measure == "tokens" else cost
        if amount > rule.limit + EPSILON:
            reason: RefusalReason = "rate_limit" if rule.kind == "rate_limit" else "budget"
            return Refusal(reason, 0, rule.id, rule.limit, rule.unit, amount=amount, never_fits=True)
    return None


def amount_for(rule: Rule, tokens: int, cost: float) -> float:
    """What a request takes from a rule: 1 request, its token estimate, or its cost estimate."""
    measure = rule.measure
    if measure == "requests":
        return 1
    return tokens if measure == "tokens" else cost


def slot_leaves_ms(slot: int, slot_ms: int) -> int:
    """The latest a slot can stop being counted: a window after its end (then it is dropped)."""
    return (slot + SLOTS + 1) * slot_ms


def slot_stamp(now_ms: int, slot: int, slot_ms: int) -> int:
    """The time recorded for a reservation in `slot`: now, kept inside the slot (a clock behind the key's)."""
    return min(max(now_ms, slot * slot_ms), (slot + 1) * slot_ms - 1)


@dataclass(slots=True)
class Reservation:
    """What reserve took, so settle can adjust the same counters by (actual - estimate)."""

    plan: Plan
    keys: tuple[str, ...] = ()  # counter per hit (budgets carry their window start)
    slots: tuple[int, ...] = ()  # sliding: the slot reserved into (0 for calendar counters)
    tokens: int = 0
    cost: float = 0.0
    remaining: tuple[float, ...] = ()  # per hit, after this reservation (may be < 0 for audit rules)
    degraded: bool = False  # admitted without the backend (on_backend_error: allow); settle is a no-op
    settled: bool = False

    @property
    def rate_limit_ids(self) -> tuple[str, ...]:
        """For `x-tfy-applied-configurations`: rate-limit rules that applied."""
        return self.plan.rate_limit_ids

    @property
    def budget_ids(self) -> tuple[str, ...]:
        """Enforced budget rules that applied."""
        return self.plan.budget_ids

    @property
    def audit_ids(self) -> tuple[str, ...]:
        """Audit-mode budget rules that recorded this request (report them as "audit")."""
        return self.plan.audit_ids

    def deltas(self, tokens: int | None, cost: float | None) -> tuple[float, ...] | None:
        """Per-hit adjustment for settle; None when nothing changes (no round trip needed)."""
        if self.settled or self.degraded or not self.keys:
            return None
        d_tokens = 0 if tokens is None else tokens - self.tokens
        d_cost = 0.0 if cost is None else cost - self.cost
        if not d_tokens and not d_cost:
            return None
        out = tuple(
            d_tokens if h.rule.measure == "tokens" else d_cost if h.rule.measure == "cost" else 0
            for h in self.plan.hits
        )
        return out if any(out) else None


@dataclass(frozen=True, slots=True)
class Refusal:
    """A request that may not proceed: the first refusing rule, or the backend being unavailable."""

    reason: RefusalReason
    retry_after: int  # whole seconds, >= 1 (0 when the request can never fit)
    rule_id: str | None = None
    limit: float = 0.0
    unit: str = ""
    amount: float = 0.0  # what the request asked of the rule (set when it can never fit)
    never_fits: bool = False  # the amount alone exceeds the rule's whole limit: waiting cannot help

    def error(self) -> GatewayError:
        """The gateway error to answer with: 429 rate limit, 429 budget_exceeded, 400 exceeds_limit, or 503."""
        if self.never_fits:
            return self._exceeds_limit()
        headers = {"retry-after": str(self.retry_after)}
        if self.reason == "backend_unavailable":
            return ServiceUnavailable(
                "Limits are temporarily unavailable; retry shortly.", code="limits_unavailable", headers=headers
            )
        if self.reason == "budget":
            return BudgetExceeded(
                f"Budget exceeded: rule '{self.rule_id}' allows ${self.limit:g} {self.unit.replace('_', ' ')}.",
                headers=headers,
            )
        measure, _, period = self.unit.partition("_per_")  # requests_per_minute -> "100 requests per minute"
        if self.limit == 1:
            measure = measure.removesuffix("s")
        return RateLimited(
            f"Rate limit exceeded: rule '{self.rule_id}' allows {self.limit:g} {measure} per {period}. "
            f"Retry after {self.retry_after}s.",
            headers=headers,
        )

    def _exceeds_limit(self) -> BadRequest:
        """400, not 429: no retry-after, since no amount of waiting lets this request in."""
        measure, _, period = self.unit.partition("_per_")
        if measure == "cost":
            what = f"budget '{self.rule_id}'"
            asked = f"an estimated cost of ${self.amount:.6g}"
            whole = f"${self.limit:g} per {period}"
        else:
            what = f"rate limit '{self.rule_id}'"
            asked = f"an estimated {self.amount:,.0f} tokens"
            whole = f"{self.limit:,.0f} tokens per {period}"
        return BadRequest(
            f"This request can never fit {what}: it needs {asked}, more than the rule's whole limit of {whole}. "
            "Lower max_tokens (or max_completion_tokens), n, or the input.",
            code="exceeds_limit",
        )


def retry_seconds(ms: float) -> int:
    """Retry-after header value: whole seconds, never 0."""
    return max(1, math.ceil(ms / 1000))


@dataclass(frozen=True, slots=True)
class BucketUsage:
    """One bucket's current consumption under a rule, for the admin API (read-only, never reserved)."""

    key: str  # the bucket's counter name (`Rule.stem` plus its parts; budgets without the window start)
    used: float  # requests, tokens or USD counted now (in-flight reservations included)
    resets_at: float  # epoch seconds: sliding, when all of it has left the window; calendar, the window end


MAX_USAGE_BUCKETS = 100  # buckets listed per rule by `Backend.usage` (the busiest first)


def sliding_usage(slots: dict[int, tuple[float, float]], lo: int, rule: Rule, now_ms: int) -> tuple[float, int]:
    """(used, ms when the last of it leaves) of one sliding bucket from `{slot: (amount, latest ms)}`,
    counted as reserve counts it: slots from `cur - SLOTS` on, each until its latest reservation is W old."""
    cur = now_ms // rule.slot_ms
    first = max(lo, cur - SLOTS)
    used = 0.0
    leaves = 0
    for slot, (amount, last) in slots.items():
        if slot < first or not amount or now_ms >= last + rule.window_ms:
            continue
        used += amount
        leaves = max(leaves, int(last) + rule.window_ms)
    return used, leaves


def busiest(buckets: list[BucketUsage], limit: int) -> list[BucketUsage]:
    """The `limit` buckets with the most used, most used first (ties by key, for stable answers)."""
    return sorted(buckets, key=lambda b: (-b.used, b.key))[:limit]


@dataclass(slots=True)
class BackendStats:
    """Counters exported as Prometheus counters by observe/metrics.py (monotonic, per process)."""

    reserves_total: int = 0
    refusals_total: int = 0
    backend_errors_total: int = 0  # failed backend calls (reserve or settle)
    allowed_on_error_total: int = 0  # admitted unchecked because the backend failed (allow)
    denied_on_error_total: int = 0  # refused with 503 because the backend failed (deny)
    settle_errors_total: int = 0

    def as_dict(self) -> dict[str, int]:
        """Name -> value, for a metrics exporter."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


class Backend(Protocol):
    """Implemented by MemoryBackend (one process) and RedisBackend (shared by replicas)."""

    stats: BackendStats

    async def reserve(
        self, plan: Plan, *, tokens: int = 0, cost: float = 0.0, now: float | None = None
    ) -> Reservation | Refusal:
        """Check every matched rule and take the request's amounts from all of them, or from none."""
        ...

    async def settle(
        self,
        reservation: Reservation,
        *,
        tokens: int | None = None,
        cost: float | None = None,
        now: float | None = None,
    ) -> None:
        """Correct tokens/cost rules to actual usage; None keeps the estimate. Idempotent, never raises."""
        ...

    async def usage(self, rule: Rule, *, limit: int = MAX_USAGE_BUCKETS, now: float | None = None) -> list[BucketUsage]:
        """Read-only: the rule's live buckets (at most `limit`, busiest first) with what they count now.
        Budgets list the current calendar window only. Raises when the backend cannot be read."""
        ...

    async def aclose(self) -> None:
        """Release connections (no-op in memory)."""
        ...
