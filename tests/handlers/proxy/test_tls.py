"""Upstream TLS per endpoint (`tls_settings`) against HTTPS upstreams with a private `trustme` CA."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass

import orjson
import pytest
import trustme

from tests.handlers.proxy.conftest import start_gateway
from tests.handlers.proxy.wire import WireAnswer, send
from tests.helpers.error_shape import assert_error_shape
from tests.helpers.gateway_thread import GatewayThread
from tests.upstreams.httpbin_server import HttpbinServer
from tests.upstreams.recording_upstream import RecordingUpstream

TLS_CONFIG = """\
type: provider-account/custom-endpoint
name: tls
integrations:
  - type: integration/model/custom-endpoint
    name: insecure
    base_url: "{url}"
    tls_settings: {reject_unauthorized: false}
  - {type: integration/model/custom-endpoint, name: verified, base_url: "{url}"}
  - type: integration/model/custom-endpoint
    name: private-ca
    base_url: "{url}"
    tls_settings: {ca_certificates: {ca_pem}}
  - type: integration/model/custom-endpoint
    name: other-ca
    base_url: "{url}"
    tls_settings: {ca_certificates: {other_pem}}
  - type: integration/model/custom-endpoint
    name: httpbin
    base_url: "{httpbin_url}"
    tls_settings: {ca_certificates: {ca_pem}}
"""


@dataclass
class TlsStack:
    gateway: GatewayThread
    upstream: RecordingUpstream
    token: str

    def get(self, endpoint: str, path: str = "/hello") -> WireAnswer:
        return send(self.gateway.port, "GET", f"/proxy-api/tls/{endpoint}{path}", token=self.token)


def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsStack]:
    ca, other = trustme.CA(), trustme.CA()
    with (
        RecordingUpstream("tls", ssl_context=server_context(ca)).running() as upstream,
        HttpbinServer(ssl_context=server_context(ca)).running() as httpbin,
    ):
        pem = orjson.dumps(ca.cert_pem.bytes().decode()).decode()  # a YAML double-quoted string
        other_pem = orjson.dumps(other.cert_pem.bytes().decode()).decode()
        gateway = start_gateway(
            tmp_path_factory.mktemp("tls"),
            TLS_CONFIG,
            url=upstream.url,
            ca_pem=pem,
            other_pem=other_pem,
            httpbin_url=httpbin.url,
        )
        try:
            yield TlsStack(gateway, upstream, gateway.create_token(user="alice@example.com"))
        finally:
            gateway.stop()


def test_reject_unauthorized_false_accepts_a_self_signed_upstream(tls: TlsStack) -> None:
    answer = tls.get("insecure")
    assert answer.status == 200
    assert answer.json()["target"] == "/hello"


def test_default_verification_refuses_an_unknown_ca_with_502(tls: TlsStack) -> None:
    tls.upstream.reset()
    answer = tls.get("verified")
    assert answer.status == 502
    assert_error_shape(answer.json())
    assert tls.upstream.count == 0


def test_ca_certificates_trusts_the_private_ca(tls: TlsStack) -> None:
    answer = tls.get("private-ca", "/with/ca?x=1")
    assert answer.status == 200
    assert answer.json()["target"] == "/with/ca?x=1"


def test_ca_certificates_of_another_ca_refuse_with_502(tls: TlsStack) -> None:
    assert tls.get("other-ca").status == 502


def test_httpbin_over_https_with_the_private_ca(tls: TlsStack) -> None:
    answer = tls.get("httpbin", "/get?over=tls")
    assert answer.status == 200
    assert answer.json()["args"] == {"over": "tls"}
