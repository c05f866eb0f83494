"""Searching the request log for the admin API: one `LogFilter`, used three ways.

- `search_sql` turns it into parameterised SQL for either store (SQLite `?`, PostgreSQL `%s`): rows
  newest first, paged by a `(time, id)` cursor (never an offset), bodies never selected;
- `find_sql` reads one row by request id, with its bodies only when asked;
- `LogFilter.matches` applies the same filter to a `LogRecord` in memory, for the live tail.

Caller text only ever travels as a parameter; the SQL around it is built from constants. The indexes
below keep the first page of the common filters an index range scan at 10 M rows (`(time, id)` for
the unfiltered page, `(subject, time)` and `(team, time)` for a user's own rows).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeGuard

import orjson

from relaygate.observe.record import LogRecord
from relaygate.observe.store.base import BODY_COLUMNS, BOOL_COLUMNS, COLUMNS, JSON_COLUMNS, decode_body

Dialect = Literal["sqlite", "postgres"]
STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
CACHE_STATUSES = ("hit", "miss", "error", "bypass")  # extra.cache.status
GUARDRAIL_RESULTS = ("pass", "mutate", "flag", "block", "error", "skipped")  # extra.guardrails[].result

# Every column but the bodies; `has_bodies` says whether the detail view would show any.
LIST_COLUMNS: tuple[str, ...] = tuple(c for c in COLUMNS if c not in BODY_COLUMNS)
_QUOTED_LIST = ", ".join(f'"{c}"' for c in LIST_COLUMNS)
_SELECT_LIST = f"SELECT id, {_QUOTED_LIST}, (request_body IS NOT NULL OR response_body IS NOT NULL) FROM request_logs"
_SELECT_FULL = (
    f"SELECT id, {_QUOTED_LIST}, (request_body IS NOT NULL OR response_body IS NOT NULL), "
    "request_body, response_body FROM request_logs"
)

# Created on open by the SQLite store (IF NOT EXISTS: cheap when present); PostgreSQL gets them from
# migration 0007. SQLite's index on (time) already ends in the rowid, which is `id`.
SQLITE_SEARCH_INDEXES = (
    "CREATE INDEX IF NOT EXISTS request_logs_subject_time ON request_logs (subject, time)",
    "CREATE INDEX IF NOT EXISTS request_logs_team_time ON request_logs (team, time)",
    "CREATE INDEX IF NOT EXISTS request_logs_token_time ON request_logs (token_id, time)",
    "CREATE INDEX IF NOT EXISTS request_logs_request_id ON request_logs (request_id)",
)


@dataclass(frozen=True, slots=True)
class Owner:
    """An ordinary user's view: rows whose subject is theirs or whose team is one of their teams."""

    subject: str
    teams: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LogFilter:
    """Every condition of `GET /logs`; all given ones must hold. `start`/`end` bound `time` (unix s)."""

    start: float | None = None
    end: float | None = None
    model: str | None = None  # requested or resolved
    provider: str | None = None
    subjects: tuple[str, ...] = ()  # the `user` filter: any of these subjects (see base.subject_candidates)
    team: str | None = None
    token_id: str | None = None  # as logged: "rg-<id>"
    status: int | None = None
    status_class: str | None = None  # "2xx" ...
    error_type: str | None = None
    streaming: bool | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    min_latency_ms: float | None = None
    max_latency_ms: float | None = None
    min_cost: float | None = None
    max_cost: float | None = None
    min_tokens: int | None = None  # input + output
    max_tokens: int | None = None
    request_id: str | None = None
    trace_id: str | None = None
    cache: str | None = None  # extra.cache.status (one of CACHE_STATUSES)
    guardrail_result: str | None = None  # any verdict in extra.guardrails with this result
    owner: Owner | None = None  # None: every row (admins and viewers)

    def matches(self, record: LogRecord) -> bool:
        """The same conditions as the SQL, on one record in memory (the live tail)."""
        if self.start is not None and record.time < self.start:
            return False
        if self.end is not None and record.time > self.end:
            return False
        if self.model is not None and self.model not in (record.requested_model, record.resolved_model):
            return False
        if self.provider is not None and record.provider != self.provider:
            return False
        if self.subjects and record.subject not in self.subjects:
            return False
        if self.team is not None and record.team != self.team:
            return False
        if self.token_id is not None and record.token_id != self.token_id:
            return False
        if self.status is not None and record.status != self.status:
            return False
        if self.status_class is not None and record.status // 100 != int(self.status_class[0]):
            return False
        if self.error_type is not None and record.error_type != self.error_type:
            return False
        if self.streaming is not None and bool(record.streaming) != self.streaming:
            return False
        for key, value in self.metadata.items():
            if (record.metadata or {}).get(key) != value:
                return False
        if not _within(record.latency_ms, self.min_latency_ms, self.max_latency_ms):
            return False
        if not _within(record.cost_usd, self.min_cost, self.max_cost):
            return False
        if self.min_tokens is not None or self.max_tokens is not None:
            tokens = (record.input_tokens or 0) + (record.output_tokens or 0)
            if not _within(tokens, self.min_tokens, self.max_tokens):
                return False
        if self.request_id is not None and record.request_id != self.request_id:
            return False
        if self.trace_id is not None and (record.trace_id or "") != self.trace_id.lower():
            return False
        if (self.cache is not None or self.guardrail_result is not None) and not self._feature_match(record.extra):
            return False
        owner = self.owner
        return (
            owner is None or record.subject == owner.subject or (record.team is not None and record.team in owner.teams)
        )

    def _feature_match(self, extra: dict[str, Any] | None) -> bool:
        """The `cache` and `guardrail_result` conditions on a record's `extra` (as the SQL reads it)."""
        extra = extra or {}
        if self.cache is not None:
            cache = extra.get("cache")
            if not isinstance(cache, dict) or cache.get("status") != self.cache:
                return False
        if self.guardrail_result is not None:
            verdicts = extra.get("guardrails")
            if not isinstance(verdicts, list) or not any(
                isinstance(v, dict) and v.get("result") == self.guardrail_result for v in verdicts
            ):
                return False
        return True


