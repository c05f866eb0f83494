"""No configured secret in any admin answer: every operation of the served OpenAPI document is called
(as the bootstrap admin, an admin, a viewer and a user), after traffic filled the health, limit and log
state, and each answer (body and headers) is scanned for every upstream credential, resolved ${ENV}
value and the bootstrap token."""

from __future__ import annotations

import time
from typing import Any

from tests.admin.admin_config import ADMIN, BOOTSTRAP, CONFIG, USER, VIEWER, assert_no_secret, start
from tests.conftest import GatewayFactory

HELLO = [{"role": "user", "content": "hi"}]
# Bodies that exercise the config operations with the secrets in them (the answers must mask them all).
CONFIG_BODIES: list[dict[str, Any]] = [
    {"yaml": CONFIG.split("---\n")[2].replace("{closed_port}", "1")},
    {"yaml": CONFIG.split("---\n")[4].replace("{closed_port}", "1")},
    {"yaml": "type: nope\nname: sk-literal-upstream-key-0003\n"},
]


def test_no_admin_answer_holds_a_configured_secret(gateway_factory: GatewayFactory) -> None:
    gateway = start(gateway_factory, RELAYGATE_ADMIN_CONFIG_WRITES="1")
    tokens = {
        "bootstrap": BOOTSTRAP,
        "admin": gateway.create_token(user=ADMIN),
        "viewer": gateway.create_token(user=VIEWER),
        "user": gateway.create_token(user=USER),
    }
    for model in ("mock/echo", "mock/priced", "closed/gpt", "router/chat"):
        body = {"model": model, "messages": HELLO, "max_tokens": 4}
        gateway.request("POST", "/api/llm/chat/completions", token=tokens["user"], json=body)
    gateway.request("GET", "/proxy-api/tools/search/x", token=tokens["user"])
    time.sleep(0.3)  # recorders and settles run after the answers
    document = gateway.request("GET", "/api/admin/v1/openapi.json").json()
    called = 0
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            content = operation["responses"]["200"]["content"]
            if "text/event-stream" in content:
                continue  # a live tail never ends by itself; its rows are the log's, scanned through /logs
            bodies: list[Any] = CONFIG_BODIES if path.startswith("/api/admin/v1/config/") else [{}]
            for role, token in tokens.items():
                for body in bodies if method.upper() == "POST" else [None]:
                    answer = gateway.request(method.upper(), path, token=token, json=body)
                    assert answer.status < 500, (method, path, role, answer.body[:300])
                    assert_no_secret(answer)
                    called += 1
    assert called >= 4 * 8  # at least this helper's operations, for every role
