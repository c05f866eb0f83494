"""The one exception a cache store raises, so the caller can count it and treat it as a miss."""

from __future__ import annotations


class CacheBackendError(Exception):
    """The cache backend failed (unreachable, timed out, protocol error).

    Raised instead of the client library's own exceptions so the request path catches one type,
    counts it (`x-tfy-cache-status: error`) and proceeds uncached: a cache must never fail a request.
    """
