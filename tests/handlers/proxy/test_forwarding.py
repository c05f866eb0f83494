"""What crosses the proxy on `/proxy-api/{account}/{endpoint}/{path}`: method, path, query, headers,
bodies, credentials, redirects. httpbin shows what a real server received; the recording upstream
shows the raw request target."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from urllib.request import urlopen

import pytest

from tests.handlers.proxy import credentials
from tests.handlers.proxy.conftest import ProxyStack
from tests.helpers.gateway import run_cli, subprocess_env, token_secret_of

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def httpbin_direct(stack: ProxyStack, target: str) -> bytes:
    with urlopen(stack.httpbin.url + target, timeout=10) as response:
        return bytes(response.read())


# -- method, path, query ----------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_method_reaches_the_upstream_unchanged(proxy: ProxyStack, method: str) -> None:
    answer = proxy.call(method, "/proxy-api/rec/origin/thing")
    assert answer.status == 200
    assert proxy.rec.last().method == method


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
def test_httpbin_echoes_the_method_and_body(proxy: ProxyStack, method: str) -> None:
    body = f"payload for {method}".encode() if method not in ("GET", "DELETE") else None
    answer = proxy.call(
        method, "/proxy-api/bin/httpbin/anything/x", body=body, headers={"Content-Type": "text/plain"} if body else None
    )
    assert answer.status == 200
    echoed = answer.json()
    assert echoed["method"] == method
    assert echoed["data"] == (body.decode() if body else "")


def test_head_answer_has_headers_and_no_body(proxy: ProxyStack) -> None:
    answer = proxy.call("HEAD", "/proxy-api/bin/httpbin/bytes/512")
    assert answer.status == 200
    assert answer.body == b""
    assert answer.header("content-length") == "512"


def test_options_answer_comes_from_the_upstream(proxy: ProxyStack) -> None:
    answer = proxy.call("OPTIONS", "/proxy-api/bin/httpbin/get")
    assert answer.status == 200
    assert "GET" in (answer.header("allow") or "")


def test_remaining_path_is_appended_to_base_path_byte_for_byte(proxy: ProxyStack) -> None:
    path = "/a%2Fb/c%20d/%E2%82%AC/x;y=1/~user/%7e/A+B/%25/"
    assert proxy.call("GET", "/proxy-api/rec/base" + path).status == 200
    assert proxy.rec.last().path == "/base/v1" + path


def test_encoded_slash_is_not_decoded(proxy: ProxyStack) -> None:
    proxy.call("GET", "/proxy-api/rec/origin/files/dir%2Fname%2fwith%2Fslashes")
    assert proxy.rec.last().path == "/files/dir%2Fname%2fwith%2Fslashes"


def test_empty_remaining_path_is_the_base_url(proxy: ProxyStack) -> None:
    proxy.call("GET", "/proxy-api/rec/base")
    assert proxy.rec.last().path == "/base/v1"
    proxy.call("GET", "/proxy-api/rec/base/")
    assert proxy.rec.last().path == "/base/v1/"


def test_query_string_is_forwarded_unchanged(proxy: ProxyStack) -> None:
    query = "b=2&a=1&a=3&sp=%20+x&empty=&flag&enc=%2F%3D%26&utf=%C3%A9"
    proxy.call("GET", "/proxy-api/rec/origin/q?" + query)
    assert proxy.rec.last().target == "/q?" + query


def test_ipv6_literal_base_url_is_reached(proxy: ProxyStack) -> None:
    assert proxy.call("GET", "/proxy-api/rec/v6/a%2Fb?x=1").status == 200
    seen = proxy.rec6.last()
    assert seen.target == "/six/a%2Fb?x=1"
    assert seen.header("host") == f"[::1]:{proxy.rec6.port}"


# -- headers ----------------------------------------------------------------------------------------


def test_caller_headers_are_forwarded_in_order(proxy: ProxyStack) -> None:
    sent = [
        ("X-Custom", "one"),
        ("X-Multi", "first"),
        ("X-Multi", "second"),
        ("User-Agent", "my-client/1.0"),
        ("Accept", "application/xml"),
        ("Content-Type", "application/ssml+xml"),
    ]
    proxy.call("POST", "/proxy-api/rec/origin/h", headers=sent, body=b"<speak/>")
    seen = proxy.rec.last()
    assert seen.header_values("x-multi") == ["first", "second"]
    assert seen.header("x-custom") == "one"
    assert seen.header("user-agent") == "my-client/1.0"
    assert seen.header("accept") == "application/xml"
    assert seen.header("content-type") == "application/ssml+xml"


def test_gateway_adds_no_accept_encoding_or_content_type(proxy: ProxyStack) -> None:
    proxy.call("POST", "/proxy-api/rec/origin/h", body=b"raw bytes")
    seen = proxy.rec.last()
    assert seen.header("accept-encoding") is None
    assert seen.header("content-type") is None
    assert seen.header("accept") is None


def test_account_header_auth_is_injected(proxy: ProxyStack) -> None:
    headers = proxy.call("GET", "/proxy-api/bin/httpbin/headers").json()["headers"]
    assert headers["Authorization"] == f"Bearer {credentials.ACCOUNT}"


def test_integration_header_auth_replaces_the_accounts(proxy: ProxyStack) -> None:
    headers = proxy.call("GET", "/proxy-api/bin/own-auth/headers").json()["headers"]
    assert headers["X-Upstream-Key"] == credentials.INTEGRATION
    assert "Authorization" not in headers


def test_custom_headers_are_merged_with_auth(proxy: ProxyStack) -> None:
    headers = proxy.call("GET", "/proxy-api/bin/httpbin/headers").json()["headers"]
    assert headers["X-Env"] == "prod"
    assert headers["X-Team"] == "endpoint-team"
    assert proxy.call("GET", "/proxy-api/bin/own-auth/headers").json()["headers"]["X-Env"] == "staging"


def test_account_custom_headers_reach_every_endpoint(proxy: ProxyStack) -> None:
    proxy.call("GET", "/proxy-api/layers/plain/h")
    seen = proxy.rec.last()
    assert seen.header_values("x-account") == ["acct-wide"]
    assert seen.header_values("x-team") == ["account-team"]
    assert seen.header_values("x-env") == ["account-default"]


def test_endpoint_custom_headers_win_over_the_accounts_whatever_the_case(proxy: ProxyStack) -> None:
    proxy.call("GET", "/proxy-api/layers/own/h")
    seen = proxy.rec.last()
    assert seen.header_values("x-team") == ["endpoint-team"]  # the account's `x-team` is replaced, not added
    assert seen.header_values("x-account") == ["acct-wide"]


def test_header_auth_wins_over_account_custom_headers(proxy: ProxyStack) -> None:
    for endpoint in ("own", "plain"):
        proxy.call("GET", f"/proxy-api/layers/{endpoint}/h")
        assert proxy.rec.last().header_values("x-service-key") == [credentials.LAYERS]


def test_caller_header_named_like_an_account_header_is_replaced(proxy: ProxyStack) -> None:
    proxy.call("GET", "/proxy-api/layers/plain/h", headers=[("x-ACCOUNT", "caller"), ("X-Other", "kept")])
    seen = proxy.rec.last()
    assert seen.header_values("x-account") == ["acct-wide"]
    assert seen.header("x-other") == "kept"


def test_check_validates_account_custom_headers(tmp_path: Path) -> None:
    manifest = (
        "type: provider-account/custom-endpoint\nname: layered\nheaders: {{{header}}}\nintegrations:\n"
        '  - {{type: integration/model/custom-endpoint, name: up, base_url: "http://127.0.0.1:9"}}\n'
    )
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(manifest.format(header="X-Team: speech"))
    bad.write_text(manifest.format(header='"X Team": speech'))
    assert run_cli("check", "-f", str(good), env=subprocess_env()).returncode == 0
    refused = run_cli("check", "-f", str(bad), env=subprocess_env())
    assert refused.returncode != 0
    assert "headers" in refused.stdout + refused.stderr


def test_caller_header_with_an_injected_name_is_replaced(proxy: ProxyStack) -> None:
    answer = proxy.call(
        "GET",
        "/proxy-api/bin/httpbin/headers",
        headers=[("x-env", "caller"), ("X-TEAM", "caller-team"), ("X-Upstream-Key", "mine")],
    )
    headers = answer.json()["headers"]
    assert headers["X-Env"] == "prod"
    assert headers["X-Team"] == "endpoint-team"
    assert headers["X-Upstream-Key"] == "mine"  # not injected on this endpoint: the caller's stays
    own = proxy.call("GET", "/proxy-api/bin/own-auth/headers", headers={"X-Upstream-Key": "mine"}).json()
    assert own["headers"]["X-Upstream-Key"] == credentials.INTEGRATION


def test_caller_token_is_removed_from_authorization(proxy: ProxyStack) -> None:
    proxy.call("GET", "/proxy-api/rec/origin/t")
    seen = proxy.rec.last()
    assert seen.header("authorization") is None
    assert token_secret_of(proxy.alice) not in repr(seen.headers)


def test_caller_token_is_removed_from_other_headers(proxy: ProxyStack) -> None:
    proxy.call(
        "GET",
        "/proxy-api/rec/origin/t",
        headers={"X-Forward-Token": proxy.alice, "X-Debug": f"token={proxy.alice}; keep", "X-Keep": "1"},
    )
    seen = proxy.rec.last()
    assert seen.header("x-forward-token") is None
    assert seen.header("x-debug") is None
    assert seen.header("x-keep") == "1"


def test_caller_token_is_removed_from_the_query(proxy: ProxyStack) -> None:
    proxy.call("GET", f"/proxy-api/rec/origin/t?keep=1&api_key={proxy.alice}&also=2")
    assert proxy.rec.last().query == "keep=1&also=2"


def test_caller_token_is_removed_from_cookies(proxy: ProxyStack) -> None:
    proxy.call("GET", "/proxy-api/rec/origin/t", headers={"Cookie": f"session=abc; rg={proxy.alice}; theme=dark"})
    assert proxy.rec.last().header("cookie") == "session=abc; theme=dark"


def test_token_sent_as_x_api_key_is_removed(proxy: ProxyStack) -> None:
    answer = proxy.call("GET", "/proxy-api/rec/origin/t", token=None, headers={"x-api-key": proxy.alice})
    assert answer.status == 200
    assert proxy.rec.last().header("x-api-key") is None


def test_hop_by_hop_headers_are_removed(proxy: ProxyStack) -> None:
    proxy.call(
        "GET",
        "/proxy-api/rec/origin/h",
        headers=[
            ("Connection", "keep-alive, X-Hop-Listed"),
            ("X-Hop-Listed", "gone"),
            ("Keep-Alive", "timeout=5"),
            ("TE", "trailers"),
            ("Trailer", "X-Checksum"),
            ("Upgrade", "example/1"),
            ("Proxy-Authorization", "Basic Zm9vOmJhcg=="),
            ("Proxy-Connection", "keep-alive"),
            ("X-Stays", "yes"),
        ],
    )
    names = {name.lower() for name, _ in proxy.rec.last().headers}
    assert names.isdisjoint(
        {"x-hop-listed", "keep-alive", "te", "trailer", "upgrade", "proxy-authorization", "proxy-connection"}
    ), names
    assert "x-stays" in names


def test_tfy_headers_are_removed(proxy: ProxyStack) -> None:
    proxy.call(
        "GET",
        "/proxy-api/rec/origin/h",
        headers={"x-tfy-metadata": '{"app": "t"}', "X-TFY-Request-Timeout": "20000", "x-tfy-anything": "1"},
    )
    assert not [name for name, _ in proxy.rec.last().headers if name.lower().startswith("x-tfy-")]


def test_expect_continue_is_answered_by_the_gateway_not_forwarded(proxy: ProxyStack) -> None:
    answer = proxy.call("POST", "/proxy-api/rec/origin/e", body=b"after continue", headers={"Expect": "100-continue"})
    assert answer.status == 200
    assert proxy.rec.last().header("expect") is None
    assert proxy.rec.last().body == b"after continue"


def test_host_header_is_the_upstreams(proxy: ProxyStack) -> None:
    proxy.call("GET", "/proxy-api/rec/origin/h", headers={"Host": f"127.0.0.1:{proxy.decoy.port}"})
    assert proxy.rec.last().header_values("host") == [f"127.0.0.1:{proxy.rec.port}"]
    assert proxy.decoy.count == 0


# -- bodies -----------------------------------------------------------------------------------------


def test_binary_request_body_arrives_intact(proxy: ProxyStack) -> None:
    body = bytes(range(256)) * 64 + os.urandom(4096)
    answer = proxy.call(
        "POST", "/proxy-api/bin/httpbin/anything", body=body, headers={"Content-Type": "application/octet-stream"}
    )
    data = answer.json()["data"]
    assert base64.b64decode(data.split(",", 1)[1]) == body


def test_binary_response_body_arrives_intact(proxy: ProxyStack) -> None:
    answer = proxy.call("GET", "/proxy-api/bin/httpbin/bytes/4096?seed=7")
    assert answer.status == 200
    assert answer.body == httpbin_direct(proxy, "/bytes/4096?seed=7")


def test_chunked_binary_response_arrives_intact_and_chunked(proxy: ProxyStack) -> None:
    answer = proxy.call("GET", "/proxy-api/bin/httpbin/stream-bytes/20000?seed=3&chunk_size=512")
    assert answer.body == httpbin_direct(proxy, "/stream-bytes/20000?seed=3&chunk_size=512")
    assert answer.header("transfer-encoding") == "chunked"
    assert answer.header("content-length") is None


def test_chunked_request_body_arrives_intact(proxy: ProxyStack) -> None:
    pieces = [os.urandom(100_000) for _ in range(30)]
    answer = proxy.call("PUT", "/proxy-api/rec/origin/upload", body=iter(pieces))
    assert answer.status == 200
    seen = proxy.rec.last()
    assert seen.complete
    assert seen.body_sha256 == hashlib.sha256(b"".join(pieces)).hexdigest()


# -- redirects --------------------------------------------------------------------------------------


def test_redirect_to_is_returned_not_followed(proxy: ProxyStack) -> None:
    answer = proxy.call(
        "GET", "/proxy-api/bin/httpbin/redirect-to?url=http%3A%2F%2F127.0.0.1%3A9%2Felsewhere&status_code=307"
    )
    assert answer.status == 307
    assert answer.header("location") == "http://127.0.0.1:9/elsewhere"


def test_status_302_is_returned_not_followed(proxy: ProxyStack) -> None:
    answer = proxy.call("GET", "/proxy-api/bin/httpbin/status/302")
    assert answer.status == 302
    assert answer.header("location") == "/redirect/1"
