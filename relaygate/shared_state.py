"""Cooldowns and token revocations shared by every replica through Redis (with `--redis-url`).

The hot path never waits on Redis: routing reads the in-process `HealthTracker`, auth reads its
cache. This module only carries events between replicas: a cooldown that starts here is written
to a key with a TTL (so a replica that starts later sees it) and published; a revocation made by
`relaygate tokens revoke` is published and evicts the token from every replica's cache at once.
A Redis outage loses nothing but the sharing: each replica keeps its own state and reconnects.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from relaygate.routing.health import HealthTracker

log = logging.getLogger("relaygate.shared")

CHANNEL = "relaygate:events"
COOLDOWN_PREFIX = "relaygate:cooldown:"
PUBLISH_QUEUE = 1024  # events waiting for Redis; beyond this they are dropped (each replica still cools itself)
RECONNECT_SECONDS = 1.0


def publish_revocation(redis_url: str, token_id: str) -> None:
    """Tell every replica now (blocking; for the CLI): the token id leaves their caches at once."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=2.0, socket_connect_timeout=2.0)
    try:
        client.publish(CHANNEL, orjson.dumps({"t": "revoke", "id": token_id}))
    finally:
        client.close()


class SharedState:
    """One subscriber task and one publisher task per process."""

    def __init__(
        self, redis_url: str, trackers: Mapping[str, HealthTracker], invalidate_token: Callable[[str], None]
    ) -> None:
        self._url = redis_url
        self._trackers = dict(trackers)
        self._invalidate_token = invalidate_token
        self._origin = os.urandom(8).hex()  # our own events come back on the channel: skip them
        self._queue: asyncio.Queue[tuple[str, str, float]] = asyncio.Queue(PUBLISH_QUEUE)
        self._client: aioredis.Redis | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.dropped = 0
        self.connected = asyncio.Event()

    async def start(self) -> None:
        self._client = aioredis.Redis.from_url(self._url, socket_timeout=2.0, socket_connect_timeout=1.0)
        for name, tracker in self._trackers.items():
            tracker.on_cooldown = self._cooldown_callback(name)
        self._tasks = [
            asyncio.create_task(self._subscribe(), name="relaygate-shared-subscribe"),
            asyncio.create_task(self._publish(), name="relaygate-shared-publish"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    def _cooldown_callback(self, tracker: str) -> Callable[[str, float], None]:
        def started(key: str, seconds: float) -> None:
            try:
                self._queue.put_nowait((tracker, key, seconds))
            except asyncio.QueueFull:
                self.dropped += 1

        return started

    async def _publish(self) -> None:
        assert self._client is not None
        while True:
            tracker, key, seconds = await self._queue.get()
            event = orjson.dumps(
                {"t": "cooldown", "tracker": tracker, "key": key, "seconds": seconds, "origin": self._origin}
            )
            try:
                async with self._client.pipeline(transaction=False) as pipe:
                    pipe.set(f"{COOLDOWN_PREFIX}{tracker}:{key}", event, px=max(int(seconds * 1000), 1))
                    pipe.publish(CHANNEL, event)
                    await pipe.execute()
            except (RedisError, OSError) as exc:
                self.dropped += 1
                log.warning("cannot share a cooldown through Redis: %s", type(exc).__name__)

    async def _subscribe(self) -> None:
        """Listen for events; on (re)connect, load the cooldowns already running elsewhere."""
        assert self._client is not None
        while True:
            try:
                async with self._client.pubsub() as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    await self._load_cooldowns()
                    self.connected.set()
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._apply(message.get("data"))
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                self.connected.clear()
                log.warning("shared state: Redis unavailable (%s); retrying", type(exc).__name__)
                await asyncio.sleep(RECONNECT_SECONDS)

    async def _load_cooldowns(self) -> None:
        assert self._client is not None
        async for name in self._client.scan_iter(match=f"{COOLDOWN_PREFIX}*", count=500):
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.get(name)
                pipe.pttl(name)
                raw, ttl = await pipe.execute()
            if raw is not None and isinstance(ttl, int) and ttl > 0:
                self._apply(raw, seconds=ttl / 1000.0)

    def _apply(self, raw: Any, seconds: float | None = None) -> None:
        try:
            event = orjson.loads(raw)
        except (orjson.JSONDecodeError, TypeError):
            return
        if not isinstance(event, dict):
            return
        if event.get("t") == "revoke" and isinstance(event.get("id"), str):
            self._invalidate_token(event["id"])
        elif event.get("t") == "cooldown" and (seconds is not None or event.get("origin") != self._origin):
            tracker = self._trackers.get(str(event.get("tracker")))
            wait = seconds if seconds is not None else event.get("seconds")
            if tracker is not None and isinstance(event.get("key"), str) and isinstance(wait, int | float):
                tracker.apply_remote(event["key"], float(wait))
