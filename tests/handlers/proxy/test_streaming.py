"""Streams are relayed, not buffered: progressive answers arrive progressively, big bodies pass
through without the gateway's memory growing, compressed answers stay compressed."""

from __future__ import annotations

import gzip
import hashlib
import os
from collections.abc import Iterator

import orjson

from tests.handlers.proxy.conftest import ProxyStack, reset_peak_rss, rss_kib
from tests.upstreams.recording_upstream import GZIP_BODY, pattern_bytes

MIB = 1 << 20
RSS_GROWTH_LIMIT_KIB = 30 * 1024


def zero_pieces(total: int, piece: int = 256 * 1024) -> Iterator[bytes]:
    block = b"\x5a" * piece
    sent = 0
    while sent < total:
        size = min(piece, total - sent)
        yield block[:size]
        sent += size


def warm_up(proxy: ProxyStack) -> None:
    """One request of each kind first, so lazily built state is not counted as growth."""
    proxy.call("GET", "/proxy-api/rec/origin/download/1048576", keep_body=False)
    proxy.call("POST", "/proxy-api/rec/origin/upload", body=zero_pieces(2 * MIB))


def test_drip_arrives_progressively(proxy: ProxyStack) -> None:
    answer = proxy.call("GET", "/proxy-api/bin/httpbin/drip?duration=1.2&numbytes=4&delay=0&code=200", read_size=1)
    assert answer.status == 200
    assert answer.body == b"****"
    assert answer.first_byte_at < 0.6, answer.first_byte_at  # buffered, it would come at ~1.2 s
    assert answer.finished_at > 0.85, answer.finished_at


def test_sse_events_arrive_as_sent(proxy: ProxyStack) -> None:
    answer = proxy.call("GET", "/proxy-api/rec/origin/sse/3?interval=0.4", headers={"Accept": "text/event-stream"})
    assert answer.header("content-type") == "text/event-stream"
    assert answer.body == b"".join(f"id: {i}\ndata: event {i}\n\n".encode() for i in range(3))
    assert answer.first_byte_at < 0.4, answer.first_byte_at  # buffered, it would come at ~0.8 s
    assert answer.finished_at > 0.75, answer.finished_at


def test_gzip_answer_is_relayed_compressed_byte_for_byte(proxy: ProxyStack) -> None:
    answer = proxy.call("GET", "/proxy-api/rec/origin/gzip", headers={"Accept-Encoding": "gzip"})
    assert answer.header("content-encoding") == "gzip"
    assert answer.body == GZIP_BODY
    assert answer.header("content-length") == str(len(GZIP_BODY))


def test_httpbin_gzip_keeps_its_content_encoding(proxy: ProxyStack) -> None:
    answer = proxy.call("GET", "/proxy-api/bin/httpbin/gzip", headers={"Accept-Encoding": "gzip"})
    assert answer.header("content-encoding") == "gzip"
    assert answer.body[:2] == b"\x1f\x8b"
    assert int(answer.header("content-length") or 0) == len(answer.body)
    assert orjson.loads(gzip.decompress(answer.body))["gzipped"] is True


def test_large_upload_is_streamed_without_buffering(proxy: ProxyStack) -> None:
    warm_up(proxy)
    pid = os.getpid()  # the gateway (and client and upstream) serve from this process: buffering anywhere shows
    reset_peak_rss(pid)
    before = rss_kib(pid)
    size = 20 * MIB
    answer = proxy.call("POST", "/proxy-api/rec/origin/upload", body=zero_pieces(size))
    assert answer.status == 200
    assert answer.json()["body_size"] == size
    assert answer.json()["body_sha256"] == hashlib.sha256(b"\x5a" * size).hexdigest()
    assert rss_kib(pid, "VmHWM") - before < RSS_GROWTH_LIMIT_KIB


def test_large_body_with_content_length_goes_up_with_that_length(proxy: ProxyStack) -> None:
    body = bytes(range(256)) * (12 * 1024)  # 3 MiB: past the 1 MiB held for replay, so streamed
    answer = proxy.call("PUT", "/proxy-api/rec/origin/upload", body=body)
    assert answer.status == 200
    seen = proxy.rec.last()
    assert seen.header("content-length") == str(len(body))
    assert seen.header("transfer-encoding") is None
    assert seen.body_sha256 == hashlib.sha256(body).hexdigest()


def test_small_chunked_body_goes_up_with_its_length(proxy: ProxyStack) -> None:
    proxy.call("POST", "/proxy-api/rec/origin/upload", body=iter([b"abc", b"defg"]))
    seen = proxy.rec.last()
    assert seen.body == b"abcdefg"
    assert seen.header("content-length") == "7"


def test_large_download_is_streamed_without_buffering(proxy: ProxyStack) -> None:
    warm_up(proxy)
    pid = os.getpid()  # the gateway (and client and upstream) serve from this process: buffering anywhere shows
    reset_peak_rss(pid)
    before = rss_kib(pid)
    size = 50 * MIB
    answer = proxy.call("GET", f"/proxy-api/rec/origin/download/{size}", keep_body=False)
    grown = rss_kib(pid, "VmHWM") - before  # before the expected digest below builds 50 MiB itself
    assert answer.status == 200
    assert answer.size == size
    assert answer.sha256 == hashlib.sha256(pattern_bytes(size)).hexdigest()
    assert grown < RSS_GROWTH_LIMIT_KIB
