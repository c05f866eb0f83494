"""Request logs: cursor pages (`GET /logs`, `GET /me/logs`), one row with bodies (`GET /logs/detail`)
and the live tail over server-sent events (`GET /logs/stream`).

Lists never carry bodies (a page of raw bodies is what hangs other dashboards); admins read them one
row at a time. Ordinary users see only rows whose subject is theirs or whose team is one of theirs,
enforced here in the query, whichever path they call. Pages go by an opaque `(time, id)` cursor,
never an offset, so page 1000 costs what page 1 does.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

import orjson

from relaygate.admin.operation import Operation, param
from relaygate.errors import BadRequest, NotFound, ServiceUnavailable
from relaygate.observe.record import subject_candidates
from relaygate.observe.store.search import (
    CACHE_STATUSES,
    GUARDRAIL_RESULTS,
    STATUS_CLASSES,
    LogFilter,
    Owner,
    PageCursor,
    decode_cursor,
    encode_cursor,
    record_row,
)

if TYPE_CHECKING:
    from relaygate.admin.identity import Identity
    from relaygate.admin.operation import AdminRequest
    from relaygate.observe.tail import Subscriber

DEFAULT_WINDOW = 3600.0  # seconds before `end` when no `start` is given
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
HEARTBEAT_SECONDS = 15.0
MAX_INTEGER = 2**62  # integer filters beyond any real count (and within every database's integers)
_NO_MATCH = "\x00no-subject"  # a subject no row has (the user and virtual_account filters disagree)


def owner_of(identity: Identity, *, own_only: bool = False) -> Owner | None:
    """None for admins and viewers (every row), else the caller's own rows and their teams'."""
    if identity.may_view and not own_only:
        return None
    return Owner(identity.subject, identity.teams)


def token_id_of(text: str) -> str:
    """`rg-<id>` as the log stores it, from an id with or without `rg-` (or a whole token: id only)."""
    bare = text[3:] if text.startswith("rg-") else text
    return "rg-" + bare[:12]


def _subjects(user: str | None, virtual_account: str | None) -> tuple[str, ...]:
    subjects: set[str] | None = None
    if user:
        subjects = set(subject_candidates(user))
    if virtual_account:
        accounts = {f"virtualaccount:{virtual_account}"}
        subjects = accounts if subjects is None else subjects & accounts
    if subjects is None:
        return ()
    return tuple(sorted(subjects)) or (_NO_MATCH,)


def log_filter(
    request: AdminRequest, *, own_only: bool = False, live: bool = False, cursor: PageCursor | None = None
) -> LogFilter:
    """The filters of the query string (400 naming a bad one); `live`: no default time window; a
    `cursor` keeps the default window of the listing's first page."""
    q = request.query
    for name, values in q.values.items():
        if any("\x00" in v for v in values) or "\x00" in name:
            raise BadRequest(f"{name[:40]!r} contains a NUL character", param=name[:40], code="invalid_parameter")
    start, end = q.time("start"), q.time("end")
    if not live:
        end = end if end is not None else time.time()
        if start is None:
            start = cursor.start if cursor is not None and cursor.start is not None else end - DEFAULT_WINDOW
    if start is not None and end is not None and start > end:
        raise BadRequest("start must not be after end", param="start", code="invalid_parameter")
    status_class = q.text("status_class")
    if status_class is not None:
        status_class = status_class.lower()
        if status_class not in STATUS_CLASSES:
            raise BadRequest(
                f"status_class must be one of {', '.join(STATUS_CLASSES)}",
                param="status_class",
                code="invalid_parameter",
            )
    cache = _one_of(request, "cache", CACHE_STATUSES)
    guardrail_result = _one_of(request, "guardrail_result", GUARDRAIL_RESULTS)
    token = q.text("token_id")
    min_tokens = q.integer("min_tokens", low=0, high=MAX_INTEGER)
    max_tokens = q.integer("max_tokens", low=0, high=MAX_INTEGER)
    metadata = q.prefixed("metadata.")
    if len(metadata) > 20:
        raise BadRequest("at most 20 metadata filters", param="metadata", code="invalid_parameter")
    return LogFilter(
        start=start,
        end=end,
        model=q.text("model"),
        provider=q.text("provider"),
        subjects=_subjects(q.text("user"), q.text("virtual_account")),
        team=q.text("team"),
        token_id=token_id_of(token) if token else None,
        status=q.integer("status", low=100, high=599),
        status_class=status_class,
        error_type=q.text("error_type"),
        streaming=q.boolean("streaming"),
        metadata=metadata,
        min_latency_ms=q.number("min_latency_ms"),
        max_latency_ms=q.number("max_latency_ms"),
        min_cost=q.number("min_cost"),
        max_cost=q.number("max_cost"),
        min_tokens=min_tokens,
        max_tokens=max_tokens,
        request_id=q.text("request_id"),
        trace_id=q.text("trace_id"),
        cache=cache,
        guardrail_result=guardrail_result,
        owner=owner_of(request.caller, own_only=own_only),
    )


