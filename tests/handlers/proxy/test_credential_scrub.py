"""Callers never see upstream keys: a custom endpoint that quotes the credential the gateway injected
gets it replaced by `***` in every relayed response header, and in error bodies (status >= 400) of
up to 64 KiB that are text or JSON, with `Content-Length` fixed. Success bodies stay byte-exact;
larger, compressed or binary error bodies pass unchanged (as the README says).

The upstream (`EchoUpstream`) quotes whatever credential header it received, so each test also
shows the credential really was injected upstream.
"""

from __future__ import annotations

import base64
import gzip
from collections.abc import Iterator
from dataclasses import dataclass

import orjson
import pytest

from tests.handlers.proxy.conftest import start_gateway
from tests.handlers.proxy.echo_upstream import EchoUpstream
from tests.handlers.proxy.wire import WireAnswer, send
from tests.helpers.gateway_thread import GatewayThread

SERVICE_KEY = "svc-key-5a7e1f0c93d2"
BEARER_TOKEN = "bearer-tok-88c1e0a4f7"
BASIC_USER = "svc-user"
BASIC_PASSWORD = "basic-pw-31f9b6d2"
PLAIN_TOKEN = "plain-hdr-token-4e6a2c"  # a Custom Header (not auth_data) whose name marks a credential
BASIC = base64.b64encode(f"{BASIC_USER}:{BASIC_PASSWORD}".encode()).decode()
ALL = (SERVICE_KEY, BEARER_TOKEN, BASIC_PASSWORD, PLAIN_TOKEN, BASIC)
LIMIT = 64 * 1024

CONFIG = f"""\
type: provider-account/custom-endpoint
name: echo
auth_data: {{type: header, headers: {{X-Service-Key: "{SERVICE_KEY}"}}}}
headers: {{X-Api-Token: "{PLAIN_TOKEN}", X-Env: production}}
integrations:
  - {{type: integration/model/custom-endpoint, name: svc, base_url: "{{echo_url}}"}}
  - type: integration/model/custom-endpoint
    name: bearer
    base_url: "{{echo_url}}"
    auth_data: {{type: header, headers: {{Authorization: "Bearer {BEARER_TOKEN}"}}}}
  - type: integration/model/custom-endpoint
    name: basic
    base_url: "{{echo_url}}"
    auth_data: {{type: header, headers: {{Authorization: "Basic {BASIC}"}}}}
---
type: provider-account/custom-endpoint
name: echopool
routing_type: priority
slug: pool
auth_data: {{type: header, headers: {{X-Service-Key: "{SERVICE_KEY}"}}}}
integrations:
  - type: integration/model/custom-endpoint
    name: one
    base_url: "{{echo_url}}"
    loadbalancing_config: {{priority: 0}}
  - type: integration/model/custom-endpoint
    name: two
    base_url: "{{echo_url}}"
    loadbalancing_config: {{priority: 1}}
"""


@dataclass
class Echo:
    gateway: GatewayThread
    token: str

    def get(self, target: str, method: str = "GET") -> WireAnswer:
        return send(self.gateway.port, method, target, token=self.token)


@pytest.fixture(scope="module")
def echo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Echo]:
    with EchoUpstream().running() as upstream:
        gateway = start_gateway(tmp_path_factory.mktemp("scrub"), CONFIG, echo_url=upstream.url)
        try:
            yield Echo(gateway, gateway.create_token(user="alice@example.com"))
        finally:
            gateway.stop()


def assert_framed(answer: WireAnswer) -> None:
    assert answer.header("content-length") in (None, str(len(answer.body))), answer.headers


def assert_nothing_secret(answer: WireAnswer) -> None:
    seen = answer.body + repr(answer.headers).encode()
    for secret in ALL:
        assert secret.encode() not in seen, (secret, answer.status, answer.headers, answer.body[:300])


# -- error bodies are scrubbed ----------------------------------------------------------------------


def test_403_text_body_quoting_the_key_is_scrubbed(echo: Echo) -> None:
    answer = echo.get("/proxy-api/echo/svc/x?status=403")
    assert answer.status == 403
    assert answer.body == b"key *** is not allowed"
    assert answer.header("content-length") == str(len(answer.body))


def test_json_error_body_is_scrubbed_and_stays_json(echo: Echo) -> None:
    answer = echo.get("/proxy-api/echo/svc/x?status=401&form=json&type=application/json")
    assert answer.status == 401
    assert answer.json() == {"error": {"message": "key *** is not allowed", "type": "forbidden"}}
    assert_framed(answer)


def test_problem_json_error_body_is_scrubbed(echo: Echo) -> None:
    answer = echo.get("/proxy-api/echo/svc/x?status=429&form=json&type=application/problem%2Bjson")
    assert answer.json()["error"]["message"] == "key *** is not allowed"
    assert_framed(answer)


def test_chunked_error_body_is_scrubbed_and_sent_with_its_length(echo: Echo) -> None:
    answer = echo.get("/proxy-api/echo/svc/x?status=500&chunked=1&pad=3000")
    assert answer.status == 500
    assert answer.body == b"key *** is not allowed" + b"." * 3000
    assert answer.header("content-length") == str(len(answer.body))


