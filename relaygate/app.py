"""The ASGI application: dispatch, the error boundary, and the lifespan that owns every resource.

`build_app(settings)` returns a raw ASGI callable (no framework on the hot path). Resources (the
upstream session, the log sink, the token store, the config watcher) open in lifespan startup and
close in shutdown, after uvicorn has drained in-flight requests, so the log queue flushes last.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import random
import re
import time

import aiohttp

from relaygate.auth.authenticator import Authenticator
from relaygate.auth.store import TokenStore, open_token_store
from relaygate.config.apply import load_stored
from relaygate.config.compile import Snapshot, load_snapshot
from relaygate.config.options import LoadOptions
from relaygate.config.store import ConfigStore, open_config_store
from relaygate.config.watch import ConfigWatcher, StoredConfigWatcher, log_warnings
from relaygate.context import RequestContext
from relaygate.errors import GatewayError, LoopDetected, MethodNotAllowed, NotFound
from relaygate.handlers import llm, messages, meta, proxy, resources
from relaygate.http.body import ClientDisconnected
from relaygate.http.dispatch import PROXY_PREFIX, PROXY_ROUTE_METHODS, Route, build_routes, model_path_id
from relaygate.http.headers import header
from relaygate.http.responses import send_error
from relaygate.http.types import Receive, Scope, Send
from relaygate.limits import Backend, MemoryBackend
from relaygate.observe.metrics import registry_for
from relaygate.observe.record import finished_record
from relaygate.observe.retention import RetentionPurger
from relaygate.observe.sink import LogSink
from relaygate.observe.store import open_log_store
from relaygate.observe.store.base import LogStore
from relaygate.providers.base import AnswerCaps, UpstreamCall, UpstreamResponse
from relaygate.routing.health import CooldownPolicy, HealthTracker
from relaygate.routing.stats import LatencyStats
from relaygate.routing.sticky import StickySessions
from relaygate.settings import Settings
from relaygate.shared_state import SharedState
from relaygate.upstream.hops import HopMarker
from relaygate.upstream.session import create_session

log = logging.getLogger("relaygate")
REVOCATION_POLL_SECONDS = 1.0
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _limits_backend(settings: Settings) -> Backend:
    if not settings.redis_url:
        return MemoryBackend()
    from relaygate.limits.redis import RedisBackend  # only processes configured with Redis import the client

    # Timeouts well above a Redis round trip: they are measured on this event loop, so a burst on a
    # busy process (or a cold pool opening many connections) must not read as "Redis is down" and
    # admit requests unchecked (tests/e2e/test_replicas.py saw 32 admitted against a limit of 10 at 50 ms).
    return RedisBackend(settings.redis_url, prefix=settings.limits_key_prefix,
                        on_backend_error=settings.limits_on_backend_error,  # type: ignore[arg-type]
                        socket_timeout=0.5, connect_timeout=1.0)


class Gateway:
    """The state one process serves from: the current snapshot and the long-lived resources."""

    def __init__(self, settings: Settings, snapshot: Snapshot, token_store: TokenStore, log_store: LogStore,
                 config_store: ConfigStore | None = None, config_revision: int = 0) -> None:
        self.settings = settings
        self.snapshot = snapshot
        self.config_store = config_store  # without --config: manifests applied to the database
        self._config_revision = config_revision
        self.token_store = token_store
        self.authenticator = Authenticator(token_store, cache_ttl=settings.token_cache_ttl)
        self.log_store = log_store
        self.sink = LogSink(log_store, max_queue=settings.log_queue_size)
        # --log-retention-days N: rows older than N days are purged in the background (0/unset: kept).
        self.retention = RetentionPurger(log_store, settings.log_retention_days) \
            if settings.log_retention_days else None
        self.session: aiohttp.ClientSession | None = None
        self.hops = HopMarker(settings.instance_id)  # `Via` on every upstream request; loops are 508
        self.answer_caps = AnswerCaps(settings.max_sse_line_bytes, settings.max_answer_bytes)
        self.health = HealthTracker(CooldownPolicy(  # cooldown state of pooled targets
            settings.cooldown_threshold, settings.cooldown_window, settings.cooldown_seconds,
            settings.cooldown_max_seconds,
        ))
        # Virtual-model targets: 2 upstream failures within 2 minutes cool a target (SCHEMAS.md).
        self.model_health = HealthTracker(CooldownPolicy(2, 120.0, settings.cooldown_seconds,
                                                         settings.cooldown_max_seconds))
        self.latency = LatencyStats()
        self.sticky = StickySessions()
        self.rng = random.Random()  # routing draws (weights, shuffles); not for anything secret
        self.watcher: ConfigWatcher | StoredConfigWatcher | None = None
        self._revocations: asyncio.Task[None] | None = None
        # Rate limits and budgets: per process in memory, or shared by every replica in Redis.
        self.limits: Backend = _limits_backend(settings)
        self.background: set[asyncio.Task[None]] = set()  # settles running after their answers
        self.metrics = registry_for(self)
        # With Redis: cooldowns and revocations reach every replica (and every worker) at once.
        self.shared: SharedState | None = None
        if settings.redis_url:
            self.shared = SharedState(settings.redis_url, {"proxy": self.health, "model": self.model_health},
                                      self.authenticator.invalidate)

    async def start(self) -> None:
        self.session = create_session(self.settings.stream_idle_timeout,
                                      lambda host: host in self.snapshot.metadata_allowed_hosts,
                                      self.hops.default_headers)
        await self.sink.start()
        if self.retention is not None:
            self.retention.start()
        if self.shared is not None:
            await self.shared.start()
        self._revocations = asyncio.create_task(self._watch_revocations(), name="relaygate-revocations")
        if self.settings.config_path and self.settings.watch_config:
            self.watcher = ConfigWatcher(self.settings.config_path, self.swap_snapshot,
                                         options=LoadOptions.for_settings(self.settings))
            self.watcher.start()
        elif self.config_store is not None and self.settings.watch_config:
            self.watcher = StoredConfigWatcher(self.config_store, self._config_revision, self.swap_snapshot,
                                               options=LoadOptions.for_settings(self.settings))
            self.watcher.start()

    async def _watch_revocations(self) -> None:
        """Revocations made elsewhere (the CLI, another worker) reach this cache within ~1 s."""
        since = time.time() - 1.0
        failing = False
        while True:
            await asyncio.sleep(REVOCATION_POLL_SECONDS)
            try:
                revoked = await asyncio.to_thread(self.token_store.revoked_since, since)
            except Exception as exc:  # the store being down must not stop the poller
                if not failing:  # once per outage, not every second
                    log.warning("cannot read token revocations (retrying every second): %s", exc)
                failing = True
                continue
            if failing:
                log.warning("token revocations readable again")
                failing = False
            for token_id, revoked_at in revoked:
                self.authenticator.invalidate(token_id)
                since = max(since, revoked_at - 1.0)  # overlap: a revocation committed late is not missed

    async def stop(self) -> None:
        if self._revocations is not None:
            self._revocations.cancel()
        if self.shared is not None:
            await self.shared.stop()
        if self.background:
            await asyncio.wait(set(self.background), timeout=5.0)
        await self.limits.aclose()
        if self.watcher is not None:
            await self.watcher.stop()
        if self.session is not None:
            await self.session.close()
        await self.sink.close()
        if self.retention is not None:
            await self.retention.stop()
        await asyncio.to_thread(self.log_store.close)
        await asyncio.to_thread(self.token_store.close)
        if self.config_store is not None:
            await asyncio.to_thread(self.config_store.close)

    def swap_snapshot(self, snapshot: Snapshot) -> None:
        """Atomic reference swap: in-flight requests finish on the snapshot they started with."""
        self.snapshot = snapshot

    async def adapter_open(self, call: UpstreamCall) -> UpstreamResponse:
        assert self.session is not None
        return await call.target.adapter.open(self.session, call)

    def readiness_problems(self) -> list[str]:
        problems = []
        if self.session is None or self.session.closed:
            problems.append("upstream session not open")
        if not self.sink.running:
            problems.append("log writer not running")
        return problems


class App:
    """Raw ASGI entry point: one dict lookup routes a request; every error leaves OpenAI-shaped."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.routes = build_routes()
        self.proxy_route = Route("proxy", PROXY_ROUTE_METHODS)
        self.model_route = Route("model", frozenset({"GET", "HEAD"}))
        self.resource_route = Route("resource", resources.RESOURCE_METHODS)
        self.gateway: Gateway | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.gateway = await open_gateway(self.settings)
                except Exception as exc:  # a config or database problem: refuse to start, say why
                    log.error("startup failed: %s", exc)
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                gc.freeze()  # config and module objects are long-lived: keep them out of GC passes
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.gateway is not None:
                    await self.gateway.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        gateway = self.gateway
        assert gateway is not None, "lifespan startup has not run"
        incoming = header(scope, b"x-request-id")
        if incoming is not None and _SAFE_REQUEST_ID.match(incoming.decode("latin-1")):
            request_id = incoming.decode("latin-1")
        else:
            request_id = os.urandom(12).hex()
        path: str = scope["path"]
        ctx = RequestContext(request_id, scope["method"], path)
        base_headers = [(b"x-request-id", request_id.encode("latin-1"))]
        route = self.routes.get(path)
        resource: str | None = None
        if route is None:
            if path.startswith(PROXY_PREFIX):
                route = self.proxy_route
            elif model_path_id(path) is not None:
                route = self.model_route
            elif (resource := resources.resource_path(path)) is not None:
                route = self.resource_route
        try:
            if gateway.hops.arrived(scope):
                raise LoopDetected(f"request loop: {scope['method']} {path} already passed through this gateway "
                                   "(its Via header names it); a base URL leads back here")
            if route is None:
                raise NotFound(f"no such endpoint: {scope['method']} {path}{self._prefix_hint(path)}",
                               code="unknown_url")
            if scope["method"] not in route.methods:
                raise MethodNotAllowed(f"{path} accepts {', '.join(sorted(route.methods))}")
            if route.kind == "llm":
                assert route.operation is not None
                await llm.handle(gateway, scope, receive, send, route.operation, ctx, base_headers)
            elif route.kind == "messages":
                assert route.operation is not None
                await messages.handle(gateway, scope, receive, send, route.operation, ctx, base_headers)
            elif route.kind == "resource":
                assert resource is not None
                await resources.handle(gateway, scope, receive, send, ctx, base_headers, resource)
            elif route.kind == "proxy":
                await proxy.handle(gateway, scope, receive, send, ctx, base_headers)
            elif route.kind == "model":
                await meta.model(gateway, scope, send, ctx, base_headers, model_path_id(path) or "")
            elif route.kind == "models":
                await meta.models(gateway, scope, send, ctx, base_headers)
            elif route.kind == "metrics":
                await meta.metrics(gateway, send, base_headers)
            elif route.kind == "health":
                await meta.health(send, base_headers)
            else:
                await meta.ready(gateway, send, base_headers)
        except GatewayError as exc:
            ctx.status = exc.status
            ctx.error_type = exc.type
            ctx.error_message = exc.message
            await _send_error_safely(send, exc, base_headers, route)
        except ClientDisconnected:
            ctx.status = 499
            ctx.error_type = "client_disconnected"
        except Exception:
            log.exception("unhandled error serving %s %s (request %s)", scope["method"], path, request_id)
            ctx.status = 500
            ctx.error_type = "internal_error"
            await _send_error_safely(send, GatewayError("internal gateway error"), base_headers, route)
        finally:
            if route is not None and route.kind in ("llm", "messages", "resource", "proxy"):
                gateway.sink.submit(finished_record(ctx, gateway.settings.log_body_max_bytes))

    def _prefix_hint(self, path: str) -> str:
        """'; did you mean /api/llm/<path> (or /v1/<path>)?' when the path is an API route missing its prefix."""
        found = [prefix + path for prefix in ("/api/llm", "/v1")
                 if prefix + path in self.routes or model_path_id(prefix + path) is not None
                 or resources.resource_path(prefix + path) is not None]
        if not found:
            return ""
        return f"; did you mean {found[0]}" + (f" (or {found[1]})" if len(found) > 1 else "") + \
            "? API paths start with /api/llm, /api/llm/v1 or /v1"


