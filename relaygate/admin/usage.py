"""Usage: `POST /usage/query` (viewers), its CSV export, and `POST /me/usage` (every user, own rows).

The planning, the choice between the rollups and a raw scan, and the top-N folding live in
`relaygate.observe.usage`; this module reads the request, scopes an ordinary user to their own subject
and teams, and runs the query on the log store in a worker thread (at most `MAX_CONCURRENT` at once
per process, so a burst of dashboard tabs cannot starve the log writer's connections).
"""

from __future__ import annotations

import asyncio
import csv
import io
import time
from typing import Any

import orjson

from relaygate.admin.operation import AdminRequest, Operation, param
from relaygate.admin.params import body_object, parse_time
from relaygate.errors import BadRequest, DatabaseError, ServiceUnavailable
from relaygate.http.responses import send_bytes
from relaygate.observe import usage
from relaygate.observe.store.base import UsageStore

MAX_CONCURRENT = 4
_SLOTS: dict[int, asyncio.Semaphore] = {}  # per event loop (one per worker process or test gateway)

_NUMBER_OR_NULL = {"type": ["number", "null"]}
_AGGREGATES = {name: _NUMBER_OR_NULL for name in usage.AGGREGATIONS}
_TIME = {"oneOf": [{"type": "number"}, {"type": "string"}]}
QUERY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "start": {**_TIME, "description": "unix seconds or ISO-8601 (default: end - 1 day)"},
        "end": {**_TIME, "description": "unix seconds or ISO-8601 (default: now)"},
        "type": {"type": "string", "enum": ["timeseries", "distribution"]},
        "interval": {"type": "string", "enum": list(usage.INTERVALS)},
        "group_by": {
            "type": "array",
            "maxItems": 4,
            "items": {"type": "string", "description": f"{', '.join(usage.DIMENSIONS)} or metadata.<key>"},
        },
        "aggregations": {"type": "array", "items": {"type": "string", "enum": list(usage.AGGREGATIONS)}},
        "filters": {
            "type": "array",
            "maxItems": usage.MAX_FILTERS,
            "items": {
                "type": "object",
                "required": ["field"],
                "properties": {
                    "field": {"type": "string"},
                    "op": {"type": "string", "enum": list(usage.OPS)},
                    "value": {},
                },
            },
        },
        "limit": {"type": "integer", "minimum": 1, "maximum": usage.MAX_LIMIT},
    },
}
ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["points", "other", "source", "totals"],
    "properties": {
        "type": {"type": "string", "enum": ["timeseries", "distribution"]},
        "interval": {"type": "string"},
        "start": {"type": "number"},
        "end": {"type": "number"},
        "source": {"type": "string", "enum": ["rollup_1m", "rollup_1h", "raw"]},
        "capped": {"type": "boolean", "description": "a raw scan read only the last 7 days of the range"},
        "group_by": {"type": "array", "items": {"type": "string"}},
        "aggregations": {"type": "array", "items": {"type": "string"}},
        "points": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "ts": {"type": "number"},
                    "group": {"type": "object", "additionalProperties": {"type": ["string", "null"]}},
                    **_AGGREGATES,
                },
            },
        },
        "other": {
            "type": ["object", "null"],
            "description": "every group beyond `limit`, summed (timeseries: also per point)",
        },
        "totals": {"type": "object", "properties": _AGGREGATES},
    },
}
CSV_PARAMETERS = (
    param("start", "unix seconds or ISO-8601 (default: end - 1 day)"),
    param("end", "unix seconds or ISO-8601 (default: now)"),
    param("type", "timeseries or distribution", {"type": "string", "enum": ["timeseries", "distribution"]}),
    param("interval", "point width", {"type": "string", "enum": list(usage.INTERVALS)}),
    param("group_by", "dimensions, comma-separated"),
    param("aggregations", "aggregations, comma-separated"),
    param("filters", "JSON list of {field, op, value}, as in POST /usage/query"),
    param("limit", "groups kept (the rest is one `other` row)", {"type": "integer", "minimum": 1, "maximum": 1000}),
)


def _slots() -> asyncio.Semaphore:
    loop = id(asyncio.get_running_loop())
    slots = _SLOTS.get(loop)
    if slots is None:
        slots = _SLOTS[loop] = asyncio.Semaphore(MAX_CONCURRENT)
    return slots


def _with_times(body: dict[str, Any]) -> dict[str, Any]:
    out = dict(body)
    for name in ("start", "end"):
        value = out.get(name)
        if value is not None and value != "":
            out[name] = parse_time(value, name)
    return out