def _one_of(request: AdminRequest, name: str, allowed: tuple[str, ...]) -> str | None:
    """A query parameter that must be one of `allowed` (lower-cased), or None when absent."""
    value = request.query.text(name)
    if value is None:
        return None
    value = value.lower()
    if value not in allowed:
        raise BadRequest(f"{name} must be one of {', '.join(allowed)}", param=name, code="invalid_parameter")
    return value


def present(row: dict[str, Any]) -> dict[str, Any]:
    """A stored or live row as the API shows it: names beside ids, no store id."""
    out = {k: v for k, v in row.items() if k != "id"}
    subject = row.get("subject") or ""
    kind, _, name = subject.partition(":")
    out["user"] = name if kind == "user" else None
    out["virtual_account"] = name if kind == "virtualaccount" else None
    return out


async def list_logs(request: AdminRequest, *, own_only: bool = False) -> dict[str, Any]:
    limit = request.query.integer("limit", default=DEFAULT_LIMIT, low=1, high=MAX_LIMIT)
    assert limit is not None
    cursor = None
    raw_cursor = request.query.text("cursor", max_length=200)
    if raw_cursor is not None:
        cursor = decode_cursor(raw_cursor)
        if cursor is None:
            raise BadRequest("cursor is not one this API gave out", param="cursor", code="invalid_parameter")
    flt = log_filter(request, own_only=own_only, cursor=cursor)
    store = request.call.gateway.log_store
    rows = await asyncio.to_thread(store.search, flt, None if cursor is None else cursor.key, limit + 1)
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        keep_start = None if request.query.text("start") else flt.start
        next_cursor = encode_cursor(PageCursor(float(rows[-1]["time"]), int(rows[-1]["id"]), keep_start))
    return {"data": [present(row) for row in rows], "next_cursor": next_cursor}


async def logs(request: AdminRequest) -> dict[str, Any]:
    return await list_logs(request)


async def my_logs(request: AdminRequest) -> dict[str, Any]:
    return await list_logs(request, own_only=True)


async def detail(request: AdminRequest) -> dict[str, Any]:
    """One row; its bodies for admins only; ordinary users their own rows (404 for anyone else's)."""
    request_id = request.query.text("request_id")
    if request_id is None:
        raise BadRequest("request_id is required", param="request_id", code="missing_parameter")
    identity = request.caller
    store = request.call.gateway.log_store
    row = await asyncio.to_thread(store.find, request_id, owner_of(identity), bodies=identity.is_admin)
    if row is None:
        raise NotFound("no logged request with that id (within the rows you may read)", code="not_found")
    return {"data": present(row)}