def test_error_body_of_exactly_the_limit_is_scrubbed(echo: Echo) -> None:
    sentence = len(f"key {SERVICE_KEY} is not allowed")
    answer = echo.get(f"/proxy-api/echo/svc/x?status=400&pad={LIMIT - sentence}")
    assert answer.body == b"key *** is not allowed" + b"." * (LIMIT - sentence)
    assert_framed(answer)


@pytest.mark.parametrize(
    ("endpoint", "query"),
    [
        ("bearer", "quote=authorization"),  # the whole header value: `Bearer <token>`
        ("bearer", "quote=authorization&part=scheme"),  # the token alone
        ("basic", "quote=authorization&part=scheme"),  # the Base64 pair
        ("basic", "quote=authorization&part=password"),  # the password, decoded
        ("svc", "quote=x-api-token"),  # a Custom Header named like a credential (account-level `headers:`)
    ],
    ids=["bearer-value", "bearer-token", "basic-pair", "basic-password", "credential-named-header"],
)
def test_every_form_of_a_configured_credential_is_scrubbed(echo: Echo, endpoint: str, query: str) -> None:
    answer = echo.get(f"/proxy-api/echo/{endpoint}/x?status=403&{query}")
    assert answer.status == 403
    assert answer.body.startswith(b"key ***") and answer.body.endswith(b" is not allowed"), answer.body
    assert_nothing_secret(answer)
    assert_framed(answer)


def test_plain_custom_header_values_are_not_treated_as_credentials(echo: Echo) -> None:
    answer = echo.get("/proxy-api/echo/svc/x?status=403&quote=x-env")
    assert answer.body == b"key production is not allowed"


def test_pool_error_after_fallback_is_scrubbed(echo: Echo) -> None:
    answer = echo.get("/proxy-api/echopool/pool/x?status=503&header=1")
    assert answer.status == 503
    assert answer.body == b"key *** is not allowed"
    assert answer.header("x-echo-key") == "***"
    assert_framed(answer)


# -- headers are scrubbed always --------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 302, 403])
def test_response_headers_quoting_the_key_are_scrubbed_on_every_status(echo: Echo, status: int) -> None:
    answer = echo.get(f"/proxy-api/echo/svc/x?status={status}&header=1&type=application/octet-stream")
    assert answer.status == status
    assert answer.header("x-echo-key") == "***"
    assert answer.header("www-authenticate") == 'Key realm="svc", key="***"'


def test_head_error_keeps_the_upstream_content_length(echo: Echo) -> None:
    answer = echo.get("/proxy-api/echo/svc/x?status=403&header=1", method="HEAD")
    assert answer.status == 403
    assert answer.header("content-length") == str(len(f"key {SERVICE_KEY} is not allowed"))
    assert answer.header("x-echo-key") == "***"


# -- what passes unchanged --------------------------------------------------------------------------


def test_success_body_is_byte_exact_even_when_it_quotes_the_key(echo: Echo) -> None:
    answer = echo.get("/proxy-api/echo/svc/x?status=200&form=json&type=application/json")
    assert answer.body == orjson.dumps({"error": {"message": f"key {SERVICE_KEY} is not allowed", "type": "forbidden"}})


def test_error_body_over_the_limit_passes_unchanged(echo: Echo) -> None:
    sentence = len(f"key {SERVICE_KEY} is not allowed")
    answer = echo.get(f"/proxy-api/echo/svc/x?status=403&pad={LIMIT - sentence + 1}")
    assert answer.status == 403
    assert answer.body == f"key {SERVICE_KEY} is not allowed".encode() + b"." * (LIMIT - sentence + 1)
    assert_framed(answer)


def test_chunked_error_body_over_the_limit_passes_unchanged(echo: Echo) -> None:
    answer = echo.get(f"/proxy-api/echo/svc/x?status=502&chunked=1&pad={LIMIT * 3}")
    assert answer.body == f"key {SERVICE_KEY} is not allowed".encode() + b"." * (LIMIT * 3)


def test_gzip_error_body_passes_unchanged(echo: Echo) -> None:
    answer = echo.get("/proxy-api/echo/svc/x?status=403&gzip=1")
    assert answer.header("content-encoding") == "gzip"
    assert gzip.decompress(answer.body) == f"key {SERVICE_KEY} is not allowed".encode()
    assert_framed(answer)


def test_binary_error_body_passes_unchanged(echo: Echo) -> None:
    answer = echo.get("/proxy-api/echo/svc/x?status=403&type=application/octet-stream")
    assert answer.body == f"key {SERVICE_KEY} is not allowed".encode()


def test_error_event_stream_is_relayed_as_it_comes(echo: Echo) -> None:
    answer = echo.get("/proxy-api/echo/svc/x?status=500&chunked=1&pause=1.0&type=text/event-stream")
    assert answer.body == f"key {SERVICE_KEY} is not allowed".encode()
    assert answer.first_byte_at < 0.8, answer.first_byte_at  # not held back for scrubbing (~1.0 s if it were)
