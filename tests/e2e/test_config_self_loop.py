"""A base URL that is the gateway itself (its own address and port) is refused at start-up and on reload:
every request sent there would come straight back in."""

from __future__ import annotations

import time

from tests.conftest import GatewayFactory
from tests.helpers.gateway import GatewayFailed, GatewayProcess
from tests.helpers.manifests import ALICE, MOCK_ONLY

SELF = """
type: provider-account/self-hosted-model
name: myself
integrations:
  - {{name: llama, type: integration/model/self-hosted-model, hosted_model_name: llama,
     url: "http://{host}:{port}/api/llm", model_types: [chat]}}
"""
SELF_ENDPOINT = """
type: provider-account/custom-endpoint
name: echo-back
integrations:
  - {{type: integration/model/custom-endpoint, name: me, base_url: "http://localhost:{port}/proxy-api/echo-back/me"}}
"""


def test_serve_refuses_a_provider_pointing_at_its_own_port(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(MOCK_ONLY, start=False)
    gateway.write_config(SELF.format(host="127.0.0.1", port=gateway.port))
    try:
        gateway.start(timeout=20)
    except GatewayFailed as exc:
        message = str(exc)
    else:
        raise AssertionError("the gateway started with a base URL pointing at itself")
    assert "exited with 1" in message
    assert "integrations[0].url" in message and "this gateway itself" in message


def test_serve_bound_to_all_addresses_refuses_a_custom_endpoint_on_localhost(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(MOCK_ONLY, start=False)
    gateway.write_config(SELF_ENDPOINT.format(port=gateway.port))
    gateway.serve_args = ["--host", "0.0.0.0"]  # the later --host wins
    try:
        gateway.start(timeout=20)
    except GatewayFailed as exc:
        assert "integrations[0].base_url" in str(exc) and "this gateway itself" in str(exc), str(exc)
    else:
        raise AssertionError("the gateway started with a base URL pointing at itself")


def test_reload_refuses_a_loop_and_keeps_serving(gateway_factory: GatewayFactory) -> None:
    gateway: GatewayProcess = gateway_factory(MOCK_ONLY)
    token = gateway.create_token(user=ALICE)
    before = len(gateway.output())
    gateway.write_config(MOCK_ONLY + "---" + SELF.format(host="localhost", port=gateway.port))
    deadline = time.monotonic() + 8
    while "this gateway itself" not in gateway.output()[before:]:
        assert time.monotonic() < deadline, gateway.output()
        time.sleep(0.1)
    result = gateway.request(
        "POST",
        "/api/llm/chat/completions",
        token=token,
        json={"model": "myself/llama", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert result.status == 404  # never loaded
    result = gateway.request(
        "POST",
        "/api/llm/chat/completions",
        token=token,
        json={"model": "mock/echo", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert result.status == 200
