"""Config hot reload: a valid change is served without a restart; an invalid one is refused and logged."""

from __future__ import annotations

import re
import time

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.conftest import GatewayFactory
from tests.helpers.gateway import GatewayProcess
from tests.helpers.manifests import ALICE, MOCK_ONLY

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "reload me"}]
WITH_SECOND_MODEL = (
    MOCK_ONLY + "  - {name: echo-two, type: integration/model/mock, model_id: echo-2, model_types: [chat]}\n"
)
INVALID = WITH_SECOND_MODEL.replace("name: mock\n", "name: Not A Valid Name!\n")
RELOAD_BUDGET = 3.0


def chat_status(gateway: GatewayProcess, token: str, model: str) -> int:
    result = gateway.request(
        "POST", "/api/llm/chat/completions", token=token, json={"model": model, "messages": MESSAGES}
    )
    return result.status


def wait_for_status(gateway: GatewayProcess, token: str, model: str, status: int, timeout: float) -> float | None:
    """Seconds until `model` answers `status`, None if it never did within `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if chat_status(gateway, token, model) == status:
            return time.monotonic() - started
        time.sleep(0.1)
    return None


def test_added_integration_is_served_without_restart(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(MOCK_ONLY)
    token = gateway.create_token(user=ALICE)
    assert chat_status(gateway, token, "mock/echo-two") == 404
    pid = gateway.process.pid if gateway.process else None

    gateway.write_config(WITH_SECOND_MODEL)
    took = wait_for_status(gateway, token, "mock/echo-two", 200, timeout=RELOAD_BUDGET + 2)
    assert took is not None, f"the new model never answered\n{gateway.output()}"
    assert took <= RELOAD_BUDGET, f"the new model took {took:.1f}s to appear"
    assert gateway.running and gateway.process is not None and gateway.process.pid == pid
    assert chat_status(gateway, token, "mock/echo") == 200


def test_removed_integration_stops_being_served(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(WITH_SECOND_MODEL)
    token = gateway.create_token(user=ALICE)
    assert chat_status(gateway, token, "mock/echo-two") == 200
    gateway.write_config(MOCK_ONLY)
    assert wait_for_status(gateway, token, "mock/echo-two", 404, timeout=RELOAD_BUDGET + 2) is not None


def test_invalid_change_is_refused_and_old_config_keeps_serving(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(WITH_SECOND_MODEL)
    token = gateway.create_token(user=ALICE)
    output_before = len(gateway.output())

    gateway.write_config(INVALID)
    deadline = time.monotonic() + RELOAD_BUDGET + 2
    refusal = ""
    while time.monotonic() < deadline and not refusal:
        new_output = gateway.output()[output_before:]
        if re.search(r"refus|invalid|reject", new_output, re.IGNORECASE):
            refusal = new_output
        time.sleep(0.1)
    assert refusal, f"the server did not log the refused change\n{gateway.output()}"

    client = gateway.client(token)
    for model in ("mock/echo", "mock/echo-two"):
        assert client.chat.completions.create(model=model, messages=MESSAGES).choices
    assert gateway.running


def test_valid_change_after_a_refused_one_is_applied(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(MOCK_ONLY)
    token = gateway.create_token(user=ALICE)
    gateway.write_config(INVALID)
    time.sleep(1.0)
    assert chat_status(gateway, token, "mock/echo") == 200
    gateway.write_config(WITH_SECOND_MODEL)
    assert wait_for_status(gateway, token, "mock/echo-two", 200, timeout=RELOAD_BUDGET + 2) is not None


def test_serve_refuses_to_start_with_invalid_config(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(INVALID, start=False)
    with pytest.raises(AssertionError, match="exited"):
        gateway.start(timeout=10)
    assert gateway.process is not None and gateway.process.returncode not in (0, None)


def test_sdk_sees_404_for_model_not_yet_added(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(MOCK_ONLY)
    token = gateway.create_token(user=ALICE)
    with pytest.raises(openai.NotFoundError):
        gateway.client(token).chat.completions.create(model="mock/echo-two", messages=MESSAGES)
