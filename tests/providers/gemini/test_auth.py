"""Vertex service-account tokens: one exchange, cached, refreshed before expiry, failures as 502."""

from __future__ import annotations

import asyncio
import datetime
import json

import pytest

from relaygate.errors import BadGateway
from relaygate.providers.gemini.auth import ServiceAccountTokens, _reuse_seconds
from tests.upstreams.gemini_mock import GeminiMock, service_account_key


async def test_token_is_fetched_once_and_reused() -> None:
    async with GeminiMock() as mock:
        tokens = ServiceAccountTokens.from_key_json(json.dumps(mock.new_service_account()))
        first = await tokens.token("vertex/m")
        assert first == await tokens.token("vertex/m")
        assert mock.issued_tokens == [first] and len(mock.requests_to("/token")) == 1


async def test_concurrent_callers_share_one_refresh() -> None:
    async with GeminiMock() as mock:
        tokens = ServiceAccountTokens.from_key_json(json.dumps(mock.new_service_account()))
        got = await asyncio.gather(*(tokens.token("vertex/m") for _ in range(20)))
        assert len(set(got)) == 1 and tokens.refreshes == 1 and len(mock.requests_to("/token")) == 1


async def test_token_is_refreshed_before_it_expires() -> None:
    async with GeminiMock(token_lifetime=2) as mock:
        tokens = ServiceAccountTokens.from_key_json(json.dumps(mock.new_service_account()))
        first = await tokens.token("vertex/m")
        await asyncio.sleep(1.2)  # past half the lifetime, before expiry
        second = await tokens.token("vertex/m")
        assert second != first and tokens.refreshes == 2


async def test_rejected_assertion_is_a_bad_gateway_naming_the_model() -> None:
    async with GeminiMock() as mock:
        info, _ = service_account_key(mock.token_uri)  # a key the token endpoint does not know
        tokens = ServiceAccountTokens.from_key_json(json.dumps(info))
        with pytest.raises(BadGateway) as caught:
            await tokens.token("vertex-main/flash")
        assert "vertex-main/flash" in caught.value.message and "invalid_grant" in caught.value.message
        assert "PRIVATE KEY" not in caught.value.message


async def test_unreachable_token_endpoint_is_a_bad_gateway(free_port: int) -> None:
    info, _ = service_account_key(f"http://127.0.0.1:{free_port}/token")
    tokens = ServiceAccountTokens.from_key_json(json.dumps(info))
    with pytest.raises(BadGateway) as caught:
        await tokens.token("vertex/m")
    assert "token endpoint" in caught.value.message


def test_project_id_comes_from_the_key() -> None:
    info, _ = service_account_key("http://127.0.0.1:1/token", project_id="acme-prod")
    assert ServiceAccountTokens.from_key_json(json.dumps(info)).project_id == "acme-prod"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"type": "authorized_user"}, "service-account key"),
        ({"private_key": ""}, "lacks private_key"),
        ({"client_email": None, "token_uri": None}, "lacks client_email, token_uri"),
        (
            {"private_key": "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n"},
            "unusable private key",
        ),
    ],
)
def test_unusable_keys_are_refused_without_echoing_them(change: dict[str, object], message: str) -> None:
    info, _ = service_account_key("http://127.0.0.1:1/token")
    info.update(change)
    with pytest.raises(ValueError) as caught:
        ServiceAccountTokens.from_key_json(json.dumps(info))
    assert message in str(caught.value) and "BEGIN" not in str(caught.value)


def test_key_json_that_is_not_json_is_refused() -> None:
    with pytest.raises(ValueError, match="not JSON"):
        ServiceAccountTokens.from_key_json("{oops")


def test_reuse_window_keeps_a_margin_before_expiry() -> None:
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    assert 3290 < _reuse_seconds(now + datetime.timedelta(seconds=3600)) <= 3300
    assert 29 < _reuse_seconds(now + datetime.timedelta(seconds=60)) <= 30
    assert _reuse_seconds(now - datetime.timedelta(seconds=5)) == 0.0


def test_token_without_expires_in_is_reused_for_googles_usual_hour() -> None:
    assert _reuse_seconds(None) == 3300.0


async def test_token_granted_without_expires_in_is_not_fetched_again() -> None:
    async with GeminiMock(token_lifetime=None) as mock:
        tokens = ServiceAccountTokens.from_key_json(json.dumps(mock.new_service_account()))
        first = await tokens.token("vertex/m")
        assert first == await tokens.token("vertex/m") and len(mock.requests_to("/token")) == 1


async def test_invalidated_token_is_fetched_again() -> None:
    async with GeminiMock() as mock:
        tokens = ServiceAccountTokens.from_key_json(json.dumps(mock.new_service_account()))
        first = await tokens.token("vertex/m")
        tokens.invalidate("ya29.some-other-token")  # not ours: kept
        assert await tokens.token("vertex/m") == first
        tokens.invalidate(first)
        assert await tokens.token("vertex/m") != first and len(mock.requests_to("/token")) == 2
