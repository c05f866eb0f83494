"""Whether tracing is on, and how, from the standard OpenTelemetry variables.

Read once at start from one environment mapping; nothing here imports the SDK, so a gateway that does
not trace never loads it. What the exporter and SDK read themselves (endpoint, headers, timeout,
compression, certificate, resource attributes, sampler) is left to them: they read the same variables.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass

HTTP_PROTOBUF = "http/protobuf"
GRPC = "grpc"
GRPC_PACKAGE = "opentelemetry.exporter.otlp.proto.grpc"
SAMPLERS = frozenset(
    {
        "always_on",
        "always_off",
        "traceidratio",
        "parentbased_always_on",
        "parentbased_always_off",
        "parentbased_traceidratio",
    }
)


class TracingConfigError(ValueError):
    """The OTEL_* variables ask for something this gateway cannot do (it refuses to start)."""


@dataclass(frozen=True, slots=True)
class TracingConfig:
    """How this process traces: where spans go is left to the exporter's own variables."""

    protocol: str = HTTP_PROTOBUF
    capture_content: bool = False  # gen_ai.input/output messages (OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT)
    max_queue: int = 2048  # spans waiting for export; more are dropped and counted
    batch_size: int = 512
    schedule_delay: float = 5.0  # seconds between exports when the queue is not full
    sampler: str = "parentbased_always_on"  # OTEL_TRACES_SAMPLER
    sampler_ratio: float = 1.0  # OTEL_TRACES_SAMPLER_ARG, for the traceidratio samplers


def tracing_config(env: Mapping[str, str]) -> TracingConfig | None:
    """None when the variables leave tracing off (the default); raises TracingConfigError when they ask
    for an exporter or protocol this process cannot provide."""
    if _get(env, "OTEL_SDK_DISABLED").lower() == "true":
        return None
    exporter = _get(env, "OTEL_TRACES_EXPORTER").lower()
    if exporter == "none":
        return None
    if exporter and exporter != "otlp":
        raise TracingConfigError(f"OTEL_TRACES_EXPORTER={exporter!r}: relaygate exports traces by otlp only")
    endpoint = _get(env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or _get(env, "OTEL_EXPORTER_OTLP_ENDPOINT")
    if not exporter and not endpoint:
        return None
    protocol = (_get(env, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or _get(env, "OTEL_EXPORTER_OTLP_PROTOCOL")).lower()
    protocol = protocol or HTTP_PROTOBUF
    if protocol == GRPC:
        if not _importable(GRPC_PACKAGE):
            raise TracingConfigError(
                "OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs the gRPC exporter: pip install 'relaygate[otlp-grpc]'"
            )
    elif protocol != HTTP_PROTOBUF:
        raise TracingConfigError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: relaygate exports http/protobuf (default) or grpc"
        )
    sampler = _get(env, "OTEL_TRACES_SAMPLER").lower() or "parentbased_always_on"
    if sampler not in SAMPLERS:
        raise TracingConfigError(f"OTEL_TRACES_SAMPLER={sampler!r}: one of {', '.join(sorted(SAMPLERS))}")
    return TracingConfig(
        protocol=protocol,
        sampler=sampler,
        sampler_ratio=_ratio(env),
        capture_content=_get(env, "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT").lower() == "true",
        max_queue=_positive(env, "OTEL_BSP_MAX_QUEUE_SIZE", 2048),
        batch_size=_positive(env, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512),
        schedule_delay=_positive(env, "OTEL_BSP_SCHEDULE_DELAY", 5000) / 1000.0,
    )


def _get(env: Mapping[str, str], name: str) -> str:
    return env.get(name, "").strip()


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    raw = _get(env, name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise TracingConfigError(f"{name}={raw!r}: must be a positive integer")
    return value


def _ratio(env: Mapping[str, str]) -> float:
    raw = _get(env, "OTEL_TRACES_SAMPLER_ARG")
    if not raw:
        return 1.0
    try:
        ratio = float(raw)
    except ValueError:
        ratio = -1.0
    if not 0.0 <= ratio <= 1.0:
        raise TracingConfigError(f"OTEL_TRACES_SAMPLER_ARG={raw!r}: a ratio between 0 and 1")
    return ratio


def _importable(module: str) -> bool:
    """Whether an optional package is installed, without importing it (its parents only)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False