async def stream(request: AdminRequest) -> None:
    """Server-sent events: `log` (a row, never bodies) and `dropped` ({"count"}), at most 5 events a
    second; a comment every 15 s keeps proxies from timing the stream out."""
    flt = log_filter(request, live=True)
    call = request.call
    tail = call.gateway.tail
    subscriber = tail.subscribe(flt)
    if subscriber is None:
        raise ServiceUnavailable("the live tail is not available (gateway stopping or too many tails)")
    watcher = asyncio.ensure_future(_watch_disconnect(request, subscriber))
    try:
        await call.send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-store"),
                    (b"x-accel-buffering", b"no"),
                    *call.base_headers,
                ],
            }
        )
        call.ctx.status = 200
        if call.scope["method"] == "HEAD":
            await call.send({"type": "http.response.body", "body": b""})
            return
        await _send(request, b": relaygate live tail\nretry: 3000\n\n")
        await _pump(request, subscriber)
        await call.send({"type": "http.response.body", "body": b""})
    finally:
        tail.unsubscribe(subscriber)
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await watcher


async def _pump(request: AdminRequest, subscriber: Subscriber) -> None:
    """Send what the subscriber admitted, one event at a time within the rate, until it closes."""
    last_sent = time.monotonic()
    while not subscriber.closed:
        wait = HEARTBEAT_SECONDS - (time.monotonic() - last_sent)
        if subscriber.dropped:
            wait = min(wait, subscriber.seconds_to_room() + 0.01)
        await subscriber.wait(max(wait, 0.0))
        while subscriber.queue and not subscriber.closed:
            await subscriber.pause(subscriber.send_delay())
            if subscriber.closed:
                return
            row = present(record_row(subscriber.queue.popleft()))
            data = orjson.dumps(row, default=str, option=orjson.OPT_NON_STR_KEYS)
            await _event(request, subscriber, b"event: log\ndata: " + data + b"\n\n")
            last_sent = time.monotonic()
        if subscriber.closed:
            return
        if subscriber.dropped and subscriber.send_delay() == 0:
            count = subscriber.take_drop_report()
            if count:
                data = orjson.dumps({"count": count})
                await _event(request, subscriber, b"event: dropped\ndata: " + data + b"\n\n")
                last_sent = time.monotonic()
        if time.monotonic() - last_sent >= HEARTBEAT_SECONDS:
            await _send(request, b": heartbeat\n\n")
            last_sent = time.monotonic()


async def _event(request: AdminRequest, subscriber: Subscriber, chunk: bytes) -> None:
    subscriber.sent()
    await _send(request, chunk)


async def _send(request: AdminRequest, body: bytes) -> None:
    await request.call.send({"type": "http.response.body", "body": body, "more_body": True})


async def _watch_disconnect(request: AdminRequest, subscriber: Subscriber) -> None:
    """The client went away: end the stream."""
    while True:
        message = await request.call.receive()
        if message["type"] == "http.disconnect":
            subscriber.close()
            return


