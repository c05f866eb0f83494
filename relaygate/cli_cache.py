"""`relaygate cache purge`: drop response-cache entries where they live.

The served config (`--config`, else the config stored in the database) says where that is. With
`backend: redis` and a Redis URL (`--cache-redis-url`, else `--redis-url`, or their variables) the
entries are shared by every replica, so the CLI drops them from Redis itself. Otherwise they are in
the memory of the serving process, which only that process can reach: the CLI asks it through the
admin API (`DELETE /api/admin/v1/cache` at `--gateway-url`, with `RELAYGATE_ADMIN_TOKEN`). The
count is the same either way (`cache.invalidate`); no secret (token, Redis password) is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import urllib.error
import urllib.request
from urllib.parse import urlencode

import orjson

from relaygate.cache.invalidate import Purge

HTTP_TIMEOUT = 30.0
REDIS_TIMEOUT = 5.0  # per Redis operation: a purge SCANs, so it gets more than a request's lookup


class PurgeFailed(Exception):
    """Why the purge could not run; the message is printed as is (it names no secret)."""


def purge_command(args: argparse.Namespace, config_path: str | None, database_url: str) -> int:
    """Run `relaygate cache purge`; 0 when it ran, 1 when it failed, 2 when it cannot run as asked."""
    what = Purge(args.namespace, args.request_id)
    try:
        backend = served_backend(config_path, database_url)
    except PurgeFailed as exc:
        print(f"relaygate: {exc}", file=sys.stderr)
        return 1
    redis_url = (
        args.cache_redis_url
        or os.environ.get("RELAYGATE_CACHE_REDIS_URL")
        or args.redis_url
        or os.environ.get("RELAYGATE_REDIS_URL")
    )
    gateway_url = args.gateway_url or os.environ.get("RELAYGATE_GATEWAY_URL")
    try:
        if backend == "redis" and redis_url:
            deleted = asyncio.run(purge_redis(redis_url, what))
            where = f"Redis {_redact(redis_url)}"
        elif gateway_url:
            deleted, where, note = purge_through_gateway(gateway_url.rstrip("/"), what)
            if note:
                print(f"note: {note}", file=sys.stderr)
        else:
            print(f"relaygate: {_nowhere(backend)}", file=sys.stderr)
            return 2
    except PurgeFailed as exc:
        print(f"relaygate: {exc}", file=sys.stderr)
        return 1
    print(f"deleted {deleted} cache entr{'y' if deleted == 1 else 'ies'} ({what.describe()}) from {where}")
    return 0


def _nowhere(backend: str) -> str:
    """Why neither way is open, and what to pass."""
    if backend == "redis":
        return (
            "the served cache config says backend: redis, but no Redis URL is set: pass --cache-redis-url or "
            "--redis-url (env RELAYGATE_CACHE_REDIS_URL / RELAYGATE_REDIS_URL), or --gateway-url to purge "
            "through the running gateway"
        )
    return (
        "the served cache config keeps entries in memory (backend: memory), inside the running gateway: "
        "pass --gateway-url URL (env RELAYGATE_GATEWAY_URL) and set RELAYGATE_ADMIN_TOKEN to an admin token"
    )


def served_backend(config_path: str | None, database_url: str) -> str:
    """`memory` or `redis`: the cache backend of the config `relaygate serve` would load."""
    from relaygate.config.problems import ConfigError

    try:
        if config_path:
            from relaygate.config.compile import load_snapshot

            return load_snapshot(config_path).cache.backend
        return _stored_backend(database_url)
    except ConfigError as exc:
        where = config_path or "the config stored in the database"
        raise PurgeFailed(f"cannot read the cache backend: {where} is invalid:\n{exc}") from None


def _stored_backend(database_url: str) -> str:
    """The stored config's backend; `memory` when nothing was stored (a missing SQLite file included:
    opening it would create an empty database)."""
    from relaygate.database import database_kind, sqlite_path

    if database_kind(database_url) == "sqlite" and not os.path.isfile(sqlite_path(database_url)):
        return "memory"
    from relaygate.config.apply import load_stored
    from relaygate.config.open_store import open_config_store

    store = open_config_store(database_url)
    try:
        stored = store.load()
    finally:
        store.close()
    return load_stored(stored).cache.backend


async def purge_redis(redis_url: str, what: Purge) -> int:
    """Drop the entries from the shared Redis (its own short-lived pool)."""
    from relaygate.cache.errors import CacheBackendError
    from relaygate.cache.invalidate import purge
    from relaygate.cache.redis_store import RedisCache

    store = RedisCache(redis_url, max_connections=2, socket_timeout=REDIS_TIMEOUT)
    try:
        return await purge(store, what)
    except CacheBackendError as exc:
        raise PurgeFailed(f"cannot purge Redis {_redact(redis_url)}: {_scrub(str(exc), redis_url)}") from None
    finally:
        await store.close()


def purge_through_gateway(gateway_url: str, what: Purge) -> tuple[int, str, str | None]:
    """`DELETE /api/admin/v1/cache` on the running gateway: (deleted, where, the gateway's note)."""
    shown = _redact(gateway_url)
    token = os.environ.get("RELAYGATE_ADMIN_TOKEN")
    if not token:
        raise PurgeFailed(
            "set RELAYGATE_ADMIN_TOKEN to the gateway's bootstrap admin token (or an admin's personal token) "
            "to purge through its admin API"
        )
    params = {"namespace": what.namespace} if what.namespace is not None else {}
    if what.request_id is not None:
        params["request_id"] = what.request_id
    url = f"{gateway_url}/api/admin/v1/cache" + (f"?{urlencode(params)}" if params else "")
    request = urllib.request.Request(url, method="DELETE", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:
            answer = orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise PurgeFailed(f"the gateway at {shown} refused: HTTP {exc.code}: {_error_message(exc)}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise PurgeFailed(f"cannot reach the gateway at {shown}: {reason}") from None
    if not isinstance(answer, dict) or not isinstance(answer.get("deleted"), int):
        raise PurgeFailed(f"{shown} did not answer as a Relaygate gateway (no `deleted` count)")
    backend = answer.get("backend", "memory")
    return answer["deleted"], f"the gateway at {shown} ({backend})", answer.get("note")


def _error_message(exc: urllib.error.HTTPError) -> str:
    """The API's `error.message` (OpenAI shape), else the reason phrase."""
    try:
        body = orjson.loads(exc.read())
        return str(body["error"]["message"])
    except (ValueError, KeyError, TypeError, OSError):
        return str(exc.reason)


def _redact(url: str) -> str:
    from relaygate.database import redact_url

    return redact_url(url)


def _scrub(text: str, url: str) -> str:
    from relaygate.database import scrub

    return scrub(text, url)
