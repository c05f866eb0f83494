"""Secrets stay put: no Relaygate token and no upstream key in the database files or the server output."""

from __future__ import annotations

import time
from pathlib import Path

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.conftest import GatewayFactory
from tests.helpers.gateway import free_port, token_secret_of
from tests.helpers.gateway_thread import GatewayThread
from tests.helpers.manifests import ALICE, AZURE_KEY, BOB, OPENAI_KEY, STANDARD
from tests.upstreams.openai_mock import OpenAIMock

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "keep my secrets"}]


def database_files(gateway: GatewayThread) -> list[Path]:
    files = sorted(gateway.root.glob(gateway.db_path.name + "*"))
    assert gateway.db_path in files, f"no database at {gateway.db_path}"
    return files


def find_leaks(gateway: GatewayThread, secrets: dict[str, str]) -> list[str]:
    """Every (secret label, place) where a secret appears in the db files or the captured output."""
    places = {path.name: path.read_bytes() for path in database_files(gateway)}
    places["server stdout"] = gateway.stdout_path.read_bytes() if gateway.stdout_path.exists() else b""
    places["server stderr"] = gateway.stderr_path.read_bytes() if gateway.stderr_path.exists() else b""
    return [
        f"{label} in {place}"
        for label, secret in secrets.items()
        for place, data in places.items()
        if secret.encode() in data
    ]


def exercise(gateway: GatewayThread, upstream: OpenAIMock, tokens: dict[str, str]) -> None:
    """A mixed run: plain, streamed, Azure, self-hosted, embeddings, denied and failing requests."""
    alice = gateway.client(tokens["alice"])
    alice.chat.completions.create(model="openai-main/gpt-4o", messages=MESSAGES)
    list(alice.chat.completions.create(model="openai-main/gpt-4o", messages=MESSAGES, stream=True))
    alice.chat.completions.create(
        model="azure-main/gpt4o-deploy",
        messages=MESSAGES,
        extra_headers={"x-tfy-metadata": '{"app": "secret-scan"}'},
    )
    alice.chat.completions.create(model="vllm-local/llama", messages=MESSAGES)
    alice.embeddings.create(model="openai-main/embed", input="x")
    gateway.client(tokens["bot"]).chat.completions.create(model="openai-main/gpt-4o", messages=MESSAGES)
    with pytest.raises(openai.PermissionDeniedError):
        gateway.client(tokens["bot"]).chat.completions.create(model="vllm-local/llama", messages=MESSAGES)
    with pytest.raises(openai.PermissionDeniedError):
        gateway.client(tokens["alice"]).chat.completions.create(model="restricted/gpt-4o", messages=MESSAGES)
    for bad in ("revoked", "expired"):
        with pytest.raises(openai.AuthenticationError):
            gateway.client(tokens[bad]).chat.completions.create(model="openai-main/gpt-4o", messages=MESSAGES)
    upstream.fail_next(500, count=3)
    with pytest.raises(openai.InternalServerError):
        alice.chat.completions.create(model="openai-main/gpt-4o", messages=MESSAGES)
    with pytest.raises(openai.APIStatusError):
        alice.chat.completions.create(model="unreachable/gpt-4o", messages=MESSAGES)
    # a caller who pastes their token where it does not belong: query string and metadata
    gateway.request(
        "POST",
        f"/api/llm/chat/completions?api_key={tokens['bob']}",
        token=tokens["bob"],
        json={"model": "openai-main/gpt-4o", "messages": MESSAGES},
    )


def test_no_token_or_upstream_key_in_database_or_output(
    gateway_factory: GatewayFactory, openai_upstream: OpenAIMock, vllm_upstream: OpenAIMock
) -> None:
    gateway = gateway_factory(
        STANDARD, port=openai_upstream.port, vllm_port=vllm_upstream.port, closed_port=free_port()
    )
    tokens = {
        "alice": gateway.create_token(user=ALICE),
        "bob": gateway.create_token(user=BOB),
        "bot": gateway.create_token(virtual_account="ci-bot"),
        "revoked": gateway.create_token(user=ALICE),
        "expired": gateway.create_token(user=ALICE, expires_in="1s"),
    }
    gateway.revoke_token(tokens["revoked"])
    time.sleep(1.1)
    exercise(gateway, openai_upstream, tokens)
    gateway.wait_for_logs(10, limit=1000)

    secrets = {"upstream OpenAI key": OPENAI_KEY, "upstream Azure key": AZURE_KEY}
    for name, token in tokens.items():
        secrets[f"{name} token"] = token
        secrets[f"{name} token secret"] = token_secret_of(token)

    assert find_leaks(gateway, secrets) == [], "while serving"
    gateway.stop()
    assert find_leaks(gateway, secrets) == [], "after shutdown"
    # the scan looked at the right bytes: the logged request bodies are in there
    assert any(b"keep my secrets" in path.read_bytes() for path in database_files(gateway))


def test_upstream_key_echoed_by_upstream_is_not_logged(
    gateway_factory: GatewayFactory, openai_upstream: OpenAIMock, vllm_upstream: OpenAIMock
) -> None:
    gateway = gateway_factory(
        STANDARD, port=openai_upstream.port, vllm_port=vllm_upstream.port, closed_port=free_port()
    )
    token = gateway.create_token(user=ALICE)
    openai_upstream.fail_next(401, message=f"Incorrect API key provided: {OPENAI_KEY}.", count=5)
    result = gateway.request(
        "POST",
        "/api/llm/chat/completions",
        token=token,
        json={"model": "openai-main/gpt-4o", "messages": MESSAGES},
    )
    assert result.status >= 400
    gateway.wait_for_log(str(result.headers.get("x-request-id")))
    gateway.stop()
    assert find_leaks(gateway, {"upstream OpenAI key": OPENAI_KEY}) == []