_ROW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["request_id", "time", "status"],
    "properties": {
        "request_id": {"type": "string"},
        "time": {"type": "number"},
        "method": {"type": "string"},
        "path": {"type": "string"},
        "subject": {"type": ["string", "null"]},
        "user": {"type": ["string", "null"]},
        "virtual_account": {"type": ["string", "null"]},
        "team": {"type": ["string", "null"]},
        "token_id": {"type": ["string", "null"]},
        "requested_model": {"type": ["string", "null"]},
        "resolved_model": {"type": ["string", "null"]},
        "provider": {"type": ["string", "null"]},
        "model_type": {"type": ["string", "null"]},
        "status": {"type": "integer"},
        "streaming": {"type": "boolean"},
        "input_tokens": {"type": ["integer", "null"]},
        "output_tokens": {"type": ["integer", "null"]},
        "cost_usd": {"type": ["number", "null"]},
        "cost_unknown": {"type": "boolean"},
        "latency_ms": {"type": ["number", "null"]},
        "ttft_ms": {"type": ["number", "null"]},
        "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
        "error_type": {"type": ["string", "null"]},
        "error_message": {"type": ["string", "null"]},
        "truncated": {"type": "boolean"},
        "extra": {"type": "object"},
        "trace_id": {"type": ["string", "null"]},
        "has_bodies": {"type": "boolean"},
    },
}
_DETAIL_SCHEMA: dict[str, Any] = {
    **_ROW_SCHEMA,
    "properties": {
        **_ROW_SCHEMA["properties"],
        "request_body": {"type": ["string", "null"], "description": "admins only"},
        "response_body": {"type": ["string", "null"], "description": "admins only"},
    },
}
_FILTERS: tuple[dict[str, Any], ...] = (
    param("start", "From (unix seconds or ISO-8601); default one hour before `end`"),
    param("end", "Until (unix seconds or ISO-8601); default now"),
    param("model", "Requested or resolved model"),
    param("provider", "Provider kind (openai, mock, ...)"),
    param("user", "A user's email (or a full subject)"),
    param("team", "The caller's team as logged"),
    param("virtual_account", "A virtual account's name"),
    param("token_id", "A token id (rg-...)"),
    param("status", "HTTP status", {"type": "integer", "minimum": 100, "maximum": 599}),
    param("status_class", "Status class", {"type": "string", "enum": list(STATUS_CLASSES)}),
    param("error_type", "Error type (rate_limited, upstream_error, ...)"),
    param("streaming", "Streamed answers only (true) or none (false)", {"type": "boolean"}),
    param("metadata.<key>", "Rows whose x-tfy-metadata has this key with this value (repeatable)"),
    param("min_latency_ms", "Latency at least", {"type": "number"}),
    param("max_latency_ms", "Latency at most", {"type": "number"}),
    param("min_cost", "Cost (USD) at least", {"type": "number"}),
    param("max_cost", "Cost (USD) at most", {"type": "number"}),
    param("min_tokens", "Input + output tokens at least", {"type": "integer", "minimum": 0}),
    param("max_tokens", "Input + output tokens at most", {"type": "integer", "minimum": 0}),
    param("request_id", "One request's id"),
    param("trace_id", "W3C trace id"),
    param(
        "cache",
        "Rows whose response-cache status (extra.cache.status) is this",
        {"type": "string", "enum": list(CACHE_STATUSES)},
    ),
    param(
        "guardrail_result",
        "Rows where any guardrail verdict (extra.guardrails[].result) is this",
        {"type": "string", "enum": list(GUARDRAIL_RESULTS)},
    ),
)
_PAGE = (
    param("cursor", "`next_cursor` of the previous page"),
    param("limit", "Rows per page (default 50)", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}),
)
_PAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["data", "next_cursor"],
    "properties": {"data": {"type": "array", "items": _ROW_SCHEMA}, "next_cursor": {"type": ["string", "null"]}},
}

OPERATIONS = (
    Operation(
        "GET",
        "/logs",
        logs,
        "user",
        "Request log rows, newest first, by cursor; never bodies (ordinary users: their own and their teams' rows)",
        "logs",
        parameters=(*_FILTERS, *_PAGE),
        response=_PAGE_SCHEMA,
    ),
    Operation(
        "GET",
        "/logs/detail",
        detail,
        "user",
        "One request's row; with its bodies for admins (ordinary users: their own rows only)",
        "logs",
        parameters=(param("request_id", "The request id", required=True),),
        response={"type": "object", "required": ["data"], "properties": {"data": _DETAIL_SCHEMA}},
    ),
    Operation(
        "GET",
        "/logs/stream",
        stream,
        "user",
        "Live tail (server-sent events `log` and `dropped`), with the same filters; at most 5 events a second",
        "logs",
        parameters=tuple(p for p in _FILTERS if p["name"] not in ("start", "end")),
        response={"type": "string"},
        response_type="text/event-stream",
    ),
    Operation(
        "GET",
        "/me/logs",
        my_logs,
        "user",
        "The caller's own request log rows (and their teams'), with the filters of GET /logs",
        "logs",
        parameters=(*_FILTERS, *_PAGE),
        response=_PAGE_SCHEMA,
    ),
)