def _within(value: float | None, low: float | None, high: float | None) -> bool:
    if low is None and high is None:
        return True
    if value is None:
        return False
    return (low is None or value >= low) and (high is None or value <= high)


def _where(flt: LogFilter, dialect: Dialect) -> tuple[list[str], list[Any]]:
    p = "?" if dialect == "sqlite" else "%s"
    where: list[str] = []
    params: list[Any] = []

    def add(clause: str, *values: Any) -> None:
        where.append(clause)
        params.extend(values)

    if flt.start is not None:
        add(f'"time" >= {p}', flt.start)
    if flt.end is not None:
        add(f'"time" <= {p}', flt.end)
    if flt.model is not None:
        add(f"(requested_model = {p} OR resolved_model = {p})", flt.model, flt.model)
    if flt.provider is not None:
        add(f"provider = {p}", flt.provider)
    if flt.subjects:
        add(f"subject IN ({', '.join(p for _ in flt.subjects)})", *flt.subjects)
    if flt.team is not None:
        add(f"team = {p}", flt.team)
    if flt.token_id is not None:
        add(f"token_id = {p}", flt.token_id)
    if flt.status is not None:
        add(f"status = {p}", flt.status)
    if flt.status_class is not None:
        low = int(flt.status_class[0]) * 100
        add(f"status >= {p} AND status < {p}", low, low + 100)
    if flt.error_type is not None:
        add(f"error_type = {p}", flt.error_type)
    if flt.streaming is not None:
        add(f"streaming = {p}", int(flt.streaming) if dialect == "sqlite" else flt.streaming)
    if flt.metadata:
        if dialect == "postgres":
            from psycopg.types.json import Jsonb  # only PostgreSQL processes load the driver

            add("metadata @> %s", Jsonb({str(k): str(v) for k, v in flt.metadata.items()}))
        else:
            for key, value in flt.metadata.items():
                add(
                    "EXISTS (SELECT 1 FROM json_each(request_logs.metadata) AS m WHERE m.key = ? AND m.value = ?)",
                    key,
                    value,
                )
    ranges: tuple[tuple[str, float | None, float | None], ...] = (
        ("latency_ms", flt.min_latency_ms, flt.max_latency_ms),
        ("cost_usd", flt.min_cost, flt.max_cost),
        ("(COALESCE(input_tokens, 0) + COALESCE(output_tokens, 0))", flt.min_tokens, flt.max_tokens),
    )
    for column, lowest, highest in ranges:
        if lowest is not None:
            add(f"{column} >= {p}", lowest)
        if highest is not None:
            add(f"{column} <= {p}", highest)
    if flt.request_id is not None:
        add(f"request_id = {p}", flt.request_id)
    if flt.trace_id is not None:
        add(f"trace_id = {p}", flt.trace_id.lower())
    _feature_clauses(flt, dialect, add)
    if flt.owner is not None:
        if flt.owner.teams:
            teams = ", ".join(p for _ in flt.owner.teams)
            add(f"(subject = {p} OR team IN ({teams}))", flt.owner.subject, *flt.owner.teams)
        else:
            add(f"subject = {p}", flt.owner.subject)
    return where, params


