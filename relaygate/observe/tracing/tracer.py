"""The tracing of one gateway: its resource, sampler and export queue (never the process-global
TracerProvider, so gateways in one process do not share spans), and the recorder `finish` calls."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from relaygate.observe.tracing.config import GRPC, TracingConfig
from relaygate.observe.tracing.exporter import HttpSpanSender
from relaygate.observe.tracing.queue import BatchSender, SpanQueue
from relaygate.observe.tracing.readable import readable_spans
from relaygate.observe.tracing.spans import CapturedTrace, SpanBuilder

if TYPE_CHECKING:
    from relaygate.context import RequestContext
    from relaygate.observe.record import LogRecord
    from relaygate.runtime.snapshot import Snapshot

log = logging.getLogger("relaygate.tracing")
DEFAULT_SERVICE_NAME = "relaygate"


class Tracing:
    """Spans of finished requests, exported by OTLP from a bounded queue (see docs/tracing.md)."""

    def __init__(self, config: TracingConfig, env: Mapping[str, str], snapshot: Callable[[], Snapshot]) -> None:
        resource, scope = _resource(env), InstrumentationScope("relaygate")
        sender = _sender(config.protocol, env, resource, scope)
        self.queue = SpanQueue(sender, config.max_queue, config.batch_size, config.schedule_delay)
        self._spans = SpanBuilder(
            sampler_of(config),
            self.queue.put,
            snapshot,
            config.capture_content,
            always_sample=config.sampler in ("parentbased_always_on", "always_on"),
        )
        self._closed = False

    @property
    def dropped(self) -> int:
        """Spans dropped because the export queue was full (`relaygate_otel_spans_dropped_total`)."""
        return self.queue.dropped

    def sampled(self, ctx: RequestContext) -> bool:
        """Whether the request's trace will be exported (the flag of a `traceparent` it sends upstream)."""
        return self._spans.sampled(ctx)

    def record(self, ctx: RequestContext, record: LogRecord) -> None:
        """The recorder: one request's trace, captured and queued (a bug here must never fail the request)."""
        try:
            self._spans.build(ctx, record)
        except Exception:
            log.exception("could not build the spans of request %s", ctx.request_id)

    def shutdown(self, timeout: float = 3.0) -> None:
        """Export what is queued for at most `timeout` seconds, then close the exporter."""
        if self._closed:
            return
        self._closed = True
        self.queue.shutdown(timeout)


def sampler_of(config: TracingConfig) -> Sampler:
    """OTEL_TRACES_SAMPLER / _ARG as the SDK would build them (default: parent-based, always on)."""
    name = config.sampler
    root: Sampler
    if name.endswith("always_off"):
        root = ALWAYS_OFF
    elif name.endswith("traceidratio"):
        root = TraceIdRatioBased(config.sampler_ratio)
    else:
        root = ALWAYS_ON
    return ParentBased(root) if name.startswith("parentbased_") else root


def _sender(protocol: str, env: Mapping[str, str], resource: Resource, scope: InstrumentationScope) -> BatchSender:
    """The batch sender of captured traces. OTLP/HTTP: relaygate's own encoder and sender. gRPC: the SDK's
    exporter (the `otlp-grpc` extra), which reads the same OTEL_EXPORTER_OTLP_* variables itself, fed
    the traces as SDK spans."""
    span_id = _span_ids()
    if protocol == GRPC:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return _ExporterSender(GrpcExporter(), resource, scope, span_id)
    return HttpSpanSender(env, resource, scope, span_id)


def _span_ids() -> Callable[[], int]:
    """Random non-zero 64-bit span ids (ids, not secrets), drawn on the export thread."""
    bits = random.Random().getrandbits
    return lambda: bits(64) or 1


class _ExporterSender:
    """An SDK span exporter as a `BatchSender` of captured traces."""

    def __init__(
        self, exporter: SpanExporter, resource: Resource, scope: InstrumentationScope, span_id: Callable[[], int]
    ) -> None:
        self._exporter = exporter
        self._resource = resource
        self._scope = scope
        self._span_id = span_id

    def send(self, batch: Sequence[CapturedTrace]) -> bool:
        spans = [
            span for captured in batch for span in readable_spans(captured, self._span_id, self._resource, self._scope)
        ]
        return self._exporter.export(spans) is SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self._exporter.shutdown()


def _resource(env: Mapping[str, str]) -> Resource:
    """OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME, with `relaygate` as the service name by default."""
    resource = Resource.create()
    if not env.get("OTEL_SERVICE_NAME") and str(resource.attributes.get("service.name", "")).startswith(
        "unknown_service"
    ):
        resource = resource.merge(Resource({"service.name": DEFAULT_SERVICE_NAME}))
    return resource
