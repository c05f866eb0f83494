"""Budget windows: UTC calendar day, ISO week (Monday 00:00 UTC) and month (the 1st 00:00 UTC).

Budgets do not slide: docs/SCHEMAS.md resets them at calendar boundaries, so a budget's counter is keyed
by the start of its window and simply stops being read when the window ends. That makes a budget
one counter per bucket (no sub-windows) and lets Redis expire it at the window's end.
"""

from __future__ import annotations

from datetime import UTC, datetime

from relaygate.providers.usage import Price

DAY = 86_400
# 1970-01-01 was a Thursday: day number d is weekday (d + 3) % 7 with Monday = 0.
_EPOCH_WEEKDAY = 3
# Spend settled shortly after its window closed (a long stream) still lands in that window's
# counter, so counters outlive their window by this much before Redis/memory expire them.
SETTLE_GRACE = 3_600


def calendar_window(period: str, now: float) -> tuple[int, int]:
    """(start, end) in epoch seconds of the UTC day/week/month holding `now`."""
    day = int(now // DAY)
    if period == "day":
        return day * DAY, (day + 1) * DAY
    if period == "week":
        start = day - (day + _EPOCH_WEEKDAY) % 7
        return start * DAY, (start + 7) * DAY
    if period == "month":
        t = datetime.fromtimestamp(day * DAY, UTC)
        first = datetime(t.year, t.month, 1, tzinfo=UTC)
        following = datetime(t.year + t.month // 12, t.month % 12 + 1, 1, tzinfo=UTC)
        return int(first.timestamp()), int(following.timestamp())
    raise ValueError(f"unknown budget period {period!r}")


class WindowCache:
    """Memoises `calendar_window` per period until the window ends (month math needs datetime)."""

    __slots__ = ("_windows",)

    def __init__(self) -> None:
        self._windows: dict[str, tuple[int, int]] = {}

    def get(self, period: str, now: float) -> tuple[int, int]:
        """The window holding `now`; recomputed only when `now` leaves the cached one."""
        window = self._windows.get(period)
        if window is None or not window[0] <= now < window[1]:
            window = self._windows[period] = calendar_window(period, now)
        return window


def estimate_cost(price: Price | None, input_tokens: int, output_tokens: int) -> float:
    """USD to reserve against budgets before the call; 0 when the model's price is unknown.

    An unknown price reserves nothing, but such a request is still refused once the budget is spent
    (the admission test is "spent < limit", see backend.py), so unknown costs cannot run unbounded.
    """
    if price is None:
        return 0.0
    return price.cost(input_tokens, output_tokens)