async def run_query(request: AdminRequest, body: dict[str, Any], scope: usage.Scope | None) -> dict[str, Any]:
    gateway = request.call.gateway
    plan = usage.plan_usage(
        _with_times(body),
        now=time.time(),
        rolled_metadata=gateway.snapshot.observability.metadata_labels,
        minute_retention_days=gateway.settings.rollup_1m_retention_days or float("inf"),
        scope=scope,
    )
    store = gateway.log_store
    if not isinstance(store, UsageStore):
        raise ServiceUnavailable("this gateway's log store keeps no usage rollups")
    async with _slots():
        try:
            return await asyncio.to_thread(store.usage_query, plan)
        except DatabaseError as exc:
            raise ServiceUnavailable(f"the usage query failed: {exc}") from None


def _scope(request: AdminRequest) -> usage.Scope:
    identity = request.caller
    return usage.Scope(identity.subject, identity.teams)


async def query(request: AdminRequest) -> dict[str, Any]:
    return await run_query(request, body_object(request.body if request.body is not None else {}), None)


async def my_usage(request: AdminRequest) -> dict[str, Any]:
    """The caller's own usage: rows of their subject or of one of their teams, whatever the filters say."""
    return await run_query(request, body_object(request.body if request.body is not None else {}), _scope(request))


def _csv_body(request: AdminRequest) -> dict[str, Any]:
    q = request.query
    body: dict[str, Any] = {
        "start": q.text("start"),
        "end": q.text("end"),
        "type": q.text("type"),
        "interval": q.text("interval"),
        "group_by": q.text("group_by", max_length=2048),
        "aggregations": q.text("aggregations", max_length=2048),
        "limit": q.integer("limit", default=50, low=1, high=usage.MAX_LIMIT),
    }
    filters = q.text("filters", max_length=16_384)
    if filters is not None:
        try:
            body["filters"] = orjson.loads(filters)
        except orjson.JSONDecodeError:
            raise BadRequest("filters must be a JSON list", param="filters", code="invalid_parameter") from None
    return body


def _cell(value: Any) -> Any:
    """Spreadsheets run cells that start with = + - @ as formulas: such text is quoted with '."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def answer_csv(answer: dict[str, Any]) -> bytes:
    """One row per point (ts, group dimensions, aggregations), then the folded `other` rows."""
    timeseries = answer["type"] == "timeseries"
    dims: list[str] = answer["group_by"]
    aggs: list[str] = answer["aggregations"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*(["ts"] if timeseries else []), *dims, *aggs])
    for point in answer["points"]:
        ts = [point["ts"]] if timeseries else []
        writer.writerow([*ts, *(_cell(point["group"].get(d)) for d in dims), *(_cell(point.get(a)) for a in aggs)])
    other = answer["other"]
    if other is not None:
        label = ["(other)"] * len(dims)
        for point in other.get("points", [other]) if timeseries else [other]:
            ts = [point["ts"]] if timeseries else []
            writer.writerow([*ts, *label, *(_cell(point.get(a)) for a in aggs)])
    return out.getvalue().encode("utf-8")


async def export_csv(request: AdminRequest) -> None:
    answer = await run_query(request, _csv_body(request), None)
    call = request.call
    call.ctx.status = 200
    headers = [
        (b"cache-control", b"no-store"),
        (b"content-disposition", b'attachment; filename="usage.csv"'),
        (b"x-relaygate-usage-source", answer["source"].encode()),
        *call.base_headers,
    ]
    await send_bytes(call.send, 200, answer_csv(answer), b"text/csv; charset=utf-8", headers)
    return None


OPERATIONS = (
    Operation(
        "POST",
        "/usage/query",
        query,
        "viewer",
        "Usage over time or by dimension (requests, errors, tokens, cost, latency and TTFT percentiles), "
        "top-N groups with the rest folded into `other`; answered from the rollups when they cover the query",
        "usage",
        request=QUERY_SCHEMA,
        response=ANSWER_SCHEMA,
    ),
    Operation(
        "GET",
        "/usage/export.csv",
        export_csv,
        "viewer",
        "The usage query as CSV (the same parameters, in the query string)",
        "usage",
        parameters=CSV_PARAMETERS,
        response={"type": "string"},
        response_type="text/csv",
    ),
    Operation(
        "POST",
        "/me/usage",
        my_usage,
        "user",
        "The caller's own usage (their subject's and their teams' rows), as POST /usage/query",
        "usage",
        request=QUERY_SCHEMA,
        response=ANSWER_SCHEMA,
    ),
)
