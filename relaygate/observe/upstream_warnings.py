"""Upstream trouble at WARNING: failed attempts and fallbacks, read from the finished-request record.

A recorder (pipeline/finish.py), so it costs the request path nothing until the answer is out, and it
reads the attempts the router recorded (routing/router.py `AttemptRecord`), whichever route ran them.
Each line names the target, the status or error type and the request id; never a URL, header, key
or body. Lines are rate-limited per target (and per fallback pair): at most one per `INTERVAL`
seconds, the next one saying how many were held back, so a dead upstream cannot flood the log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from relaygate.observe.throttle import Throttle

if TYPE_CHECKING:
    from relaygate.context import RequestContext
    from relaygate.observe.record import LogRecord
    from relaygate.routing.router import AttemptRecord

logger = logging.getLogger("relaygate.upstream")

INTERVAL = 30.0


def failed(attempt: AttemptRecord) -> bool:
    """An upstream's fault: no answer (network error, timeout), a 5xx or a 429."""
    if attempt.status is None:
        return attempt.error is not None
    return attempt.status >= 500 or attempt.status == 429


def _cause(attempt: AttemptRecord) -> str:
    if attempt.status is not None:
        return f"status {attempt.status}"
    return f"{attempt.error or 'error'} (no response)"


class UpstreamWarnings:
    """The recorder: one WARNING per failed attempt and per fallback, throttled per target."""

    def __init__(self, interval: float = INTERVAL, clock: Callable[[], float] = time.monotonic) -> None:
        self._throttle = Throttle(interval, clock=clock)

    def __call__(self, ctx: RequestContext, record: LogRecord) -> None:
        attempts = ctx.attempts
        if not attempts:
            return
        account = _proxy_account(ctx)
        for index, attempt in enumerate(attempts):
            target = f"{account}/{attempt.target}" if account else attempt.target
            if failed(attempt):
                self._failure(target, attempt, ctx.request_id)
            if attempt.outcome == "fallback" and index + 1 < len(attempts):
                following = attempts[index + 1].target
                self._fallback(target, f"{account}/{following}" if account else following, attempt, ctx.request_id)

    def _failure(self, target: str, attempt: AttemptRecord, request_id: str) -> None:
        held = self._throttle.allow("failed " + target)
        if held is None:
            return
        logger.warning(
            "upstream attempt failed: target=%s %s after %.0f ms (request %s; then: %s)%s",
            target,
            _cause(attempt),
            attempt.duration_ms,
            request_id,
            attempt.outcome,
            _held(held),
        )

    def _fallback(self, source: str, destination: str, attempt: AttemptRecord, request_id: str) -> None:
        held = self._throttle.allow(f"fallback {source} {destination}")
        if held is None:
            return
        logger.warning(
            "upstream fallback: %s -> %s because of %s (request %s)%s",
            source,
            destination,
            _cause(attempt),
            request_id,
            _held(held),
        )


def _proxy_account(ctx: RequestContext) -> str | None:
    """A custom endpoint's attempts name the endpoint only: its account qualifies it (`acct/endpoint`).
    Attempts exist only once the account was found in the config, so the name is the config's."""
    if ctx.operation != "proxy" or not ctx.requested_model:
        return None
    return ctx.requested_model.partition("/")[0]


def _held(count: int) -> str:
    return f" ({count} more like it since the last such line, not logged)" if count else ""
