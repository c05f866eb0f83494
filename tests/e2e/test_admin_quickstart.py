"""The README's first command leads to a working dashboard: the quickstart's token is an admin and
`relaygate serve` prints the dashboard's URL."""

from __future__ import annotations

import time

from tests.conftest import GatewayFactory
from tests.helpers.gateway import REPO_ROOT


def test_quickstart_token_is_an_admin_and_serve_prints_the_dashboard_url(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory((REPO_ROOT / "examples" / "quickstart.yaml").read_text(encoding="utf-8"))
    token = gateway.create_token(user="you@example.com")
    me = gateway.request("GET", "/api/admin/v1/whoami", token=token)
    assert me.status == 200 and me.json()["role"] == "admin"
    deadline = time.monotonic() + 5
    while f"dashboard: http://127.0.0.1:{gateway.port}/ui" not in gateway.output() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert f"dashboard: http://127.0.0.1:{gateway.port}/ui" in gateway.output()
    assert gateway.http_status("/ui/") == 200
