"""Requests that try to leave the endpoint, smuggle, inject or overflow; upstreams that break HTTP.

Raw sockets send what a client library would normalise or refuse. Whatever layer refuses a bad
request (the HTTP parser or the proxy), nothing may reach an upstream it should not, and the
gateway keeps serving the next request.
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.handlers.proxy.conftest import ProxyStack, start_gateway
from tests.handlers.proxy.wire import raw_body, raw_exchange, raw_status, send
from tests.helpers.error_shape import assert_error_shape
from tests.helpers.gateway import run_cli, subprocess_env
from tests.helpers.gateway_thread import GatewayThread
from tests.upstreams.recording_upstream import RecordingUpstream

DOT_SEGMENT_PATHS = [
    "/a/../b",
    "/..",
    "/a/..",
    "/a/./b",
    "/a/%2e%2e/b",
    "/a/%2E%2e/b",
    "/a/.%2e/b",
    "/a/%2e/b",
    "/a/%252e%252e/b",
    "/a/..%2fb",
    "/a/..%2Fb",
    "/a/%2e%2e%5cb",
    "/a/..%5cb",
    "/a/%25252e%25252e/b",
    "/a/%2525252e%2525252e/b",
    "/a/x%2f..%2fy",
    "/a%5c..%5cb",
]


def raw_request(proxy: ProxyStack, request_line: str, *headers: str, body: bytes = b"", token: bool = True) -> bytes:
    lines = [request_line, f"Host: 127.0.0.1:{proxy.port}", *headers]
    if token:
        lines.append(f"Authorization: Bearer {proxy.alice}")
    lines.append("Connection: close")
    return raw_exchange(proxy.port, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)


def assert_still_serving(proxy: ProxyStack) -> None:
    answer = proxy.call("GET", "/proxy-api/rec/origin/still-here")
    assert answer.status == 200
    assert proxy.rec.last().path == "/still-here"


# -- paths ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", DOT_SEGMENT_PATHS)
def test_dot_segment_is_refused_with_400(proxy: ProxyStack, path: str) -> None:
    response = raw_request(proxy, f"GET /proxy-api/rec/base{path} HTTP/1.1")
    assert raw_status(response) == 400, response[:300]
    assert assert_error_shape(orjson.loads(raw_body(response)))["code"] == "invalid_path"
    assert proxy.rec.count == 0


def test_dot_like_names_are_not_dot_segments(proxy: ProxyStack) -> None:
    for path in ("/a/.../b", "/a/..b/c", "/.well-known/x", "/a/b..", "/%2e%2e%2e"):
        assert proxy.call("GET", "/proxy-api/rec/origin" + path).status == 200, path
        assert proxy.rec.last().path == path


# -- the upstream host cannot be changed ------------------------------------------------------------


def test_absolute_form_target_does_not_change_the_upstream(proxy: ProxyStack) -> None:
    decoy = f"127.0.0.1:{proxy.decoy.port}"
    response = raw_request(proxy, f"GET http://{decoy}/proxy-api/rec/origin/abs HTTP/1.1")
    assert raw_status(response) in (200, 400), response[:300]
    assert proxy.decoy.count == 0
    if raw_status(response) == 200:
        assert proxy.rec.last().path == "/abs"


def test_duplicate_or_odd_host_does_not_change_the_upstream(proxy: ProxyStack) -> None:
    decoy = f"127.0.0.1:{proxy.decoy.port}"
    for extra in (
        [f"Host: {decoy}"],
        [f"X-Forwarded-Host: {decoy}", f"Forwarded: host={decoy}"],
        [f"X-Original-URL: http://{decoy}/x", f"X-Rewrite-URL: http://{decoy}/x"],
    ):
        raw_request(proxy, "GET /proxy-api/rec/origin/host HTTP/1.1", *extra)
    lines = [
        "GET /proxy-api/rec/origin/odd HTTP/1.1",
        f"Host: user@{decoy}",
        f"Authorization: Bearer {proxy.alice}",
        "Connection: close",
    ]
    raw_exchange(proxy.port, ("\r\n".join(lines) + "\r\n\r\n").encode())
    assert proxy.decoy.count == 0
    assert all(seen.header_values("host") == [f"127.0.0.1:{proxy.rec.port}"] for seen in proxy.rec.seen)


def test_double_slash_path_stays_on_the_upstream(proxy: ProxyStack) -> None:
    path = f"//127.0.0.1:{proxy.decoy.port}/x"
    assert proxy.call("GET", "/proxy-api/rec/origin" + path).status == 200
    assert proxy.rec.last().path == path
    assert proxy.decoy.count == 0


def test_at_sign_in_path_stays_on_the_upstream(proxy: ProxyStack) -> None:
    path = f"/@127.0.0.1:{proxy.decoy.port}/x"
    assert proxy.call("GET", "/proxy-api/rec/origin" + path).status == 200
    assert proxy.rec.last().path == path
    at_endpoint = proxy.call("GET", f"/proxy-api/rec/origin@127.0.0.1:{proxy.decoy.port}/x")
    assert at_endpoint.status == 404
    assert proxy.decoy.count == 0


def test_body_fields_do_not_change_the_upstream(proxy: ProxyStack) -> None:
    decoy = f"http://127.0.0.1:{proxy.decoy.port}"
    body = orjson.dumps({"base_url": decoy, "api_base": decoy, "url": decoy, "host": decoy})
    answer = proxy.call(
        "POST", "/proxy-api/rec/origin/v1/chat", body=body, headers={"Content-Type": "application/json"}
    )
    assert answer.status == 200
    assert proxy.rec.last().body == body
    assert proxy.decoy.count == 0


# -- header injection and smuggling -----------------------------------------------------------------


@pytest.mark.parametrize(
    "value", [b"a\rInjected: yes", b"a\x00b", b"a\r\n Injected: folded"], ids=["bare-cr", "nul", "obs-fold"]
)
def test_control_bytes_in_header_values_are_not_forwarded(proxy: ProxyStack, value: bytes) -> None:
    request = (
        b"GET /proxy-api/rec/origin/inject HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + proxy.alice.encode()
        + b"\r\nX-Bad: "
        + value
        + b"\r\nConnection: close\r\n\r\n"
    )
    response = raw_exchange(proxy.port, request)
    assert raw_status(response) == 400, response[:300]
    assert proxy.rec.count == 0
    assert_still_serving(proxy)


def test_bare_lf_in_header_value_is_refused(proxy: ProxyStack) -> None:
    request = (
        b"GET /proxy-api/rec/origin/inject HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + proxy.alice.encode()
        + b"\r\nX-Bad: a\nInjected: yes\r\nConnection: close\r\n\r\n"
    )
    assert raw_status(raw_exchange(proxy.port, request)) == 400
    assert proxy.rec.count == 0
    assert_still_serving(proxy)


def test_content_length_with_transfer_encoding_is_refused(proxy: ProxyStack) -> None:
    smuggled = (
        f"GET /proxy-api/rec/origin/smuggled HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {proxy.alice}\r\n\r\n"
    ).encode()
    chunk = f"{len(smuggled):x}\r\n".encode() + smuggled + b"\r\n0\r\n\r\n"
    response = raw_request(
        proxy,
        "POST /proxy-api/rec/origin/front HTTP/1.1",
        "Content-Length: 4",
        "Transfer-Encoding: chunked",
        body=chunk,
    )
    assert raw_status(response) == 400, response[:300]
    assert proxy.rec.count == 0
    assert_still_serving(proxy)


def test_duplicate_content_length_is_not_smuggled(proxy: ProxyStack) -> None:
    smuggled = f"GET /proxy-api/rec/origin/smuggled HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {proxy.alice}"
    body = b"hello" + (smuggled + "\r\n\r\n").encode()
    response = raw_request(
        proxy,
        "POST /proxy-api/rec/origin/front HTTP/1.1",
        "Content-Length: 5",
        f"Content-Length: {len(body)}",
        body=body,
    )
    assert raw_status(response) == 400, response[:300]
    assert proxy.rec.count == 0
    assert_still_serving(proxy)


def test_upstream_sees_one_request_per_proxied_request(proxy: ProxyStack) -> None:
    body = b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    answer = proxy.call("POST", "/proxy-api/rec/origin/front", body=body)
    assert answer.status == 200
    assert [seen.path for seen in proxy.rec.seen] == ["/front"]
    assert proxy.rec.last().body == body


# -- body size limit --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GatewayThread, RecordingUpstream, str]]:
    with RecordingUpstream("limited").running() as upstream:
        config = (
            "type: provider-account/custom-endpoint\nname: small\nintegrations:\n"
            '  - {type: integration/model/custom-endpoint, name: up, base_url: "{url}"}\n'
        )
        gateway = start_gateway(
            tmp_path_factory.mktemp("limited"),
            config,
            env={"RELAYGATE_MAX_REQUEST_BODY_BYTES": str(4 << 20)},
            url=upstream.url,
        )
        try:
            yield gateway, upstream, gateway.create_token(user="alice@example.com")
        finally:
            gateway.stop()


def pieces(total: int, size: int = 256 * 1024) -> Iterator[bytes]:
    for _ in range(total // size):
        yield b"x" * size


def test_chunked_upload_past_the_limit_is_413(limited: tuple[GatewayThread, RecordingUpstream, str]) -> None:
    gateway, upstream, token = limited
    upstream.reset()
    answer = send(gateway.port, "POST", "/proxy-api/small/up/upload", token=token, body=pieces(8 << 20))
    assert answer.status == 413
    assert assert_error_shape(answer.json())["type"]
    assert not [seen for seen in upstream.seen if seen.complete]


def test_declared_length_past_the_limit_is_413_before_any_upstream_call(
    limited: tuple[GatewayThread, RecordingUpstream, str],
) -> None:
    gateway, upstream, token = limited
    upstream.reset()
    response = raw_exchange(
        gateway.port,
        (
            f"POST /proxy-api/small/up/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            f"{token}\r\nContent-Length: {8 << 20}\r\nConnection: close\r\n\r\n"
        ).encode()
        + b"x" * 1024,
    )
    assert raw_status(response) == 413
    assert upstream.count == 0


def test_gateway_serves_after_a_413(limited: tuple[GatewayThread, RecordingUpstream, str]) -> None:
    gateway, upstream, token = limited
    send(gateway.port, "POST", "/proxy-api/small/up/upload", token=token, body=pieces(8 << 20))
    upstream.reset()
    answer = send(gateway.port, "POST", "/proxy-api/small/up/fine", token=token, body=pieces(3 << 20))
    assert answer.status == 200
    assert upstream.last().complete and upstream.last().body_size == 3 << 20


# -- link-local destinations ------------------------------------------------------------------------


METADATA_ACCOUNT = """\
type: provider-account/custom-endpoint
name: meta
{allow}integrations:
  - {{type: integration/model/custom-endpoint, name: imds, base_url: "{url}"}}
