"""What `relaygate serve` says about its config at start-up and on reload: warnings (literal credentials,
nothing to serve), a missing file in one line, `tfy-secret://` references reaching the upstream resolved,
and the size cap on hot reload."""

from __future__ import annotations

import re
import time
from pathlib import Path

from tests.conftest import GatewayFactory
from tests.helpers.gateway import GatewayProcess, free_port, run_cli, subprocess_env
from tests.helpers.manifests import ALICE, MOCK_ONLY
from tests.upstreams.openai_mock import OpenAIMock

RELOAD_WAIT = 8.0


def wait_for_output(gateway: GatewayProcess, pattern: str, since: int = 0, timeout: float = RELOAD_WAIT) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = gateway.output()[since:]
        if re.search(pattern, text):
            return text
        time.sleep(0.1)
    raise AssertionError(f"no output matching {pattern!r}\n{gateway.output()}")


def chat_status(gateway: GatewayProcess, token: str, model: str) -> int:
    return gateway.request(
        "POST",
        "/api/llm/chat/completions",
        token=token,
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
    ).status


def test_serve_logs_literal_credentials_at_start_up_without_the_value(gateway_factory: GatewayFactory) -> None:
    config = (
        MOCK_ONLY
        + """---
type: provider-account/openai
name: openai-main
auth_data: {type: api-key, api_key: sk-literal-start-up-secret}
base_url: http://127.0.0.1:9/v1
integrations:
  - {name: gpt-4o, type: integration/model/openai, model_id: gpt-4o, model_types: [chat]}
"""
    )
    gateway = gateway_factory(config)
    output = wait_for_output(gateway, "literal credential")
    line = next(line for line in output.splitlines() if "literal credential" in line)
    assert "openai-main" in line and "auth_data.api_key" in line
    assert "sk-literal-start-up-secret" not in gateway.output()


def test_serve_with_an_empty_config_says_it_has_nothing_to_serve(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory("# no manifests yet\n")
    wait_for_output(gateway, "nothing to serve")
    token = gateway.create_token(user=ALICE)
    assert chat_status(gateway, token, "mock/echo") == 404
    gateway.write_config(MOCK_ONLY)  # the file is watched: adding a model serves it
    deadline = time.monotonic() + RELOAD_WAIT
    while chat_status(gateway, token, "mock/echo") != 200:
        assert time.monotonic() < deadline, gateway.output()
        time.sleep(0.1)


def test_serve_with_a_missing_config_file_is_one_clear_line(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    result = run_cli(
        "serve",
        "--config",
        str(missing),
        "--port",
        str(free_port()),
        "--database-url",
        f"sqlite:///{tmp_path / 'db.sqlite'}",
        env=subprocess_env(),
    )
    assert result.returncode == 1
    assert (result.stdout + result.stderr).strip().splitlines() == [
        f"relaygate: --config {missing}: no such file or directory"
    ]


def test_tfy_secret_reference_reaches_the_upstream_resolved(gateway_factory: GatewayFactory) -> None:
    with OpenAIMock("nvapi-resolved-secret").running() as upstream:
        config = f"""
type: provider-account/self-hosted-model
name: nvidia-external
integrations:
  - name: nemotron-nano
    type: integration/model/self-hosted-model
    hosted_model_name: nvidia/nemotron-3-nano-30b-a3b
    url: "{upstream.base_url}"
    model_server: "openai-compatible"
    model_types: ["chat"]
    auth_data:
      type: bearer-auth
      bearer_token: "tfy-secret://acme:nvidia:api-key"
"""
        gateway = gateway_factory(config, env={"NVIDIA_API_KEY": "nvapi-resolved-secret"})
        token = gateway.create_token(user=ALICE)
        reply = gateway.client(token).chat.completions.create(
            model="nvidia-external/nemotron-nano", messages=[{"role": "user", "content": "hello"}]
        )
        assert reply.choices[0].message.content
        assert upstream.last().header("Authorization") == "Bearer nvapi-resolved-secret"
        assert "literal credential" not in gateway.output()


def test_hot_reload_refuses_an_oversized_config_and_keeps_serving(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(MOCK_ONLY, start=False)
    gateway.serve_args = ["--max-config-bytes", "2000"]
    gateway.start()
    token = gateway.create_token(user=ALICE)
    assert chat_status(gateway, token, "mock/echo") == 200
    before = len(gateway.output())
    grown = MOCK_ONLY + "  - {name: echo-two, type: integration/model/mock, model_id: e, model_types: [chat]}\n"
    gateway.write_config(grown + "#" + "x" * 3000 + "\n")
    refusal = wait_for_output(gateway, "refused", since=before)
    assert "(2000 bytes) limit" in refusal
    assert chat_status(gateway, token, "mock/echo") == 200
    assert chat_status(gateway, token, "mock/echo-two") == 404  # the oversized change was not applied
    gateway.write_config(grown)
    deadline = time.monotonic() + RELOAD_WAIT
    while chat_status(gateway, token, "mock/echo-two") != 200:
        assert time.monotonic() < deadline, gateway.output()
        time.sleep(0.1)
