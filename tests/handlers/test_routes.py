"""The route table: every path leads to its handler, methods and error renderer (no ladder of kinds)."""

from __future__ import annotations

import pytest

from relaygate.dialects.anthropic_messages import ANTHROPIC_MESSAGES
from relaygate.dialects.openai import OPENAI
from relaygate.handlers import meta, proxy, resources
from relaygate.handlers.routes import Routes

ROUTES = Routes()


@pytest.mark.parametrize("prefix", ["/v1", "/api/llm", "/api/llm/v1"])
@pytest.mark.parametrize("suffix", ["", "/"])
def test_llm_and_messages_routes_carry_their_error_shape(prefix: str, suffix: str) -> None:
    chat = ROUTES.match(f"{prefix}/chat/completions{suffix}")
    messages = ROUTES.match(f"{prefix}/messages{suffix}")
    count = ROUTES.match(f"{prefix}/messages/count_tokens{suffix}")
    assert chat is not None and messages is not None and count is not None
    assert chat.render_error is OPENAI.send_error and chat.methods == {"POST"} and chat.logged
    assert messages.render_error is count.render_error is ANTHROPIC_MESSAGES.send_error
    assert messages.logged and count.logged
    assert messages.handler is not count.handler


def test_prefix_families_are_matched_after_the_exact_paths() -> None:
    proxied = ROUTES.match("/proxy-api/acct/endpoint/any/path")
    model = ROUTES.match("/v1/models/openai-main/gpt-4o")
    files = ROUTES.match("/v1/files/file-abc/content")
    assert proxied is not None and proxied.handler is proxy.handle and proxied.logged
    assert model is not None and model.handler is meta.model and not model.logged
    assert files is not None and files.handler is resources.handle and files.logged
    assert "OPTIONS" in proxied.methods and files.methods == resources.RESOURCE_METHODS


def test_meta_routes_are_not_logged_and_unknown_paths_match_nothing() -> None:
    for path in ("/health", "/ready", "/metrics", "/v1/models"):
        route = ROUTES.match(path)
        assert route is not None and not route.logged and route.methods == {"GET", "HEAD"}
    assert ROUTES.match("/v2/chat/completions") is None
    assert ROUTES.match("/chat/completions") is None


def test_a_path_missing_its_prefix_gets_a_hint() -> None:
    assert ROUTES.prefix_hint("/chat/completions") == (
        "; did you mean /api/llm/chat/completions (or /v1/chat/completions)? "
        "API paths start with /api/llm, /api/llm/v1 or /v1"
    )
    assert ROUTES.prefix_hint("/nothing/here") == ""
