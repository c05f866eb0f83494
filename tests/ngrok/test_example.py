"""The shipped ngrok-dialect example compiles and routes as its comments say."""

from __future__ import annotations

from pathlib import Path

from relaygate.config.compile_ngrok import compile_ai_gateway
from relaygate.config.loader import load_path
from relaygate.routing.ngrok import plan

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ngrok-ai-gateway.yaml"


def test_example_compiles_and_prefers_the_local_provider() -> None:
    manifests = load_path(EXAMPLE, env={"OPENAI_API_KEY": "sk-example"})
    gateway, problems = compile_ai_gateway(manifests.ai_gateway_policies, lambda p: str(EXAMPLE), lambda h: False)
    assert not problems and gateway is not None
    assert [r.name for r in plan(gateway, "llama", None, {})] == ["local:llama3"]
    assert [r.name for r in plan(gateway, "openai:gpt-4o-mini", ["local:llama3", "openai:gpt-4o-mini"], {})] == [
        "local:llama3",
        "openai:gpt-4o-mini",
    ]
    assert [r.name for r in plan(gateway, "openai:gpt-4.1", None, {})] == ["openai:gpt-4.1"]
    assert (gateway.per_request_timeout, gateway.total_timeout) == (120.0, 300.0)
