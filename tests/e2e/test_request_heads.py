"""Request heads the gateway refuses before the app sees them: size limits (414/431), one Host (400).

Raw sockets against a real `relaygate serve`: an oversized or malformed head gets a complete
OpenAI-shaped answer and a closed connection, nothing reaches an upstream, memory stays flat under a
flood, and the next request is served as usual. The limits are `serve` flags and `RELAYGATE_*`
variables, and hold in `--workers` mode too.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from tests.helpers.gateway import GatewayProcess, render
from tests.helpers.manifests import OPENAI_ACCOUNT, OPENAI_KEY
from tests.helpers.raw_http import Response, exchange, head, parse, read_to_close
from tests.upstreams.openai_mock import OpenAIMock
from tests.upstreams.recording_upstream import RecordingUpstream

KIB = 1024
CONFIG = (
    OPENAI_ACCOUNT
    + """\
---
type: provider-account/custom-endpoint
name: rec
integrations:
  - {type: integration/model/custom-endpoint, name: origin, base_url: "{rec_url}"}
"""
)
CHAT_BODY = orjson.dumps({"model": "openai-main/gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
MESSAGES_BODY = orjson.dumps(
    {"model": "openai-main/gpt-4o", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
)


@dataclass
class Heads:
    gateway: GatewayProcess
    openai: OpenAIMock
    rec: RecordingUpstream
    token: str

    def reset(self) -> None:
        self.openai.reset()
        self.rec.reset()

    @property
    def upstream_requests(self) -> int:
        return len(self.openai.requests) + self.rec.count


@pytest.fixture(scope="module")
def heads(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Heads]:
    with OpenAIMock(OPENAI_KEY).running() as openai, RecordingUpstream("rec").running() as rec:
        gateway = GatewayProcess(tmp_path_factory.mktemp("heads"), render(CONFIG, port=openai.port, rec_url=rec.url))
        gateway.start()
        try:
            yield Heads(gateway, openai, rec, gateway.create_token(user="alice@example.com"))
        finally:
            gateway.stop()


@pytest.fixture
def stack(heads: Heads) -> Heads:
    heads.reset()
    return heads


# -- checks ------------------------------------------------------------------------------------------


def assert_refused(raw: bytes, status: int, code: str) -> Response:
    """A complete refusal: status, JSON error with `code`, x-request-id, connection: close, then EOF."""
    response = parse(raw)
    assert response.status == status, raw[:300]
    assert response.error()["code"] == code
    assert response.headers.get("connection") == "close"
    assert response.headers.get("x-request-id")
    assert response.rest == b""  # nothing after it: the connection was closed
    return response


def assert_still_serving(stack: Heads) -> None:
    answer = stack.gateway.request("POST", "/api/llm/chat/completions", token=stack.token, json=orjson.loads(CHAT_BODY))
    assert answer.status == 200


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


# -- size limits --------------------------------------------------------------------------------------


def test_request_line_longer_than_8_kib_is_414(stack: Heads) -> None:
    target = "/proxy-api/rec/origin/" + "a" * (16 * KIB)
    raw = exchange(stack.gateway.port, head(target, "Host: x", f"Authorization: Bearer {stack.token}"))
    assert_refused(raw, 414, "request_line_too_long")
    assert stack.upstream_requests == 0
    assert_still_serving(stack)


def test_request_line_just_under_the_limit_is_served(stack: Heads) -> None:
    prefix = "/proxy-api/rec/origin/"
    target = prefix + "a" * (8 * KIB - len("GET  HTTP/1.1") - len(prefix))
    raw = exchange(
        stack.gateway.port, head(target, "Host: x", f"Authorization: Bearer {stack.token}", "Connection: close")
    )
    assert parse(raw).status == 200
    assert stack.rec.last().path == target.removeprefix("/proxy-api/rec/origin")


def test_one_mebibyte_header_is_431(stack: Heads) -> None:
    raw = exchange(
        stack.gateway.port,
        head(
            "/proxy-api/rec/origin/x", "Host: x", f"Authorization: Bearer {stack.token}", "X-Big: " + "b" * (1024 * KIB)
        ),
    )
    assert_refused(raw, 431, "request_header_fields_too_large")
    assert stack.upstream_requests == 0
    assert_still_serving(stack)


def test_headers_over_64_kib_together_are_431(stack: Heads) -> None:
    lines = [f"X-Part-{i}: " + "p" * (8 * KIB) for i in range(9)]  # each line fine, 72 KiB together
    raw = exchange(stack.gateway.port, head("/proxy-api/rec/origin/x", "Host: x", *lines))
    assert_refused(raw, 431, "request_header_fields_too_large")
    assert stack.upstream_requests == 0


def test_more_than_100_header_lines_is_431(stack: Heads) -> None:
    lines = [f"X-H{i}: v" for i in range(2000)]
    raw = exchange(
        stack.gateway.port,
        head("/api/llm/chat/completions", "Host: x", f"Authorization: Bearer {stack.token}", *lines, method="POST"),
    )
    assert_refused(raw, 431, "too_many_headers")
    assert stack.upstream_requests == 0
    assert_still_serving(stack)


def test_exactly_100_header_lines_are_served(stack: Heads) -> None:
    lines = ["Host: x", f"Authorization: Bearer {stack.token}", "Connection: close"]
    lines += [f"X-H{i}: v" for i in range(100 - len(lines))]
    raw = exchange(stack.gateway.port, head("/proxy-api/rec/origin/hundred", *lines))
    assert parse(raw).status == 200
    assert stack.rec.last().header("x-h96") == "v"


def test_unterminated_header_line_is_cut_at_the_limit(stack: Heads) -> None:
    """No line end ever comes: the gateway answers once the head passes its limit, without waiting for more."""
    with socket.create_connection(("127.0.0.1", stack.gateway.port), timeout=10) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Endless: ")
        sent = 0
        sock.settimeout(0.05)
        answer = b""
        while not answer and sent < 8 * 1024 * KIB:  # far past the limit: old servers buffered 124 MiB
            try:
                sock.sendall(b"e" * (16 * KIB))
                sent += 16 * KIB
                answer = sock.recv(65536, socket.MSG_PEEK)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
        sock.settimeout(10)
        raw = read_to_close(sock)
    assert_refused(raw, 431, "request_header_fields_too_large")
    assert sent < 4 * 1024 * KIB  # answered within a few socket buffers of the 72 KiB limit


def test_memory_stays_flat_under_200_oversized_and_unterminated_heads(stack: Heads) -> None:
    port = stack.gateway.port
    assert stack.gateway.process is not None
    pid = stack.gateway.process.pid

    def unterminated() -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Endless: ")
            try:
                for _ in range(64):  # up to 4 MiB, no line end
                    sock.sendall(b"u" * (64 * KIB))
            except (BrokenPipeError, ConnectionResetError):
                pass
            return read_to_close(sock)

    floods = [
        lambda: exchange(port, head("/health", "Host: x", "X-Big: " + "b" * (1024 * KIB))),
        lambda: exchange(port, head("/health", "Host: x", *[f"X-H{i}: v" for i in range(2000)])),
        lambda: exchange(port, head("/" + "a" * (16 * KIB), "Host: x")),
        unterminated,
    ]
    for flood in floods * 3:  # warm-up: allocator pools and code paths exist before the baseline
        flood()
    time.sleep(2.5)  # lingering closes end
    before = rss_bytes(pid)
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda i: floods[i % len(floods)](), range(200)))
    time.sleep(2.5)
    after = rss_bytes(pid)
    print(f"RSS before {before / 2**20:.1f} MiB, after {after / 2**20:.1f} MiB")
    statuses = [parse(raw).status for raw in answers]
    assert sorted(set(statuses)) == [414, 431]
    assert after - before < 10 * 1024 * KIB, f"RSS grew by {(after - before) / 1024 / 1024:.1f} MiB"
    assert stack.upstream_requests == 0
    assert_still_serving(stack)


# -- one Host --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "target", "body"),
    [
        ("POST", "/api/llm/chat/completions", CHAT_BODY),
        ("POST", "/api/llm/messages", MESSAGES_BODY),
        ("POST", "/proxy-api/rec/origin/v1/anything", b"{}"),
        ("GET", "/api/llm/models", b""),
        ("GET", "/health", b""),
    ],
    ids=["chat", "messages", "proxy", "models", "health"],
)
def test_two_host_lines_are_400_on_every_route(stack: Heads, method: str, target: str, body: bytes) -> None:
    request = (
        head(
            target,
            "Host: 127.0.0.1",
            "Host: evil.example",
            f"Authorization: Bearer {stack.token}",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            method=method,
        )
        + body
    )
    raw = exchange(stack.gateway.port, request)
    assert_refused(raw, 400, "duplicate_host_header")
    assert stack.upstream_requests == 0


def test_two_host_lines_with_different_case_are_400(stack: Heads) -> None:
    raw = exchange(
        stack.gateway.port,
        head("/proxy-api/rec/origin/x", "Host: a", "HOST: b", f"Authorization: Bearer {stack.token}"),
    )
    assert_refused(raw, 400, "duplicate_host_header")
    assert stack.rec.count == 0


def test_pipelined_refusal_comes_after_the_answer_before_it(stack: Heads) -> None:
    """Keep-alive pipelining: the first request is answered in full, then the refusal, then the close."""
    first = head("/proxy-api/rec/origin/first", "Host: x", f"Authorization: Bearer {stack.token}")
    second = head("/proxy-api/rec/origin/second", "Host: x", "Host: y", f"Authorization: Bearer {stack.token}")
    raw = exchange(stack.gateway.port, first + second)
    answer = parse(raw)
    assert answer.status == 200
    assert orjson.loads(answer.body)["target"] == "/first"
    assert_refused(answer.rest, 400, "duplicate_host_header")
    assert [seen.path for seen in stack.rec.seen] == ["/first"]


# -- configuration ---------------------------------------------------------------------------------


def test_pipelined_head_over_64_kib_is_431(stack: Heads) -> None:
    """A head that begins in the same read as the end of the request before it is still measured."""
    first = head("/proxy-api/rec/origin/first", "Host: x", f"Authorization: Bearer {stack.token}")
    lines = [f"X-Part-{i}: " + "p" * (6 * KIB) for i in range(11)]  # 66 KiB together, inside the head budget
    second = head("/proxy-api/rec/origin/second", "Host: x", f"Authorization: Bearer {stack.token}", *lines)
    answer = parse(exchange(stack.gateway.port, first + second))
    assert answer.status == 200
    assert_refused(answer.rest, 431, "request_header_fields_too_large")
    assert [seen.path for seen in stack.rec.seen] == ["/first"]


def small_limits_gateway(
    root: Path, openai: OpenAIMock, rec: RecordingUpstream, *, flags: list[str], env: dict[str, str] | None = None
) -> GatewayProcess:
    gateway = GatewayProcess(root, render(CONFIG, port=openai.port, rec_url=rec.url), env=env)
    gateway.serve_args = flags
    return gateway.start()


def assert_small_limits(gateway: GatewayProcess) -> None:
    """The limits of 512 bytes of request line, 1 KiB of header lines and 5 header lines."""
    port = gateway.port
    assert parse(exchange(port, head("/health", "Host: x", "Connection: close"))).status == 200
    assert_refused(exchange(port, head("/" + "a" * 600, "Host: x")), 414, "request_line_too_long")
    assert_refused(
        exchange(port, head("/health", "Host: x", "X-A: " + "a" * 1100)), 431, "request_header_fields_too_large"
    )
    assert_refused(
        exchange(port, head("/health", "Host: x", *[f"X-{i}: v" for i in range(5)])), 431, "too_many_headers"
    )


def test_limits_are_configurable_with_flags(tmp_path: Path) -> None:
    with OpenAIMock(OPENAI_KEY).running() as openai, RecordingUpstream("rec").running() as rec:
        gateway = small_limits_gateway(
            tmp_path,
            openai,
            rec,
            flags=["--max-request-line-bytes", "512", "--max-header-bytes", "1024", "--max-headers", "5"],
        )
        try:
            assert_small_limits(gateway)
        finally:
            gateway.stop()


def test_limits_are_configurable_with_environment_variables(tmp_path: Path) -> None:
    with OpenAIMock(OPENAI_KEY).running() as openai, RecordingUpstream("rec").running() as rec:
        gateway = small_limits_gateway(
            tmp_path,
            openai,
            rec,
            flags=[],
            env={
                "RELAYGATE_MAX_REQUEST_LINE_BYTES": "512",
                "RELAYGATE_MAX_HEADER_BYTES": "1024",
                "RELAYGATE_MAX_HEADERS": "5",
            },
        )
        try:
            assert_small_limits(gateway)
        finally:
            gateway.stop()


def test_limits_hold_in_every_worker_process(tmp_path: Path) -> None:
    with OpenAIMock(OPENAI_KEY).running() as openai, RecordingUpstream("rec").running() as rec:
        gateway = small_limits_gateway(
            tmp_path,
            openai,
            rec,
            flags=[
                "--workers",
                "2",
                "--max-request-line-bytes",
                "512",
                "--max-header-bytes",
                "1024",
                "--max-headers",
                "5",
            ],
        )
        try:
            for _ in range(8):  # new connections land on either worker
                assert_small_limits(gateway)
            assert_refused(exchange(gateway.port, head("/health", "Host: a", "Host: b")), 400, "duplicate_host_header")
        finally:
            gateway.stop()
