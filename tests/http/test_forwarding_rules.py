"""Forwarding rules that need no server: header filtering both ways."""

from relaygate.http.forwarding import request_headers, response_headers


def test_response_headers_named_by_connection_are_dropped_whatever_their_case() -> None:
    raw = ((b"Content-Type", b"text/plain"), (b"Connection", b"keep-alive, X-Hop"), (b"X-Hop", b"1"), (b"X-Kept", b"2"))
    assert response_headers(raw) == [(b"content-type", b"text/plain"), (b"x-kept", b"2")]


def test_request_headers_named_by_connection_are_dropped() -> None:
    headers = [(b"connection", b"x-hop"), (b"x-hop", b"1"), (b"x-kept", b"2")]
    assert request_headers(headers, None, (), frozenset()) == [("x-kept", "2")]
