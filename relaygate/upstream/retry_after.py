"""`Retry-After` of an upstream answer, read one way on every path (LLM attempts and the custom-endpoint proxy)."""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime


def parse_retry_after(value: str | None) -> float | None:
    """`Retry-After` in seconds: delta-seconds or an HTTP date (RFC 9110 section 10.2.3); None when absent or
    unusable (a date without a zone, a negative or infinite number)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = max(when.timestamp() - time.time(), 0.0)
    return seconds if 0 <= seconds < float("inf") else None
