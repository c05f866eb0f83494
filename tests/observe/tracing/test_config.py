"""Tracing is off unless the standard OTEL_* variables turn it on; off, the SDK is never imported."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from relaygate.observe.tracing.config import TracingConfig, TracingConfigError, tracing_config
from tests.conftest import GatewayFactory
from tests.helpers.gateway import run_cli, subprocess_env
from tests.helpers.manifests import MOCK_ONLY
from tests.observe.tracing.conftest import gateway_state

ENDPOINT = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}


def test_off_without_any_variable() -> None:
    assert tracing_config({}) is None


@pytest.mark.parametrize(
    "env",
    [ENDPOINT, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, {"OTEL_TRACES_EXPORTER": "otlp"}],
)
def test_on_with_an_endpoint_or_the_otlp_exporter(env: dict[str, str]) -> None:
    assert tracing_config(env) == TracingConfig()


@pytest.mark.parametrize("off", [{"OTEL_TRACES_EXPORTER": "none"}, {"OTEL_SDK_DISABLED": "true"}])
def test_explicitly_off_wins_over_an_endpoint(off: dict[str, str]) -> None:
    assert tracing_config({**ENDPOINT, **off}) is None


def test_batch_and_content_variables_are_read() -> None:
    config = tracing_config(
        {
            **ENDPOINT,
            "OTEL_BSP_MAX_QUEUE_SIZE": "10",
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "5",
            "OTEL_BSP_SCHEDULE_DELAY": "250",
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "True",
        }
    )
    assert config == TracingConfig(capture_content=True, max_queue=10, batch_size=5, schedule_delay=0.25)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "otlp only"),
        ({**ENDPOINT, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, r"http/protobuf \(default\) or grpc"),
        ({**ENDPOINT, "OTEL_BSP_MAX_QUEUE_SIZE": "lots"}, "positive integer"),
    ],
)
def test_what_cannot_be_honoured_is_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(TracingConfigError, match=message):
        tracing_config(env)


@pytest.mark.skipif(
    importlib.util.find_spec("opentelemetry.exporter.otlp.proto.grpc") is not None, reason="the grpc extra is installed"
)
def test_grpc_without_its_extra_names_the_extra() -> None:
    with pytest.raises(TracingConfigError, match=r"relaygate\[otlp-grpc\]"):
        tracing_config({**ENDPOINT, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"})


def test_serve_refuses_to_start_with_a_protocol_it_cannot_speak(tmp_path: Path) -> None:
    config = tmp_path / "gw.yaml"
    config.write_text(MOCK_ONLY)
    env = subprocess_env(**ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL="http/json")
    result = run_cli(
        "serve", "--config", str(config), "--database-url", f"sqlite:///{tmp_path / 'db'}", env=env, timeout=30
    )
    assert result.returncode == 1
    assert "relaygate: tracing: OTEL_EXPORTER_OTLP_PROTOCOL='http/json'" in result.stderr


def test_untraced_gateway_registers_nothing(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(MOCK_ONLY)
    state = gateway_state(gateway)  # type: ignore[arg-type]
    assert state.tracing is None
    assert not any(getattr(r, "__self__", None).__class__.__name__ == "Tracing" for r in state.recorders)


def test_untraced_process_never_imports_the_tracing_sdk() -> None:
    """(redis-py loads `opentelemetry.sdk.metrics` itself whenever the SDK is installed; traces are ours.)"""
    code = (
        "import sys, relaygate.cli, relaygate.app, relaygate.gateway, relaygate.pipeline.finish\n"
        "loaded = [m for m in sys.modules if m.startswith(('opentelemetry.sdk.trace', 'opentelemetry.exporter',"
        " 'relaygate.observe.tracing.tracer'))]\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env())
    assert result.returncode == 0, result.stderr


def test_sampler_variables_build_the_sdk_sampler() -> None:
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    from relaygate.observe.tracing.tracer import sampler_of

    config = tracing_config(
        {**ENDPOINT, "OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"}
    )
    assert config is not None and (config.sampler, config.sampler_ratio) == ("parentbased_traceidratio", 0.25)
    sampler = sampler_of(config)
    assert isinstance(sampler, ParentBased)
    assert "TraceIdRatioBased{0.25}" in sampler.get_description()
    plain = tracing_config({**ENDPOINT, "OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.5"})
    assert plain is not None and isinstance(sampler_of(plain), TraceIdRatioBased)


@pytest.mark.parametrize(
    "env",
    [{"OTEL_TRACES_SAMPLER": "sometimes"}, {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}],
)
def test_unknown_sampler_or_ratio_is_refused(env: dict[str, str]) -> None:
    with pytest.raises(TracingConfigError, match="OTEL_TRACES_SAMPLER"):
        tracing_config({**ENDPOINT, **env})
