"""Tokens, model types, unknown models and who may call what."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.conftest import Stack
from tests.helpers.error_shape import assert_error_shape
from tests.helpers.gateway import HttpResult, token_id_of, token_secret_of
from tests.helpers.manifests import ALICE

CHAT = {"model": "openai-main/gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


def post_chat(stack: Stack, headers: dict[str, str]) -> HttpResult:
    return stack.gateway.request("POST", "/api/llm/chat/completions", json=CHAT, headers=headers)


# -- model resolution -------------------------------------------------------------------------------


def test_model_called_for_unlisted_type_is_400(stack: Stack) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        stack.gateway.client(stack.alice).embeddings.create(model="openai-main/gpt-4o", input="x")
    assert caught.value.status_code == 400
    assert not stack.openai.requests, "the gateway must refuse before calling the upstream"


def test_unknown_model_is_404(stack: Stack) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        stack.gateway.client(stack.alice).chat.completions.create(model="openai-main/nope", messages=MESSAGES)
    assert_error_shape({"error": caught.value.body})


def test_unknown_account_is_404(stack: Stack) -> None:
    with pytest.raises(openai.NotFoundError):
        stack.gateway.client(stack.alice).chat.completions.create(model="nobody/gpt-4o", messages=MESSAGES)


# -- bad tokens -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bad_tokens(standard_stack: Stack) -> Iterator[dict[str, dict[str, str]]]:
    """Authorization headers for every kind of bad token (revoked and expired made via the CLI)."""
    gateway = standard_stack.gateway
    revoked = gateway.create_token(user=ALICE, name="to-revoke")
    gateway.revoke_token(revoked)
    expired = gateway.create_token(user=ALICE, name="short-lived", expires_in="1s")
    time.sleep(1.2)
    unknown = f"rg-{'a' * 12}-{secrets.token_urlsafe(32)}"
    yield {
        "missing": {},
        "empty": {"Authorization": "Bearer "},
        "not-bearer": {"Authorization": f"Basic {standard_stack.alice}"},
        "malformed": {"Authorization": "Bearer not-a-relaygate-token"},
        "unknown": {"Authorization": f"Bearer {unknown}"},
        "wrong-secret": {"Authorization": f"Bearer rg-{token_id_of(standard_stack.alice)}-{secrets.token_urlsafe(32)}"},
        "revoked": {"Authorization": f"Bearer {revoked}"},
        "expired": {"Authorization": f"Bearer {expired}"},
    }


@pytest.mark.parametrize(
    "kind", ["missing", "empty", "not-bearer", "malformed", "unknown", "wrong-secret", "revoked", "expired"]
)
def test_bad_token_is_401(stack: Stack, bad_tokens: dict[str, dict[str, str]], kind: str) -> None:
    result = post_chat(stack, bad_tokens[kind])
    assert result.status == 401, result.body
    assert_error_shape(result.json())
    assert not stack.openai.requests


def test_every_bad_token_gets_the_identical_body(stack: Stack, bad_tokens: dict[str, dict[str, str]]) -> None:
    bodies = {kind: post_chat(stack, headers).json() for kind, headers in bad_tokens.items()}
    assert len({repr(body) for body in bodies.values()}) == 1, bodies


def test_unauthorized_body_echoes_no_token(stack: Stack, bad_tokens: dict[str, dict[str, str]]) -> None:
    headers = bad_tokens["wrong-secret"]
    result = post_chat(stack, headers)
    presented = headers["Authorization"].removeprefix("Bearer ")
    assert presented.encode() not in result.body
    assert token_secret_of(presented).encode() not in result.body


def test_sdk_raises_authentication_error_for_revoked_token(stack: Stack) -> None:
    token = stack.gateway.create_token(user=ALICE, name="sdk-revoke")
    stack.gateway.revoke_token(token)
    with pytest.raises(openai.AuthenticationError):
        stack.gateway.client(token).chat.completions.create(model="openai-main/gpt-4o", messages=MESSAGES)


def test_token_with_expiry_works_before_it_expires(stack: Stack) -> None:
    token = stack.gateway.create_token(user=ALICE, expires_in="1h")
    assert stack.gateway.client(token).chat.completions.create(model="openai-main/gpt-4o", messages=MESSAGES).choices


# -- token CLI --------------------------------------------------------------------------------------


def test_tokens_create_prints_token_alone_on_last_line(stack: Stack) -> None:
    token = stack.gateway.create_token(user=ALICE, name="format-check")
    assert re.fullmatch(r"rg-[a-z0-9]{12}-[A-Za-z0-9_-]+", token), token


def test_tokens_list_shows_ids_never_secrets(stack: Stack) -> None:
    listing = stack.gateway.list_tokens()
    for token in (stack.alice, stack.bob, stack.ci_bot):
        assert token_id_of(token) in listing
        assert token not in listing
        assert token_secret_of(token) not in listing


# -- access -----------------------------------------------------------------------------------------


def test_virtual_account_may_call_its_allowed_model(stack: Stack) -> None:
    completion = stack.gateway.client(stack.ci_bot).chat.completions.create(
        model="openai-main/gpt-4o",
        messages=MESSAGES,
    )
    assert completion.choices


def test_virtual_account_calling_other_model_is_403(stack: Stack) -> None:
    with pytest.raises(openai.PermissionDeniedError) as caught:
        stack.gateway.client(stack.ci_bot).chat.completions.create(model="azure-main/gpt4o-deploy", messages=MESSAGES)
    assert_error_shape({"error": caught.value.body})
    assert not stack.openai.requests


def test_user_collaborator_account_forbids_others(stack: Stack) -> None:
    with pytest.raises(openai.PermissionDeniedError):
        stack.gateway.client(stack.alice).chat.completions.create(model="restricted/gpt-4o", messages=MESSAGES)
    assert not stack.openai.requests


def test_user_collaborator_account_allows_that_user(stack: Stack) -> None:
    completion = stack.gateway.client(stack.bob).chat.completions.create(
        model="restricted/gpt-4o",
        messages=MESSAGES,
    )
    assert completion.choices[0].message.content == "echo: hi"


def test_team_collaborator_account_allows_team_member(stack: Stack) -> None:
    completion = stack.gateway.client(stack.alice).chat.completions.create(
        model="team-only/gpt-4o",
        messages=MESSAGES,
    )
    assert completion.choices


def test_team_collaborator_account_forbids_non_member(stack: Stack) -> None:
    with pytest.raises(openai.PermissionDeniedError):
        stack.gateway.client(stack.bob).chat.completions.create(model="team-only/gpt-4o", messages=MESSAGES)


def test_everyone_team_grants_every_user(stack: Stack) -> None:
    for token in (stack.alice, stack.bob):
        assert (
            stack.gateway.client(token).chat.completions.create(model="openai-main/gpt-4o", messages=MESSAGES).choices
        )


def test_virtual_account_wildcard_allows_every_model_of_the_account(stack: Stack) -> None:
    token = stack.gateway.create_token(virtual_account="wild-bot")
    client = stack.gateway.client(token)
    assert {m.id for m in client.models.list()} == {"vllm-local/llama", "vllm-local/reranker"}
    assert client.chat.completions.create(model="vllm-local/llama", messages=MESSAGES).choices
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model="openai-main/gpt-4o", messages=MESSAGES)


def test_revoking_a_used_token_takes_effect_within_about_a_second(stack: Stack) -> None:
    token = stack.gateway.create_token(user=ALICE, name="cached-then-revoked")
    assert post_chat(stack, {"Authorization": f"Bearer {token}"}).status == 200  # now cached for 10 s
    stack.gateway.revoke_token(token)
    revoked_at = time.monotonic()
    while post_chat(stack, {"Authorization": f"Bearer {token}"}).status != 401:
        assert time.monotonic() - revoked_at < 2.5, "a revoked token still works: the cache ignored the revocation"
        time.sleep(0.1)
