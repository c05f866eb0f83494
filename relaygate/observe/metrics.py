"""`GET /metrics`: the per-request families plus what the gateway already counts, read at scrape time.

Per request: `RequestMetrics.record` (observe/request_metrics.py), a `gateway.recorders` entry, and
the active-request gauges the dispatcher moves. At scrape: limits backend decisions and failures,
request-log queue drops and store failures, shared-state events, cooldowns and cooled-down targets,
the served config revision and reloads, dropped spans and access-log lines, process and build info.
With `--workers N` every scrape is the sum over the workers (observe/workers.py).
"""

from __future__ import annotations

import os
import platform
from collections import Counter
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from prometheus_client import ProcessCollector

from relaygate.observe.exposition import (
    FamilyState,
    State,
    family_state,
    labelled_family,
    merge_states,
    render,
    simple_family,
)
from relaygate.observe.request_metrics import RequestMetrics
from relaygate.observe.workers import WorkerMetrics

if TYPE_CHECKING:
    from relaygate.gateway import Gateway
    from relaygate.routing.health import HealthTracker

_LIMIT_HELP = {
    "reserves_total": "limit reservations attempted",
    "refusals_total": "requests refused by a rate limit or budget",
    "backend_errors_total": "limits backend calls that failed (Redis unreachable or slow)",
    "allowed_on_error_total": "requests admitted unchecked because the limits backend failed (on_backend_error: allow)",
    "denied_on_error_total": "requests refused with 503 because the limits backend failed (on_backend_error: deny)",
    "settle_errors_total": "settlements that could not be written",
}
_LATEST_SEMCONV = "gen_ai_latest_experimental"
_MAX_BY_NAME = {"process_start_time_seconds", "process_max_fds"}


def build_version() -> str:
    try:
        return version("relaygate")
    except PackageNotFoundError:
        return "unknown"


class ActiveRequests:
    """Requests and streams in flight, by route template (moved by the dispatcher and the exchange)."""

    __slots__ = ("by_route", "streams")

    def __init__(self) -> None:
        self.by_route: Counter[str] = Counter()
        self.streams = 0


