"""Whether a Redis answers, so the tests that need one skip (and say why) on a machine without it."""

from __future__ import annotations

import redis

LOCAL_REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_answers(url: str = LOCAL_REDIS_URL) -> bool:
    """True when a Redis at `url` answers PING within half a second."""
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5).ping())
    except redis.RedisError:
        return False
