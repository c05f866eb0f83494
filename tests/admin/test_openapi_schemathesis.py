"""Schemathesis against the served OpenAPI document: generated requests to every admin operation, as an
admin, find no 5xx and no answer outside its declared schema.

Runs on a real gateway (a config file, so `POST /config/apply` answers 403 and nothing generated can
change the config under the test); examples per operation are bounded so the whole run stays well
under a minute. Operations other helpers add are covered as soon as they are in the document.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import response_schema_conformance  # noqa: E402

from tests.admin.admin_config import BOOTSTRAP, USER, start  # noqa: E402
from tests.conftest import GatewayFactory  # noqa: E402

EXAMPLES_PER_OPERATION = 25
BUDGET_SECONDS = 60.0
HELLO = [{"role": "user", "content": "hi"}]


def test_generated_requests_find_no_server_error_and_no_schema_violation(gateway_factory: GatewayFactory) -> None:
    started = time.monotonic()
    gateway = start(gateway_factory)
    user = gateway.create_token(user=USER)
    for model in ("mock/echo", "mock/priced", "closed/gpt"):  # health, limits and logs have something to show
        gateway.request("POST", "/api/llm/chat/completions", token=user, json={"model": model, "messages": HELLO})
    document = gateway.request("GET", "/api/admin/v1/openapi.json").json()
    schema = schemathesis.openapi.from_dict(document)
    auth = {"Authorization": f"Bearer {BOOTSTRAP}"}
    tested: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if any("text/event-stream" in (r.get("content") or {}) for r in operation.definition.raw["responses"].values()):
            continue  # a live tail never ends by itself

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def check(case: Any) -> None:
            response = case.call(base_url=gateway.url, headers=auth, timeout=10)
            case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])

        check()
        tested.append(f"{operation.method.upper()} {operation.path}")
    assert {"GET /api/admin/v1/models", "GET /api/admin/v1/config", "GET /api/admin/v1/limits"} <= set(tested)
    assert {"POST /api/admin/v1/config/diff", "POST /api/admin/v1/config/validate"} <= set(tested)
    assert time.monotonic() - started < BUDGET_SECONDS, tested
