"""Prometheus exposition of the counters the gateway already keeps (read at scrape time, never per request).

What is exported: limits backend decisions and failures (so `on_backend_error: allow` admissions are
visible), request-log queue drops and store failures, shared-state events that could not reach Redis,
and the token store's reachability. Counters are per process: with `--workers N`, scrape each worker
or aggregate behind the load balancer.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from relaygate.gateway import Gateway

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"


class GatewayCollector(Collector):
    """Reads one gateway's counters when Prometheus scrapes."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    def collect(self) -> Iterator[Metric]:
        gateway = self._gateway
        stats = gateway.limits.stats
        backend = type(gateway.limits).__name__.removesuffix("Backend").lower()
        for name, value in stats.as_dict().items():
            family = CounterMetricFamily(
                f"relaygate_limits_{name.removesuffix('_total')}",
                _LIMIT_HELP.get(name, name.replace("_", " ")),
                labels=["backend"],
            )
            family.add_metric([backend], value)
            yield family
        sink = gateway.sink
        for name, value, text in (
            ("log_rows_submitted", sink.submitted, "request-log rows queued"),
            ("log_rows_written", sink.written, "request-log rows stored"),
            ("log_rows_dropped", sink.dropped, "rows dropped because the log queue was full"),
            ("log_rows_failed", sink.failed, "rows the log store refused"),
        ):
            yield CounterMetricFamily(f"relaygate_{name}", text, value=value)
        shared = gateway.shared
        if shared is not None:
            yield CounterMetricFamily(
                "relaygate_shared_events_dropped",
                "cooldown events that could not be shared through Redis",
                value=shared.dropped,
            )
            yield GaugeMetricFamily(
                "relaygate_shared_state_connected",
                "1 while subscribed to Redis",
                value=1.0 if shared.connected.is_set() else 0.0,
            )
        yield GaugeMetricFamily(
            "relaygate_config_models", "models in the current config", value=len(gateway.snapshot.models)
        )


_LIMIT_HELP = {
    "reserves_total": "limit reservations attempted",
    "refusals_total": "requests refused by a rate limit or budget",
    "backend_errors_total": "limits backend calls that failed (Redis unreachable or slow)",
    "allowed_on_error_total": "requests admitted unchecked because the limits backend failed (on_backend_error: allow)",
    "denied_on_error_total": "requests refused with 503 because the limits backend failed (on_backend_error: deny)",
    "settle_errors_total": "settlements that could not be written",
}


def registry_for(gateway: Gateway) -> CollectorRegistry:
    """A registry of its own per gateway (no process-global state)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GatewayCollector(gateway))
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