class Metrics:
    """One process's metrics: the request families, the scrape-time reads, and the worker exchange."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway
        settings = gateway.settings
        self.active = ActiveRequests()
        latest = _LATEST_SEMCONV in os.environ.get("OTEL_SEMCONV_STABILITY_OPT_IN", "")
        self.requests = RequestMetrics(lambda: gateway.snapshot, latest) if settings.metrics else None
        self.evicted = 0
        self._process = ProcessCollector(registry=None)
        self._build = build_version()
        self.workers = (
            WorkerMetrics(settings.metrics_instance_dir, self.state) if settings.metrics_instance_dir else None
        )

    async def start(self) -> None:
        if self.workers is not None:
            await self.workers.start()

    async def stop(self) -> None:
        if self.workers is not None:
            await self.workers.stop()

    async def exposition(self) -> bytes:
        """The text format of this process's state, summed with its sibling workers' when there are any."""
        own = self.state()
        if self.workers is None:
            return render(own)
        return render(merge_states([own, *await self.workers.siblings()]))

    def state(self) -> State:
        """Everything this process exports, as plain data."""
        state: State = {}
        requests = self.requests
        if requests is not None:
            self.evicted += requests.evict_idle()
            for family in requests.families:
                state[family.name] = family_state(family)
            state.update(
                [
                    simple_family(
                        "relaygate_metrics_series_dropped_total",
                        "label values folded into _OTHER by the per-label cap, plus series evicted after "
                        "metrics.series_ttl idle",
                        "counter",
                        requests.folded + self.evicted,
                    )
                ]
            )
        state.update(self._gateway_families())
        state.update(self._process_families())
        return state

    def _gateway_families(self) -> list[tuple[str, FamilyState]]:
        gateway = self._gateway
        backend = type(gateway.limits).__name__.removesuffix("Backend").lower()
        found = [
            labelled_family(
                f"relaygate_limits_{name.removesuffix('_total')}",
                _LIMIT_HELP.get(name, name.replace("_", " ")),
                "counter",
                ["backend"],
                [([backend], value)],
            )
            for name, value in gateway.limits.stats.as_dict().items()
        ]
        sink = gateway.sink
        found += [
            simple_family(f"relaygate_{name}", text, "counter", value)
            for name, value, text in (
                ("log_rows_submitted", sink.submitted, "request-log rows queued"),
                ("log_rows_written", sink.written, "request-log rows stored"),
                ("log_rows_dropped", sink.dropped, "rows dropped because the log queue was full"),
                ("log_rows_failed", sink.failed, "rows the log store refused"),
            )
        ]
        shared = gateway.shared
        if shared is not None:
            found.append(
                simple_family(
                    "relaygate_shared_events_dropped",
                    "cooldown events that could not be shared through Redis",
                    "counter",
                    shared.dropped,
                )
            )
            found.append(
                simple_family(
                    "relaygate_shared_state_connected",
                    "1 while subscribed to Redis",
                    "gauge",
                    1.0 if shared.connected.is_set() else 0.0,
                    "max",
                )
            )
        found.append(
            simple_family(
                "relaygate_config_models", "models in the current config", "gauge", len(gateway.snapshot.models), "max"
            )
        )
        found += self._config_families()
        found += self._cooldown_families([gateway.health, gateway.model_health])
        active = self.active
        found.append(
            labelled_family(
                "relaygate_active_requests",
                "API requests in flight",
                "gauge",
                ["route"],
                [([route], count) for route, count in active.by_route.items()],
            )
        )
        found.append(simple_family("relaygate_active_streams", "streams being relayed", "gauge", active.streams))
        legacy = gateway.mcp_legacy
        found.append(
            simple_family(
                "relaygate_mcp_legacy_connections",
                "SSE connections held open to legacy (HTTP+SSE) MCP backends",
                "gauge",
                len(legacy),
            )
        )
        found.append(
            simple_family(
                "relaygate_mcp_legacy_messages_dropped_total",
                "messages a legacy MCP backend sent on its own with no caller stream open to take them",
                "counter",
                legacy.dropped,
            )
        )
        found.append(
            labelled_family(
                "relaygate_build_info",
                "the running version",
                "gauge",
                ["version", "python"],
                [([self._build, platform.python_version()], 1.0)],
                "max",
            )
        )
        tracing = gateway.tracing
        if tracing is not None:
            found.append(
                simple_family(
                    "relaygate_otel_spans_dropped_total",
                    "spans dropped because the export queue was full",
                    "counter",
                    float(tracing.dropped),
                )
            )
        found.append(
            simple_family(
                "relaygate_access_log_lines_dropped_total",
                "access-log lines dropped (queue full or stdout failing)",
                "counter",
                float(gateway.access_log.dropped),
            )
        )
        return found

    def _config_families(self) -> list[tuple[str, FamilyState]]:
        watcher = self._gateway.watcher
        revision = float(self._gateway.config_revision)
        reloads = float(getattr(watcher, "reloads", 0))
        refusals = float(getattr(watcher, "refusals", 0))
        return [
            simple_family(
                "relaygate_config_revision",
                "the served config: its database revision, or 1 + the file reloads applied",
                "gauge",
                revision,
                "max",
            ),
            simple_family("relaygate_config_reloads_total", "config reloads applied", "counter", reloads),
            simple_family(
                "relaygate_config_reload_failures_total",
                "config changes refused (the previous config kept serving)",
                "counter",
                refusals,
            ),
        ]

    def _cooldown_families(self, trackers: list[HealthTracker]) -> list[tuple[str, FamilyState]]:
        started: Counter[str] = Counter()
        cooled: dict[str, float] = {}
        for tracker in trackers:
            now = tracker.now()
            for key, count in tracker.cooldowns.items():
                target = key.partition(":")[2]
                started[target] += count
                cooled[target] = max(cooled.get(target, 0.0), 1.0 if tracker.is_cooled(key, now) else 0.0)
        return [
            labelled_family(
                "relaygate_target_cooldowns_total",
                "cooldowns started, by target",
                "counter",
                ["target"],
                [([target], count) for target, count in started.items()],
            ),
            labelled_family(
                "relaygate_target_cooled_down",
                "1 while a target is in cooldown",
                "gauge",
                ["target"],
                [([target], value) for target, value in cooled.items()],
                "max",
            ),
        ]

    def _process_families(self) -> list[tuple[str, FamilyState]]:
        found = []
        for metric in self._process.collect():
            for sample in metric.samples:
                kind = "counter" if metric.type == "counter" else "gauge"
                merge = "max" if sample.name in _MAX_BY_NAME else "sum"
                name = sample.name.removesuffix("_total") if kind == "counter" else sample.name
                found.append(simple_family(name, metric.documentation, kind, sample.value, merge))
        return found
