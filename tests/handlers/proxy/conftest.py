"""The transparent proxy's end-to-end setup: real upstreams and one `relaygate serve` for the session.

`proxy` (per test, upstreams reset) is a `ProxyStack`: the gateway serving `PROXY_CONFIG`, httpbin,
a recording upstream (`rec`), a decoy upstream nothing may ever reach, a raw-TCP upstream with broken
framing, a recording upstream on IPv6 loopback (`rec6`), and tokens for alice, bob and the `proxy-bot`
virtual account. Pools, TLS and the body-size limit have their own gateways in their modules.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.handlers.proxy import credentials as secret
from tests.handlers.proxy.raw_upstream import RawUpstream
from tests.handlers.proxy.wire import WireAnswer, send
from tests.helpers.gateway import render
from tests.helpers.gateway_thread import GatewayThread
from tests.upstreams.httpbin_server import HttpbinServer
from tests.upstreams.recording_upstream import RecordingUpstream

ALICE = "alice@example.com"
BOB = "bob@example.com"

BROKEN_FRAMING = {
    "/garbage-status": b"THIS IS NOT HTTP\r\n\r\n",
    "/bad-header": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nno colon in this line\r\n\r\nok",
    "/truncated-chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n"
    b"5\r\nhello\r\n6\r\n world",
    "/short-body": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nContent-Type: text/plain\r\n\r\nonly ten b",
    "/silent-close": b"",
    # Status codes outside 100-599 that the client library still parses (no reason phrase exists for them).
    "/status-600": b"HTTP/1.1 600 Whatever\r\nContent-Length: 2\r\n\r\nno",
    "/status-999": b"HTTP/1.1 999 Whatever\r\nContent-Length: 2\r\n\r\nno",
    "/status-099": b"HTTP/1.1 099 Whatever\r\nContent-Length: 2\r\n\r\nno",
    "/status-000": b"HTTP/1.1 000 Whatever\r\nContent-Length: 2\r\n\r\nno",
}

PROXY_CONFIG = f"""\
type: provider-account/custom-endpoint
name: bin
auth_data: {{type: header, headers: {{Authorization: "Bearer {secret.ACCOUNT}"}}}}
integrations:
  - type: integration/model/custom-endpoint
    name: httpbin
    base_url: "{{httpbin_url}}"
    headers: {{X-Env: prod, X-Team: endpoint-team}}
  - type: integration/model/custom-endpoint
    name: own-auth
    base_url: "{{httpbin_url}}"
    headers: {{X-Env: staging}}
    auth_data: {{type: header, headers: {{X-Upstream-Key: "{secret.INTEGRATION}"}}}}
---
type: provider-account/custom-endpoint
name: rec
integrations:
  - type: integration/model/custom-endpoint
    name: base
    base_url: "{{rec_url}}/base/v1"
    auth_data: {{type: header, headers: {{Authorization: "Bearer {secret.RECORDING}"}}}}
  - {{type: integration/model/custom-endpoint, name: origin, base_url: "{{rec_url}}"}}
  - {{type: integration/model/custom-endpoint, name: raw, base_url: "http://127.0.0.1:{{raw_port}}"}}
  - {{type: integration/model/custom-endpoint, name: closed, base_url: "http://127.0.0.1:{{closed_port}}"}}
  - {{type: integration/model/custom-endpoint, name: v6, base_url: "{{rec6_url}}/six"}}
---
type: provider-account/custom-endpoint
name: layers
endpoint_type: azure-speech-service
headers: {{X-Account: acct-wide, x-team: account-team, X-Env: account-default, X-Service-Key: from-headers}}
auth_data: {{type: header, headers: {{X-Service-Key: "{secret.LAYERS}"}}}}
integrations:
  - type: integration/model/custom-endpoint
    name: own
    base_url: "{{rec_url}}"
    headers: {{X-Team: endpoint-team}}
  - {{type: integration/model/custom-endpoint, name: plain, base_url: "{{rec_url}}"}}
---
type: provider-account/custom-endpoint
name: duo
endpoint_type: other
routing_type: priority
slug: pair
integrations:
  - type: integration/model/custom-endpoint
    name: first
    base_url: "{{rec_url}}"
    loadbalancing_config: {{priority: 0}}
  - type: integration/model/custom-endpoint
    name: second
    base_url: "{{rec_url}}"
    loadbalancing_config: {{priority: 1}}
---
type: provider-account/custom-endpoint
name: odd
routing_type: priority
slug: pool
integrations:
  - type: integration/model/custom-endpoint
    name: six-hundred
    base_url: "http://127.0.0.1:{{raw_port}}/status-600"
    loadbalancing_config: {{priority: 0}}
  - type: integration/model/custom-endpoint
    name: fine
    base_url: "{{rec_url}}"
    loadbalancing_config: {{priority: 1}}
---
type: virtual-account
name: proxy-bot
allowed_endpoints: [rec/origin]
"""


@dataclass
class ProxyStack:
    gateway: GatewayThread
    httpbin: HttpbinServer
    rec: RecordingUpstream
    decoy: RecordingUpstream  # must never be reached, whatever a request says
    raw: RawUpstream
    rec6: RecordingUpstream  # on [::1]
    alice: str
    bob: str
    bot: str

    @property
    def port(self) -> int:
        return self.gateway.port

    def call(self, method: str, target: str, **options: object) -> WireAnswer:
        """`send` to the gateway, as alice unless `token=` says otherwise."""
        options.setdefault("token", self.alice)
        return send(self.gateway.port, method, target, **options)  # type: ignore[arg-type]

    def reset(self) -> None:
        self.rec.reset()
        self.decoy.reset()
        self.rec6.reset()


def start_gateway(root: Path, config: str, env: dict[str, str] | None = None, **values: object) -> GatewayThread:
    """A `relaygate serve` process for `config` with `{placeholders}` filled in."""
    return GatewayThread(root, render(config, **values), env=env).start()


@pytest.fixture(scope="session")
def httpbin() -> Iterator[HttpbinServer]:
    with HttpbinServer().running() as server:
        yield server


@pytest.fixture(scope="session")
def proxy_stack(tmp_path_factory: pytest.TempPathFactory, httpbin: HttpbinServer) -> Iterator[ProxyStack]:
    from tests.helpers.gateway import free_port

    with (
        RecordingUpstream("rec").running() as rec,
        RecordingUpstream("decoy").running() as decoy,
        RawUpstream(BROKEN_FRAMING).running() as raw,
        RecordingUpstream("rec6", host="::1").running() as rec6,
    ):
        gateway = start_gateway(
            tmp_path_factory.mktemp("proxy"),
            PROXY_CONFIG,
            httpbin_url=httpbin.url,
            rec_url=rec.url,
            raw_port=raw.port,
            closed_port=free_port(),
            rec6_url=rec6.url,
        )
        try:
            yield ProxyStack(
                gateway,
                httpbin,
                rec,
                decoy,
                raw,
                rec6,
                alice=gateway.create_token(user=ALICE),
                bob=gateway.create_token(user=BOB),
                bot=gateway.create_token(virtual_account="proxy-bot"),
            )
        finally:
            gateway.stop()


@pytest.fixture
def proxy(proxy_stack: ProxyStack) -> ProxyStack:
    proxy_stack.reset()
    return proxy_stack


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    """A process's resident memory (or peak, `VmHWM`) in KiB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


def reset_peak_rss(pid: int) -> None:
    """Start a new `VmHWM` measurement for the process (Linux `clear_refs` 5)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
