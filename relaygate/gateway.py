"""The long-lived state one process serves from: the config snapshot, stores, pools and trackers.

`open_gateway(settings)` loads the config and opens every resource; `Gateway.stop()` closes them in
order (the log queue flushes last). Everything below the ASGI app takes a `Gateway`; nothing here
knows about dispatch or HTTP responses, so handlers and the pipeline never import `app.py`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import random
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import aiohttp

from relaygate.auth.authenticator import Authenticator
from relaygate.auth.open_store import open_token_store
from relaygate.auth.store import TokenStore
from relaygate.cache.service import ResponseCache
from relaygate.config.apply import load_stored
from relaygate.config.compile import load_snapshot
from relaygate.config.open_store import open_config_store
from relaygate.config.options import LoadOptions
from relaygate.config.store import ConfigStore
from relaygate.config.watch import ConfigWatcher, StoredConfigWatcher, log_warnings
from relaygate.context import RequestContext
from relaygate.limits import Backend, MemoryBackend
from relaygate.mcp.legacy_pool import LegacyConnections
from relaygate.mcp.session import SessionCodec
from relaygate.mcp.tool_directory import ToolDirectory
from relaygate.observe.access_log import AccessLog
from relaygate.observe.metrics import Metrics
from relaygate.observe.record import LogRecord
from relaygate.observe.retention import RetentionPurger
from relaygate.observe.sink import LogSink
from relaygate.observe.store import open_log_store
from relaygate.observe.store.base import LogStore, UsageStore
from relaygate.observe.tail import LogTail
from relaygate.observe.tracing.config import tracing_config
from relaygate.observe.upstream_warnings import UpstreamWarnings
from relaygate.pipeline.internal import internal_mark
from relaygate.providers.base import UpstreamCall, UpstreamResponse
from relaygate.routing.health import CooldownPolicy, HealthTracker
from relaygate.routing.stats import LatencyStats, RecentAttempts
from relaygate.routing.sticky import StickySessions
from relaygate.runtime.snapshot import Snapshot
from relaygate.settings import Settings
from relaygate.shared_state import SharedState
from relaygate.upstream.caps import AnswerCaps
from relaygate.upstream.hops import HopMarker
from relaygate.upstream.session import ConnectorFactory, create_session

if TYPE_CHECKING:
    from relaygate.observe.tracing.tracer import Tracing

log = logging.getLogger("relaygate")
Recorder = Callable[[RequestContext, LogRecord], None]
REVOCATION_POLL_SECONDS = 1.0


def _limits_backend(settings: Settings) -> Backend:
    if not settings.redis_url:
        return MemoryBackend()
    from relaygate.limits.redis import RedisBackend  # only processes configured with Redis import the client

    # Timeouts well above a Redis round trip: they are measured on this event loop, so a burst on a
    # busy process (or a cold pool opening many connections) must not read as "Redis is down" and
    # admit requests unchecked (tests/e2e/test_replicas.py saw 32 admitted against a limit of 10 at 50 ms).
    return RedisBackend(
        settings.redis_url,
        prefix=settings.limits_key_prefix,
        on_backend_error=settings.limits_on_backend_error,  # type: ignore[arg-type]
        socket_timeout=0.5,
        connect_timeout=1.0,
    )


class Gateway:
    """The state one process serves from: the current snapshot and the long-lived resources."""

    def __init__(
        self,
        settings: Settings,
        snapshot: Snapshot,
        token_store: TokenStore,
        log_store: LogStore,
        config_store: ConfigStore | None = None,
        config_revision: int = 0,
    ) -> None:
        self.settings = settings
        self.snapshot = snapshot
        self.config_store = config_store  # without --config: manifests applied to the database
        self._config_revision = config_revision
        self.token_store = token_store
        self.authenticator = Authenticator(token_store, cache_ttl=settings.token_cache_ttl)
        self.log_store = log_store
        self.sink = LogSink(log_store, max_queue=settings.log_queue_size)
        # --log-retention-days N: rows older than N days are purged in the background (0/unset: kept).
        self.retention = (
            RetentionPurger(log_store, settings.log_retention_days) if settings.log_retention_days else None
        )
        # Usage rollups, kept by the log writer with the metadata keys the served config lists; each
        # table has its own retention (--rollup-1m/1h-retention-days), independent of the log's.
        self.rollup_retention: list[RetentionPurger] = []
        if isinstance(log_store, UsageStore):
            log_store.configure_rollups(lambda: self.snapshot.observability.metadata_labels)
            for table, days in (("1m", settings.rollup_1m_retention_days), ("1h", settings.rollup_1h_retention_days)):
                if days:
                    self.rollup_retention.append(
                        RetentionPurger(
                            log_store,
                            days,
                            purge=functools.partial(log_store.purge_rollups, table),
                            what=f"usage rollup ({table}) rows",
                        )
                    )
        self.session: aiohttp.ClientSession | None = None
        self.connector_factory: ConnectorFactory | None = None  # None: the guarded production connector
        self.hops = HopMarker(settings.instance_id)  # `Via` on every upstream request; loops are 508
        self.answer_caps = AnswerCaps(settings.max_sse_line_bytes, settings.max_answer_bytes)
        self.health = HealthTracker(
            CooldownPolicy(  # cooldown state of pooled targets
                settings.cooldown_threshold,
                settings.cooldown_window,
                settings.cooldown_seconds,
                settings.cooldown_max_seconds,
            )
        )
        # Virtual-model targets: 2 upstream failures within 2 minutes cool a target (docs/SCHEMAS.md).
        self.model_health = HealthTracker(
            CooldownPolicy(2, 120.0, settings.cooldown_seconds, settings.cooldown_max_seconds)
        )
        self.latency = LatencyStats()
        self.sticky = StickySessions()
        self.rng = random.Random()  # routing draws and request ids; seeded from os.urandom, never for secrets
        self.watcher: ConfigWatcher | StoredConfigWatcher | None = None
        self._revocations: asyncio.Task[None] | None = None
        # Rate limits and budgets: per process in memory, or shared by every replica in Redis.
        self.limits: Backend = _limits_backend(settings)
        self.background: set[asyncio.Task[None]] = set()  # settles running after their answers
        # Read the finished-request record after the log row is queued (pipeline/finish.py).
        self.recorders: list[Recorder] = []
        self.metrics = Metrics(self)
        if self.metrics.requests is not None:
            self.recorders.append(self.metrics.requests.record)
        # One line per request on stdout (--access-log; `dropped` counts lines a full queue shed).
        self.access_log = AccessLog(settings.access_log, max_queue=settings.log_queue_size)
        if self.access_log.enabled:
            self.recorders.append(self.access_log.record)
        # Recent attempts per target (count, p50, error rate) for the admin API, read after the answer.
        self.recent = RecentAttempts()
        self.cache = ResponseCache(settings.cache_redis_url or settings.redis_url)
        # The mark of calls the gateway makes to itself (a judge, an embedding): shared by the workers of
        # one `serve` through the session secret, random for a gateway built without one.
        self.internal_mark = internal_mark(settings.session_secret or secrets.token_urlsafe(32))
        self.internal_session: aiohttp.ClientSession | None = None  # pipeline/internal.py, made on first use
        # MCP session ids (relaygate/mcp/session.py): sealed with the configured secret, or with a key
        # of this process only when none is set (`relaygate serve` warns, and hands one to its workers).
        self.mcp_sessions = SessionCodec(
            settings.mcp_session_secret or secrets.token_urlsafe(32), settings.mcp_session_secret_previous
        )
        self.mcp_tools = ToolDirectory()  # listed tool names -> upstream tools, learnt from listings
        self.mcp_legacy = LegacyConnections()  # legacy HTTP+SSE backend sessions this process holds open
        self.recorders.append(self.recent)
        self.recorders.append(UpstreamWarnings())  # failed attempts and fallbacks at WARNING, rate-limited
        # The admin API's live tail (GET /api/admin/v1/logs/stream): a recorder only while someone subscribes.
        self.tail = LogTail(self.recorders)
        # OpenTelemetry traces, when the standard OTEL_* variables turn them on (docs/tracing.md); off,
        # the SDK is not even imported and no recorder is registered. `tracing.dropped` counts the spans
        # a full export queue refused.
        self.tracing: Tracing | None = None
        # With Redis: cooldowns and revocations reach every replica (and every worker) at once.
        self.shared: SharedState | None = None
        if settings.redis_url:
            self.shared = SharedState(
                settings.redis_url, {"proxy": self.health, "model": self.model_health}, self.authenticator.invalidate
            )

    async def start(self) -> None:
        config = tracing_config(os.environ)
        if config is not None:
            from relaygate.observe.tracing.tracer import Tracing  # the SDK loads only for a tracing gateway

            self.tracing = Tracing(config, os.environ, lambda: self.snapshot)
            self.recorders.append(self.tracing.record)
        self.session = create_session(
            self.settings.stream_idle_timeout,
            lambda host: host in self.snapshot.metadata_allowed_hosts,
            self.hops.default_headers,
            connector_factory=self.connector_factory,
        )
        await self.sink.start()
        await self.metrics.start()
        self.access_log.start()
        if self.retention is not None:
            self.retention.start()
        for purger in self.rollup_retention:
            purger.start()
        if self.shared is not None:
            await self.shared.start()
        self._revocations = asyncio.create_task(self._watch_revocations(), name="relaygate-revocations")
        if self.settings.config_path and self.settings.watch_config:
            self.watcher = ConfigWatcher(
                self.settings.config_path, self.swap_snapshot, options=LoadOptions.for_settings(self.settings)
            )
            self.watcher.start()
        elif self.config_store is not None and self.settings.watch_config:
            self.watcher = StoredConfigWatcher(
                self.config_store,
                self._config_revision,
                self.swap_snapshot,
                options=LoadOptions.for_settings(self.settings),
            )
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
        self.tail.close()  # live tails end their answers now
        if self._revocations is not None:
            self._revocations.cancel()
        if self.shared is not None:
            await self.shared.stop()
        if self.background:
            await asyncio.wait(set(self.background), timeout=5.0)
        await self.limits.aclose()
        await self.metrics.stop()
        if self.watcher is not None:
            await self.watcher.stop()
        await self.cache.close()
        if self.internal_session is not None:
            await self.internal_session.close()
        await self.mcp_legacy.aclose()  # their streams ride on the upstream session: closed before it
        if self.session is not None:
            await self.session.close()
        await self.sink.close()
        await self.access_log.close()
        if self.tracing is not None:  # the last spans, for a short while: a dead collector must not hold shutdown
            await asyncio.to_thread(self.tracing.shutdown, 3.0)
        if self.retention is not None:
            await self.retention.stop()
        for purger in self.rollup_retention:
            await purger.stop()
        await asyncio.to_thread(self.log_store.close)
        await asyncio.to_thread(self.token_store.close)
        if self.config_store is not None:
            await asyncio.to_thread(self.config_store.close)

    @property
    def config_revision(self) -> int:
        """The served config: its database revision, or 1 + the reloads applied to the files."""
        watcher = self.watcher
        if isinstance(watcher, StoredConfigWatcher):
            return watcher.revision
        if self.config_store is not None:
            return self._config_revision
        return 1 + (watcher.reloads if watcher is not None else 0)

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


async def open_gateway(settings: Settings, *, connector_factory: ConnectorFactory | None = None) -> Gateway:
    """Load config, open stores and the upstream pool; raises with a clear message on bad config.

    `connector_factory` replaces the upstream session's connector (tests route upstreams in-process)."""
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
            log.warning(
                "no --config given and nothing applied to the database yet: serving no models "
                "until `relaygate apply -f FILE` stores a config"
            )
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
    gateway.connector_factory = connector_factory
    await gateway.start()
    source = settings.config_path or f"the database (config revision {revision})"
    log.info("relaygate ready: %d models from %s", len(snapshot.models), source)
    return gateway