async def _send_error_safely(send: Send, error: GatewayError, headers: list[tuple[bytes, bytes]],
                             route: Route | None) -> None:
    """Send an error unless the response already started or the client is gone (Anthropic-shaped on /messages)."""
    render = messages.send_error if route is not None and route.kind == "messages" else send_error
    try:
        await render(send, error, headers)
    except Exception:  # response already started or connection closed: nothing more to say
        pass


async def open_gateway(settings: Settings) -> Gateway:
    """Load config, open stores and the upstream pool; raises with a clear message on bad config."""
    config_store: ConfigStore | None = None
    revision = 0
    if settings.config_path:
        snapshot = await asyncio.to_thread(load_snapshot, settings.config_path, LoadOptions.for_settings(settings))
    else:  # the config `relaygate apply` stored in the database (maybe nothing yet)
        config_store = await asyncio.to_thread(open_config_store, settings.database_url)
        try:
            stored = await asyncio.to_thread(config_store.load)
            snapshot = await asyncio.to_thread(load_stored, stored, None, LoadOptions.for_settings(settings).gateway)
        except BaseException:
            await asyncio.to_thread(config_store.close)
            raise
        revision = stored.revision
        if not stored.manifests:
            log.warning("no --config given and nothing applied to the database yet: serving no models "
                        "until `relaygate apply -f FILE` stores a config")
    closers = [config_store.close] if config_store is not None else []
    try:
        token_store = await asyncio.to_thread(open_token_store, settings.database_url)
        closers.append(token_store.close)
        log_store = await asyncio.to_thread(open_log_store, settings.database_url)
    except BaseException:
        for close in reversed(closers):
            await asyncio.to_thread(close)
        raise
    log_warnings(snapshot)
    gateway = Gateway(settings, snapshot, token_store, log_store, config_store, revision)
    await gateway.start()
    source = settings.config_path or f"the database (config revision {revision})"
    log.info("relaygate ready: %d models from %s", len(snapshot.models), source)
    return gateway


def build_app(settings: Settings) -> App:
    """The ASGI app for these settings."""
    return App(settings)


def app_from_env() -> App:
    """Factory for ASGI servers (`uvicorn --factory relaygate.app:app_from_env`): settings from env."""
    if not logging.getLogger().handlers:  # worker processes start without the CLI's logging setup
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return build_app(Settings.from_env())
