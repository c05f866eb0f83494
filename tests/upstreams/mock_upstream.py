"""`MockUpstream`: what the wire-faithful provider mocks share on top of `AiohttpServer`.

- The request log: every request is recorded in arrival order (`requests`, `requests_to(suffix)`,
  `last(suffix)`, `wait_for_request(predicate)`), under a lock, since handlers run on the server's loop
  and tests read from theirs.
- Counted one-off injections: a fault, delay or stream fault is a dataclass with a `remaining` count;
  `_take` hands out the first one that still has uses (and matches), counting one use down. `Fault` is
  the common HTTP error answer (for requests whose path ends with `path`, if given); `delay_next` and
  `chunk_delay` slow answers down.
- The request flow in `_handle`: `_record` the request, log it, wait out a queued delay, `_answer` it, and
  note the status it was answered with unless the answer already did.

A mock provides `_record` and `_answer` (and its own faults, error bodies and stream framing); `reset()`
clears the log and the delays, and a mock extends it to clear its own injections.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import orjson
from aiohttp import web

from tests.upstreams.aiohttp_server import AiohttpServer


class Recorded(Protocol):
    path: str
    status: int | None


class Countdown(Protocol):
    remaining: int


R = TypeVar("R", bound=Recorded)
C = TypeVar("C", bound=Countdown)


def json_or_none(body: bytes) -> Any:
    """The parsed JSON body; None when empty or not JSON (the mock then answers as the API does)."""
    if not body:
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


@dataclass
class Fault:
    """An error answer for the next `remaining` requests (whose path ends with `path`, if given)."""

    status: int
    body: bytes
    remaining: int = 1
    headers: dict[str, str] = field(default_factory=dict)
    path: str | None = None

    def matches(self, path: str) -> bool:
        return self.path is None or path.endswith(self.path)

    def response(self, headers: dict[str, str] | None = None) -> web.Response:
        """The answer: `body` as JSON with `headers` (the mock's own, e.g. a request id) and then the fault's."""
        return web.Response(
            status=self.status,
            body=self.body,
            content_type="application/json",
            headers={**(headers or {}), **self.headers},
        )


@dataclass
class Delay:
    seconds: float
    remaining: int = 1


class MockUpstream(AiohttpServer, Generic[R]):
    """A mock upstream on a free port of `host` that records its requests and takes counted injections."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self.chunk_delay = 0.0  # seconds between stream chunks
        self._lock = threading.Lock()
        self._requests: list[R] = []
        self._delays: list[Delay] = []
        self._ids = itertools.count(1)

    # -- recordings --------------------------------------------------------------------------------

    @property
    def requests(self) -> list[R]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, path_suffix: str) -> list[R]:
        return [r for r in self.requests if r.path.endswith(path_suffix)]

    def last(self, path_suffix: str = "") -> R:
        found = self.requests_to(path_suffix)
        if not found:
            raise AssertionError(
                f"the mock received no request to *{path_suffix}; got requests to {[r.path for r in self.requests]}"
            )
        return found[-1]

    def wait_for_request(self, predicate: Callable[[R], bool] | None = None, timeout: float = 5.0) -> R:
        """Block (sync tests, thread mode) until a recorded request matches."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for recorded in self.requests:
                if predicate is None or predicate(recorded):
                    return recorded
            time.sleep(0.01)
        raise AssertionError(f"no matching request within {timeout}s; got {self.requests}")

    # -- injections --------------------------------------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._delays.clear()
        self.chunk_delay = 0.0

    def delay_next(self, seconds: float, *, count: int = 1) -> None:
        """Wait `seconds` before answering the next `count` requests."""
        with self._lock:
            self._delays.append(Delay(seconds, count))

    def _take(self, items: list[C], match: Callable[[C], bool] | None = None) -> C | None:
        """The first injection in `items` with uses left (and matching), one use counted down; else None."""
        with self._lock:
            for item in items:
                if item.remaining > 0 and (match is None or match(item)):
                    item.remaining -= 1
                    return item
        return None

    # -- HTTP --------------------------------------------------------------------------------------

    async def _record(self, request: web.Request) -> R:
        raise NotImplementedError

    async def _answer(self, request: web.Request, recorded: R) -> web.StreamResponse:
        raise NotImplementedError

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        recorded = await self._record(request)
        with self._lock:
            self._requests.append(recorded)
        delay = self._take(self._delays)
        if delay is not None and delay.seconds:
            await asyncio.sleep(delay.seconds)
        response = await self._answer(request, recorded)
        if recorded.status is None:
            recorded.status = response.status
        return response