def _feature_clauses(flt: LogFilter, dialect: Dialect, add: Callable[..., None]) -> None:
    """`cache` and `guardrail_result`: conditions on the row's `extra`, evaluated on the rows the time
    range (and any indexed filter) already narrowed to, so they add no cost to queries without them.
    PostgreSQL: jsonb containment (`[{"result": "block"}]` is contained in any verdict list holding
    such an object); SQLite: json_extract, and json_each over the verdict list (the CASE keeps
    json_extract off anything but an object: it fails on a bare string)."""
    if dialect == "postgres" and (flt.cache is not None or flt.guardrail_result is not None):
        from psycopg.types.json import Jsonb  # only PostgreSQL processes load the driver

        if flt.cache is not None:
            add("extra @> %s", Jsonb({"cache": {"status": flt.cache}}))
        if flt.guardrail_result is not None:
            add("extra @> %s", Jsonb({"guardrails": [{"result": flt.guardrail_result}]}))
        return
    if flt.cache is not None:
        add("json_extract(extra, '$.cache.status') = ?", flt.cache)
    if flt.guardrail_result is not None:
        add(
            "EXISTS (SELECT 1 FROM json_each(request_logs.extra, '$.guardrails') AS g "
            "WHERE CASE WHEN g.type = 'object' THEN json_extract(g.value, '$.result') END = ?)",
            flt.guardrail_result,
        )


def search_sql(
    flt: LogFilter, cursor: tuple[float, int] | None, limit: int, dialect: Dialect, *, bodies: bool = False
) -> tuple[str, list[Any]]:
    """SQL and parameters for one page: newest first, strictly after `cursor` ((time, id) of the last
    row of the previous page), at most `limit` rows; bodies only when asked (the admin API never asks:
    `relaygate guardrails test` does, reading logged requests through candidate rules)."""
    p = "?" if dialect == "sqlite" else "%s"
    where, params = _where(flt, dialect)
    if cursor is not None:
        where.append(f'("time", id) < ({p}, {p})')
        params += [float(cursor[0]), int(cursor[1])]
    sql = _SELECT_FULL if bodies else _SELECT_LIST
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f' ORDER BY "time" DESC, id DESC LIMIT {p}'
    params.append(max(int(limit), 0))
    return sql, params


def find_sql(request_id: str, owner: Owner | None, *, bodies: bool, dialect: Dialect) -> tuple[str, list[Any]]:
    """The newest row with this request id (ids sent by callers may repeat), bodies only when asked."""
    where, params = _where(LogFilter(request_id=request_id, owner=owner), dialect)
    p = "?" if dialect == "sqlite" else "%s"
    sql = (_SELECT_FULL if bodies else _SELECT_LIST) + " WHERE " + " AND ".join(where)
    return sql + f' ORDER BY "time" DESC, id DESC LIMIT {p}', [*params, 1]


def decode_row(row: Sequence[Any]) -> dict[str, Any]:
    """A row of `search_sql`/`find_sql` as a dict: `id`, the list columns, `has_bodies`, and the
    bodies as text when they were selected."""
    out: dict[str, Any] = {"id": int(row[0])}
    for name, value in zip(LIST_COLUMNS, row[1 : 1 + len(LIST_COLUMNS)], strict=True):
        if name in BOOL_COLUMNS:
            out[name] = bool(value)
        elif name in JSON_COLUMNS:
            out[name] = (orjson.loads(value) if value else {}) if isinstance(value, str | bytes) else (value or {})
        else:
            out[name] = value
    rest = row[1 + len(LIST_COLUMNS) :]
    out["has_bodies"] = bool(rest[0])
    if len(rest) == 3:
        out["request_body"] = decode_body(rest[1])
        out["response_body"] = decode_body(rest[2])
    return out


def record_row(record: LogRecord) -> dict[str, Any]:
    """A live record as a list row (no bodies, no store id), for the live tail."""
    out: dict[str, Any] = {name: getattr(record, name) for name in LIST_COLUMNS}
    out["metadata"] = dict(record.metadata or {})
    out["has_bodies"] = record.request_body is not None or record.response_body is not None
    return out


@dataclass(frozen=True, slots=True)
class PageCursor:
    """Where the next page starts: after the row at `(time, id)`; `start` keeps a default time window
    fixed across the pages of one listing (otherwise "the last hour" would move while paging)."""

    time: float
    id: int
    start: float | None = None

    @property
    def key(self) -> tuple[float, int]:
        return self.time, self.id


def encode_cursor(cursor: PageCursor) -> str:
    """An opaque page cursor: base64url of a small JSON object."""
    value: dict[str, Any] = {"t": cursor.time, "i": cursor.id}
    if cursor.start is not None:
        value["s"] = cursor.start
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode("ascii").rstrip("=")


def _number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value


def decode_cursor(text: str) -> PageCursor | None:
    """The cursor `encode_cursor` made, or None when `text` is not one of ours."""
    try:
        value = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        return None
    if not isinstance(value, dict) or set(value) - {"t", "i", "s"}:
        return None
    row_time, row_id, start = value.get("t"), value.get("i"), value.get("s")
    if not _number(row_time) or not isinstance(row_id, int) or isinstance(row_id, bool) or abs(row_id) >= 2**63:
        return None
    if start is not None and not _number(start):
        return None
    return PageCursor(float(row_time), row_id, None if start is None else float(start))