"""


@pytest.mark.parametrize(
    "url", ["http://169.254.169.254/latest", "http://[fd00:ec2::254]/x", "http://169.254.10.1:8080"]
)
def test_link_local_base_url_is_a_config_error(tmp_path: Path, url: str) -> None:
    path = tmp_path / "meta.yaml"
    path.write_text(METADATA_ACCOUNT.format(allow="", url=url))
    result = run_cli("check", "-f", str(path), env=subprocess_env())
    assert result.returncode != 0
    assert "allow_metadata_destinations" in result.stdout + result.stderr


def test_link_local_base_url_is_allowed_when_opted_in(tmp_path: Path) -> None:
    path = tmp_path / "meta.yaml"
    path.write_text(
        METADATA_ACCOUNT.format(allow="allow_metadata_destinations: true\n", url="http://169.254.169.254/latest")
    )
    result = run_cli("check", "-f", str(path), env=subprocess_env())
    assert result.returncode == 0, result.stdout + result.stderr


# -- upstreams with broken framing ------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/garbage-status", "/bad-header", "/silent-close"])
def test_broken_upstream_answer_is_502(proxy: ProxyStack, path: str) -> None:
    answer = proxy.call("GET", "/proxy-api/rec/raw" + path)
    assert answer.status == 502
    assert_error_shape(answer.json())
    assert proxy.call("GET", "/proxy-api/rec/raw/fine").body == b"ok"


@pytest.mark.parametrize("path", ["/truncated-chunked", "/short-body"])
def test_upstream_body_broken_after_headers_cuts_the_connection(proxy: ProxyStack, path: str) -> None:
    with pytest.raises(http.client.IncompleteRead):
        proxy.call("GET", "/proxy-api/rec/raw" + path)
    assert proxy.call("GET", "/proxy-api/rec/raw/fine").body == b"ok"
    assert_still_serving(proxy)


@pytest.mark.parametrize("status", ["600", "999", "099", "000"])
def test_upstream_status_outside_100_599_is_502(proxy: ProxyStack, status: str) -> None:
    answer = proxy.call("GET", f"/proxy-api/rec/raw/status-{status}")
    assert answer.status == 502
    assert assert_error_shape(answer.json())["type"]
    request_id = answer.header("x-request-id")
    assert request_id
    assert proxy.gateway.wait_for_log(request_id)["status"] == 502
    assert_still_serving(proxy)


def test_upstream_status_outside_100_599_falls_back_in_a_pool(proxy: ProxyStack) -> None:
    answer = proxy.call("GET", "/proxy-api/odd/pool")
    assert answer.status == 200
    assert answer.json()["upstream"] == "rec"
    row = proxy.gateway.wait_for_log(answer.header("x-request-id") or "")
    assert [a["target"] for a in row["extra"]["attempts"]] == ["six-hundred", "fine"]
