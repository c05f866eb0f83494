"""Usage queries over the rollups (or, when they cannot answer, the raw log): planning, SQL and shaping.

`plan_usage(request, ...)` validates a `/usage/query` request (400s name the bad field) and picks the
source: `rollup_1h` for intervals of an hour or more (and distributions) over hour-aligned ranges,
`rollup_1m` otherwise, and a raw scan of `request_logs`, capped at `RAW_MAX_DAYS`, for intervals under
a minute or for a metadata key the rollups do not keep. The stores run `rollup_sql` (or feed the raw
rows through `rollup.Rollup`, as the writer does) and hand the grouped rows to `shape`, which ranks
the groups, keeps the top `limit` and folds the rest into `other` exactly (sums add up; percentiles
come from the merged histograms).
"""

from __future__ import annotations

import gc
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from operator import sub
from typing import Any, Literal

import orjson

from relaygate.errors import BadRequest
from relaygate.observe import rollup
from relaygate.observe.record import LogRecord, subject_candidates

Source = Literal["rollup_1m", "rollup_1h", "raw"]
Dialect = Literal["sqlite", "postgres"]

DAY = 86_400
MAX_RANGE_DAYS = 400
RAW_MAX_DAYS = 7
MAX_LIMIT = 1000
MAX_POINTS = 20_000  # time buckets of one timeseries
MAX_FILTERS = 20
MAX_IN_VALUES = 200
HOUR_SLACK = 0.02  # a range within 2% of whole hours is answered from the hourly rollup
INTERVALS: dict[str, int] = {
    "10s": 10,
    "30s": 30,
    "1m": 60,
    "5m": 300,
    "15m": 900,
    "1h": 3600,
    "6h": 21_600,
    "1d": DAY,
}
# API dimension -> rollup/log dimension (metadata.<key> besides).
DIMENSIONS: dict[str, str] = {
    "model": "model",
    "provider": "provider",
    "user": "subject",
    "team": "team",
    "virtual_account": "virtual_account",
    "token": "token_id",
    "endpoint": "endpoint",
    "status_class": "status_class",
    "error_type": "error_type",
}
METADATA_PREFIX = "metadata."
_SUMS = {name: name for name in rollup.SUM_COLUMNS}
PERCENTILES: dict[str, tuple[str, float]] = {
    f"{kind}_p{p}": (kind, p / 100) for kind in ("latency", "ttft") for p in (50, 90, 95, 99)
}
AGGREGATIONS: tuple[str, ...] = (*rollup.SUM_COLUMNS, "error_rate", *PERCENTILES)
DEFAULT_AGGREGATIONS = ("requests", "errors", "input_tokens", "output_tokens", "cost_usd")
OPS = ("eq", "ne", "in", "not_in", "is_null")
_VALUE_INDEX = {name: i for i, name in enumerate(rollup.VALUE_COLUMNS)}


def _bad(message: str, param: str) -> BadRequest:
    return BadRequest(message, param=param, code="invalid_parameter")


@dataclass(frozen=True, slots=True)
class Filter:
    field: str  # an API dimension (`user`, `metadata.app`)
    op: str
    values: tuple[str, ...] = ()  # one for eq/ne
    null: bool = True  # is_null: true (missing) or false (present)


@dataclass(frozen=True, slots=True)
class Scope:
    """Rows an ordinary user may see: their subject's, or their teams'."""

    subject: str
    teams: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class UsagePlan:
    type: Literal["timeseries", "distribution"]
    start: float  # the range asked for
    end: float
    interval_name: str
    interval: int  # seconds per point (timeseries)
    group_by: tuple[str, ...]
    aggregations: tuple[str, ...]
    filters: tuple[Filter, ...]
    limit: int
    source: Source
    range_start: int | float  # the range read: whole buckets of the source
    range_end: int | float
    capped: bool = False  # a raw scan cut to its last RAW_MAX_DAYS
    scope: Scope | None = None
    value_columns: tuple[str, ...] = field(default=())  # the rollup value columns the query reads
    table: str = ""  # the rollup table read: the narrowest whose key has every dimension used

    @property
    def metadata_keys(self) -> tuple[str, ...]:
        """Metadata keys grouped or filtered on (for the raw scan's aggregation)."""
        keys = [d[len(METADATA_PREFIX) :] for d in self.group_by if d.startswith(METADATA_PREFIX)]
        keys += [f.field[len(METADATA_PREFIX) :] for f in self.filters if f.field.startswith(METADATA_PREFIX)]
        return tuple(dict.fromkeys(keys))

    @property
    def ranking(self) -> str:
        return "requests" if "requests" in self.aggregations else self.aggregations[0]


# -- planning --------------------------------------------------------------------------------------


def _dimension(name: Any, param: str) -> str:
    if not isinstance(name, str) or not name:
        raise _bad(f"{param} entries must be dimension names", param)
    if name in DIMENSIONS:
        return name
    if name.startswith(METADATA_PREFIX) and 0 < len(name) - len(METADATA_PREFIX) <= 128:
        return name
    raise _bad(
        f"unknown dimension {name[:60]!r} in {param}; use one of {', '.join(DIMENSIONS)} or metadata.<key>", param
    )


def _names(value: Any, param: str) -> list[Any]:
    """A list, or a comma-separated string (the CSV export's query string)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list):
        return value
    raise _bad(f"{param} must be a list", param)


def _time(value: Any, name: str, default: float) -> float:
    """Unix seconds (the admin layer turns ISO-8601 text into them first)."""
    if value is None or value == "":
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 32503680000:
        raise _bad(f"{name} must be a time (unix seconds or ISO-8601)", name)
    return float(value)


def _filter(raw: Any, index: int) -> Filter:
    param = f"filters[{index}]"
    if not isinstance(raw, dict):
        raise _bad(f"{param} must be an object with field, op and value", param)
    name = _dimension(raw.get("field"), f"{param}.field")
    op = raw.get("op", "eq")
    if op not in OPS:
        raise _bad(f"{param}.op must be one of {', '.join(OPS)}", f"{param}.op")
    value = raw.get("value")
    if op == "is_null":
        if value is None:
            value = True
        if not isinstance(value, bool):
            raise _bad(f"{param}.value must be true or false for is_null", f"{param}.value")
        return Filter(name, op, (), value)
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value or len(value) > MAX_IN_VALUES:
            raise _bad(f"{param}.value must be a list of 1 to {MAX_IN_VALUES} strings for {op}", f"{param}.value")
        values = value
    else:
        values = [value]
    if not all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in values):
        raise _bad(f"{param}.value must be a string (or a list of strings for in/not_in)", f"{param}.value")
    return Filter(name, op, tuple(str(v)[:512] for v in values))


def plan_usage(
    request: Mapping[str, Any],
    *,
    now: float,
    rolled_metadata: Sequence[str] = (),
    minute_retention_days: float = 7.0,
    scope: Scope | None = None,
) -> UsagePlan:
    """Validate a usage query (JSON body or the CSV export's query string) and choose its source."""
    kind: Literal["timeseries", "distribution"]
    given = request.get("type") or "timeseries"
    if not isinstance(given, str):
        raise _bad("type must be timeseries or distribution", "type")
    if given == "timeseries":
        kind = "timeseries"
    elif given == "distribution":
        kind = "distribution"
    else:
        raise _bad("type must be timeseries or distribution", "type")
    interval_name = request.get("interval") or ("1h" if kind == "timeseries" else "1d")
    if not isinstance(interval_name, str) or interval_name not in INTERVALS:
        raise _bad(f"interval must be one of {', '.join(INTERVALS)}", "interval")
    interval = INTERVALS[interval_name]
    end = _time(request.get("end"), "end", now)
    start = _time(request.get("start"), "start", end - DAY)
    if not end > start:
        raise _bad("end must be after start", "end")
    if end - start > MAX_RANGE_DAYS * DAY:
        raise _bad(f"the range may span at most {MAX_RANGE_DAYS} days", "start")
    group_by = tuple(dict.fromkeys(_dimension(d, "group_by") for d in _names(request.get("group_by"), "group_by")))
    if len(group_by) > 4:
        raise _bad("group_by takes at most 4 dimensions", "group_by")
    names = _names(request.get("aggregations"), "aggregations")
    for name in names:
        if not isinstance(name, str) or name not in AGGREGATIONS:
            raise _bad(f"unknown aggregation {str(name)[:60]!r}; use one of {', '.join(AGGREGATIONS)}", "aggregations")
    aggregations = tuple(dict.fromkeys(names)) or DEFAULT_AGGREGATIONS
    raw_filters = request.get("filters") or []
    if not isinstance(raw_filters, list) or len(raw_filters) > MAX_FILTERS:
        raise _bad(f"filters must be a list of at most {MAX_FILTERS} objects", "filters")
    filters = tuple(_filter(f, i) for i, f in enumerate(raw_filters))
    limit = request.get("limit", 50)
    if isinstance(limit, str):
        try:
            limit = int(limit)
        except ValueError:
            raise _bad("limit must be an integer", "limit") from None
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise _bad(f"limit must be an integer between 1 and {MAX_LIMIT}", "limit")

    value_columns = _value_columns(aggregations)
    rolled = set(rolled_metadata)
    used = [*group_by, *(f.field for f in filters)]
    unrolled = any(d.startswith(METADATA_PREFIX) and d[len(METADATA_PREFIX) :] not in rolled for d in used)
    source: Source
    capped = False
    range_start: float | int
    range_end: float | int
    if interval < 60 or unrolled:
        source = "raw"
        range_start, range_end = start, end
        if end - start > RAW_MAX_DAYS * DAY:
            range_start, capped = end - RAW_MAX_DAYS * DAY, True
    else:
        hour_start, hour_end = _floor(start, 3600), _ceil(end, 3600)
        slack = (start - hour_start) + (hour_end - end)
        hourly = kind == "distribution" or interval >= 3600
        if hourly and (slack <= HOUR_SLACK * (end - start) or start < now - minute_retention_days * DAY):
            source, range_start, range_end = "rollup_1h", hour_start, hour_end
        else:
            source, range_start, range_end = "rollup_1m", _floor(start, 60), _ceil(end, 60)
    table = "" if source == "raw" else _table_for(source, used, scope is not None)
    if kind == "timeseries" and (range_end - range_start) / interval > MAX_POINTS:
        raise _bad(
            f"{interval_name} points over this range are more than {MAX_POINTS}; use a larger interval", "interval"
        )
    return UsagePlan(
        kind,
        start,
        end,
        interval_name,
        interval,
        group_by,
        aggregations,
        filters,
        limit,
        source,
        range_start,
        range_end,
        capped,
        scope,
        value_columns,
        table,
    )


_TABLE_ORDER = (rollup.PROJECTIONS["_model"], rollup.PROJECTIONS["_identity"], rollup.DIMENSIONS)


def _table_for(source: Source, used: Sequence[str], scoped: bool) -> str:
    """The narrowest rollup table of `source` whose key has every dimension used (and the subject and
    team a scoped query filters on)."""
    needed = {"metadata" if d.startswith(METADATA_PREFIX) else DIMENSIONS[d] for d in used}
    if scoped:
        needed |= {"subject", "team"}
    width = "1h" if source == "rollup_1h" else "1m"
    fits = [t for t in rollup.ROLLUP_TABLES if t.width == width and needed <= set(t.dimensions)]
    # Fewest rows first: models x outcomes, then users (and their tokens), then the full key.
    return min(fits, key=lambda t: _TABLE_ORDER.index(t.dimensions)).name


def _floor(value: float, width: int) -> int:
    return int(value // width) * width


def _ceil(value: float, width: int) -> int:
    return int(math.ceil(value / width)) * width


def _value_columns(aggregations: Iterable[str]) -> tuple[str, ...]:
    columns = ["requests"]
    for name in aggregations:
        if name in _SUMS:
            columns.append(name)
        elif name == "error_rate":
            columns.append("errors")
        elif name.startswith("latency_"):
            columns += rollup.LATENCY_COLUMNS
        elif name.startswith("ttft_"):
            columns += rollup.TTFT_COLUMNS
    return tuple(dict.fromkeys(columns))


# -- SQL over the rollups --------------------------------------------------------------------------


def _dimension_sql(name: str, dialect: Dialect, params: list[Any], mark: str) -> str:
    if name.startswith(METADATA_PREFIX):
        key = name[len(METADATA_PREFIX) :]
        if dialect == "sqlite":
            params.append(f'$."{key}"' if '"' not in key else "$.__no_such_key__")
            return f"json_extract(metadata, {mark})"
        params.append(key)
        return f"(metadata::jsonb ->> {mark})"
    return DIMENSIONS[name]


def _filter_sql(flt: Filter, dialect: Dialect, params: list[Any], mark: str) -> str:
    metadata = flt.field.startswith(METADATA_PREFIX)
    expr = _dimension_sql(flt.field, dialect, params, mark)
    values = list(flt.values)
    if flt.field == "user":
        values = [c for v in values for c in subject_candidates(v)]
    if flt.op == "is_null":
        if metadata:
            return f"{expr} IS {'' if flt.null else 'NOT '}NULL"
        return f"{expr} {'=' if flt.null else '<>'} ''"
    if flt.op in ("eq", "in"):
        params.extend(values)
        return f"{expr} IN ({', '.join(mark for _ in values)})"
    params.extend(values)
    if metadata:  # a missing key is "not equal" too
        expr = f"COALESCE({expr}, '')"
    return f"{expr} NOT IN ({', '.join(mark for _ in values)})"


def rollup_sql(
    plan: UsagePlan, dialect: Dialect, *, only: Sequence[tuple[Any, ...]] | None = None
) -> tuple[str, list[Any]]:
    """SELECT [bucket,] dims..., SUM(values)... over the plan's rollup table, grouped; rows in
    `(bucket, *group, *plan.value_columns)` order (bucket None for distributions). `only`: just
    these groups (values as `rows_from_sql` gives them)."""
    mark = "?" if dialect == "sqlite" else "%s"
    table = plan.table or rollup.TABLES["1h" if plan.source == "rollup_1h" else "1m"]
    select_params: list[Any] = []
    select: list[str] = []
    if plan.type == "timeseries":
        select.append(f"(bucket_start / {plan.interval}) * {plan.interval}")
    else:
        select.append("NULL")
    select += [_dimension_sql(d, dialect, select_params, mark) for d in plan.group_by]
    # PostgreSQL sums bigint as numeric: cast back, or every value arrives as a (slow) Decimal.
    cast = "::bigint" if dialect == "postgres" else ""
    select += [f"SUM({c})" if c == "cost_usd" else f"SUM({c}){cast}" for c in plan.value_columns]
    where_params: list[Any] = [int(plan.range_start), int(plan.range_end)]
    where = [f"bucket_start >= {mark}", f"bucket_start < {mark}"]
    for flt in plan.filters:
        where.append(_filter_sql(flt, dialect, where_params, mark))
    if plan.scope is not None:
        clause = f"subject = {mark}"
        where_params.append(plan.scope.subject)
        if plan.scope.teams:
            clause = f"({clause} OR team IN ({', '.join(mark for _ in plan.scope.teams)}))"
            where_params.extend(plan.scope.teams)
        where.append(clause)
    if only is not None and len(plan.group_by) == 1:  # one IN list (hashed by PostgreSQL)
        name = plan.group_by[0]
        values = [group[0] for group in only if group[0] is not None]
        terms = []
        if values:
            expr = _dimension_sql(name, dialect, where_params, mark)
            terms.append(f"{expr} IN ({', '.join(mark for _ in values)})")
            where_params.extend(values)
        if len(values) < len(only):  # the group of rows without a value
            expr = _dimension_sql(name, dialect, where_params, mark)
            terms.append(f"{expr} IS NULL" if name.startswith(METADATA_PREFIX) else f"{expr} = ''")
        where.append("(" + " OR ".join(terms or ["1 = 0"]) + ")")
    elif only is not None:
        alternatives = []
        for group in only:
            terms = []
            for name, value in zip(plan.group_by, group, strict=True):
                expr = _dimension_sql(name, dialect, where_params, mark)
                if value is None:
                    terms.append(f"{expr} IS NULL" if name.startswith(METADATA_PREFIX) else f"{expr} = ''")
                else:
                    terms.append(f"{expr} = {mark}")
                    where_params.append(value)
            alternatives.append("(" + " AND ".join(terms) + ")")
        where.append("(" + " OR ".join(alternatives or ["1 = 0"]) + ")")
    groups = 1 + len(plan.group_by) if plan.type == "timeseries" else len(plan.group_by)
    first = 1 if plan.type == "timeseries" else 2
    sql = f"SELECT {', '.join(select)} FROM {table} WHERE {' AND '.join(where)}"
    if groups:
        sql += " GROUP BY " + ", ".join(str(i) for i in range(first, first + groups))
    return sql, select_params + where_params


def rows_from_sql(plan: UsagePlan, rows: Iterable[Sequence[Any]]) -> list[tuple[Any, tuple[Any, ...], list[float]]]:
    """SQL rows -> (ts, group, values in `plan.value_columns` order)."""
    first = 1 + len(plan.group_by)
    out: list[tuple[Any, tuple[Any, ...], list[float]]] = []
    append = out.append
    groups: dict[Any, tuple[Any, ...]] = {}  # one tuple per group, shared by its rows
    if first == 2:  # one dimension (the common case): look its value up, not a new tuple per row
        for row in rows:
            if row[2] is None:
                continue
            value = row[1]
            group = groups.get(value)
            if group is None:
                group = groups[value] = (None if value == "" else value,)
            append((row[0], group, list(row[2:])))
        return out
    for row in rows:
        if row[first] is None:  # SUM over no rows (an ungrouped query of an empty range)
            continue
        stored = tuple(row[1:first])  # the same tuple when rows are tuples
        group = groups.get(stored)
        if group is None:
            group = groups[stored] = tuple([None if v == "" else v for v in stored])
        append((row[0], group, list(row[first:])))
    return out


# -- the raw scan ----------------------------------------------------------------------------------


_ROLLUP_DIM = {name: i + 1 for i, name in enumerate(rollup.DIMENSIONS)}  # +1: key[0] is the bucket


def rows_from_rollup(plan: UsagePlan, agg: rollup.Rollup) -> list[tuple[Any, tuple[Any, ...], list[float]]]:
    """A raw scan's `Rollup` (every dimension, metadata of `plan.metadata_keys`) -> filtered, grouped rows."""
    parsed: dict[str, dict[str, Any]] = {}

    def value(key: tuple[Any, ...], name: str) -> Any:
        if name.startswith(METADATA_PREFIX):
            text = key[_ROLLUP_DIM["metadata"]]
            meta = parsed.get(text)
            if meta is None:
                meta = parsed[text] = orjson.loads(text)
            return meta.get(name[len(METADATA_PREFIX) :])
        return key[_ROLLUP_DIM[DIMENSIONS[name]]] or None

    def matches(key: tuple[Any, ...]) -> bool:
        for flt in plan.filters:
            got = value(key, flt.field)
            values = flt.values
            if flt.field == "user":
                values = tuple(c for v in values for c in subject_candidates(v))
            if flt.op == "is_null":
                ok = (got is None) == flt.null
            elif flt.op in ("eq", "in"):
                ok = got is not None and str(got) in values
            else:
                ok = ("" if got is None else str(got)) not in values  # as the SQL's COALESCE(x, '')
            if not ok:
                return False
        if plan.scope is not None:
            subject, team = key[_ROLLUP_DIM["subject"]], key[_ROLLUP_DIM["team"]]
            if subject != plan.scope.subject and team not in plan.scope.teams:
                return False
        return True

    grouped: dict[tuple[Any, tuple[Any, ...]], list[float]] = {}
    indexes = [_VALUE_INDEX[c] for c in plan.value_columns]
    for key, full in agg.sums.items():
        if not matches(key):
            continue
        ts = key[0] if plan.type == "timeseries" else None
        group = tuple(value(key, d) for d in plan.group_by)
        values = [full[i] for i in indexes]
        acc = grouped.get((ts, group))
        if acc is None:
            grouped[(ts, group)] = values
        else:
            for i, v in enumerate(values):
                acc[i] += v
    return [(ts, group, values) for (ts, group), values in grouped.items()]


RAW_COLUMNS: tuple[str, ...] = (
    "time",
    "path",
    "subject",
    "token_id",
    "requested_model",
    "resolved_model",
    "provider",
    "status",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "latency_ms",
    "ttft_ms",
    "metadata",
    "error_type",
    "extra",
    "team",
)


def raw_sql(plan: UsagePlan, dialect: Dialect) -> tuple[str, list[Any]]:
    """The raw rows a raw-source plan reads (in `RAW_COLUMNS` order), by the time index."""
    mark = "?" if dialect == "sqlite" else "%s"
    quoted = [f'"{c}"' for c in RAW_COLUMNS]
    params: list[Any] = [plan.range_start, plan.range_end]
    sql = f'SELECT {", ".join(quoted)} FROM request_logs WHERE "time" >= {mark} AND "time" < {mark}'
    if plan.scope is not None:
        clause = f"subject = {mark}"
        params.append(plan.scope.subject)
        if plan.scope.teams:
            clause = f"({clause} OR team IN ({', '.join(mark for _ in plan.scope.teams)}))"
            params.extend(plan.scope.teams)
        sql += f" AND {clause}"
    return sql, params


def raw_record(row: Sequence[Any]) -> LogRecord:
    """A `RAW_COLUMNS` row as the `LogRecord` the rollup aggregation reads."""
    values = dict(zip(RAW_COLUMNS, row, strict=True))
    for name in ("metadata", "extra"):
        value = values[name]
        if isinstance(value, str | bytes):
            values[name] = orjson.loads(value) if value else {}
        elif value is None:
            values[name] = {}
    return LogRecord(request_id="", method="", **values)


def raw_rollup(plan: UsagePlan) -> rollup.Rollup:
    width = plan.interval if plan.type == "timeseries" else 1 << 40
    return rollup.Rollup(plan.metadata_keys, width)


# -- the answer ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Layout:
    """Where each value sits in a plan's compact value vectors (`plan.value_columns` order)."""

    index: dict[str, int]
    latency: slice
    ttft: slice

    @classmethod
    def of(cls, plan: UsagePlan) -> _Layout:
        index = {c: i for i, c in enumerate(plan.value_columns)}
        lat = index.get(rollup.LATENCY_COLUMNS[0], 0)
        ttft = index.get(rollup.TTFT_COLUMNS[0], 0)
        return cls(
            index,
            slice(lat, lat + len(rollup.LATENCY_COLUMNS)),
            slice(ttft, ttft + len(rollup.TTFT_COLUMNS)),
        )


def _aggregate(plan: UsagePlan, layout: _Layout, values: Sequence[float]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    index = layout.index
    for name in plan.aggregations:
        if name in _SUMS:
            value = values[index[name]]
            out[name] = round(value, 8) if name == "cost_usd" else int(value)
        elif name == "error_rate":
            requests = values[index["requests"]]
            out[name] = round(values[index["errors"]] / requests, 6) if requests else None
        else:
            kind, q = PERCENTILES[name]
            counts, bounds = (
                (values[layout.latency], rollup.LATENCY_BOUNDS)
                if kind == "latency"
                else (values[layout.ttft], rollup.TTFT_BOUNDS)
            )
            seconds = rollup.value_at_quantile(counts, bounds, q)
            out[name] = None if seconds is None else round(seconds * 1000.0, 3)
    return out


def _aggregator(plan: UsagePlan, layout: _Layout) -> Callable[[Sequence[float]], dict[str, Any]]:
    """`_aggregate` for one plan, specialised: a query of sums only (the common one) builds each
    point's values with one comprehension instead of dispatching on every aggregation's name."""
    if not all(name in _SUMS for name in plan.aggregations):
        return lambda values: _aggregate(plan, layout, values)
    specs = [(name, layout.index[name], name == "cost_usd") for name in plan.aggregations]
    return lambda v: {name: round(v[i], 8) if cost else int(v[i]) for name, i, cost in specs}


def _add(into: list[float], values: Sequence[float]) -> None:
    into[:] = [a + b for a, b in zip(into, values, strict=True)]


def _sum(vectors: Iterable[Sequence[float]], width: int) -> list[float]:
    columns = [sum(column) for column in zip(*vectors, strict=True)]
    return columns or [0.0] * width


def _rank_value(plan: UsagePlan, layout: _Layout, values: Sequence[float]) -> float:
    name = plan.ranking
    if name in _SUMS:
        return float(values[layout.index[name]])
    return float(_aggregate(plan, layout, values).get(name) or 0)


@dataclass(slots=True)
class Folded:
    """`other` worked out before `shape`: how many groups, their total and their sum per point."""

    groups: int
    total: list[float]
    by_ts: dict[Any, list[float]]


def shape(
    plan: UsagePlan, rows: Iterable[tuple[Any, tuple[Any, ...], list[float]]], folded: Folded | None = None
) -> dict[str, Any]:
    """The answer: top `limit` groups by the ranking aggregation, the rest summed into `other`
    (or `folded`, when the rows hold only the top groups)."""
    width = len(plan.value_columns)
    layout = _Layout.of(plan)
    series: dict[tuple[Any, ...], dict[Any, list[float]]] = {}
    for ts, group, values in rows:
        by_ts = series.get(group)
        if by_ts is None:
            by_ts = series[group] = {}
        acc = by_ts.get(ts)
        if acc is None:
            by_ts[ts] = values
        else:
            _add(acc, values)
    totals = {group: _sum(by_ts.values(), width) for group, by_ts in series.items()}
    ranked = sorted(totals, key=lambda g: (-_rank_value(plan, layout, totals[g]), tuple(str(v) for v in g)))
    top, rest = ranked[: plan.limit], ranked[plan.limit :]
    aggregate = _aggregator(plan, layout)
    points: list[dict[str, Any]] = []
    if plan.type == "timeseries":
        # Points ordered by time, then by the group's rank: appended per bucket in rank order.
        by_time: dict[Any, list[dict[str, Any]]] = {}
        for group in top:
            named = dict(zip(plan.group_by, group, strict=True))
            for ts, values in series[group].items():
                point = {"ts": float(ts), "group": named, **aggregate(values)}
                bucket = by_time.get(ts)
                if bucket is None:
                    by_time[ts] = [point]
                else:
                    bucket.append(point)
        for ts in sorted(by_time):
            points += by_time[ts]
    else:
        for group in top:
            named = dict(zip(plan.group_by, group, strict=True))
            for values in series[group].values():
                points.append({"group": named, **aggregate(values)})
    other: dict[str, Any] | None = None
    if rest and folded is None:
        folded = Folded(len(rest), [0.0] * width, {})
        for group in rest:
            _add(folded.total, totals[group])
            for ts, values in series[group].items():
                _add(folded.by_ts.setdefault(ts, [0.0] * width), values)
    everything = _sum([totals[group] for group in top], width)
    if folded is not None and folded.groups:
        _add(everything, folded.total)
        by_ts_other = folded.by_ts
        other = {"groups": folded.groups, **_aggregate(plan, layout, folded.total)}
        if plan.type == "timeseries":
            other["points"] = [{"ts": float(ts), **aggregate(by_ts_other[ts])} for ts in sorted(by_ts_other)]
    return {
        "type": plan.type,
        "interval": plan.interval_name,
        "start": float(plan.range_start),
        "end": float(plan.range_end),
        "source": plan.source,
        "capped": plan.capped,
        "group_by": list(plan.group_by),
        "aggregations": list(plan.aggregations),
        "points": points,
        "other": other,
        "totals": _aggregate(plan, layout, everything),
    }


Fetch = Callable[[str, list[Any]], Iterable[Sequence[Any]]]


@contextmanager
def _collection_paused() -> Iterator[None]:
    """The cyclic garbage collector off while an answer's rows and points are built (tens of thousands
    of acyclic tuples, lists and dicts that would otherwise set off many collections, each walking the
    process's young objects and now and then all of them: ~15 ms of a 8,400-point answer). Nothing
    built here is cyclic, so nothing waits for the collector; it runs again on the next allocations
    after. A no-op when the collector is already off (another such block, or the application's own)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def run_rollup_query(plan: UsagePlan, dialect: Dialect, fetch: Fetch) -> dict[str, Any]:
    """A rollup-source plan, answered with `fetch(sql, params)` (the store's connection).

    A grouped timeseries first ranks the groups over the whole range (one row per group); with more
    than `limit` of them, it reads the series of the top groups only, and `other` per point is the
    ungrouped series minus theirs (every value is a sum or a histogram count, so this is exact). The
    rows read and shaped stay near `limit x points` however many groups there are."""
    with _collection_paused():
        return _run_rollup_query(plan, dialect, fetch)


def _run_rollup_query(plan: UsagePlan, dialect: Dialect, fetch: Fetch) -> dict[str, Any]:
    if plan.type == "distribution" or not plan.group_by:
        sql, params = rollup_sql(plan, dialect)
        return shape(plan, rows_from_sql(plan, fetch(sql, params)))
    if plan.table.endswith("_model"):
        # Models, providers, endpoints and outcomes are few (config-bounded): read the series at once
        # and rank in Python, unless there turn out to be more groups than `limit`.
        sql, params = rollup_sql(plan, dialect)
        rows = rows_from_sql(plan, fetch(sql, params))
        if len({group for _, group, _ in rows}) <= plan.limit:
            return shape(plan, rows)
    totals_plan = replace(plan, type="distribution")
    sql, params = rollup_sql(totals_plan, dialect)
    totals = rows_from_sql(totals_plan, fetch(sql, params))
    if len(totals) <= plan.limit:
        sql, params = rollup_sql(plan, dialect)
        return shape(plan, rows_from_sql(plan, fetch(sql, params)))
    layout = _Layout.of(plan)
    totals.sort(key=lambda row: (-_rank_value(plan, layout, row[2]), tuple(str(v) for v in row[1])))
    top, rest = totals[: plan.limit], totals[plan.limit :]
    sql, params = rollup_sql(plan, dialect, only=[group for _, group, _ in top])
    rows = rows_from_sql(plan, fetch(sql, params))
    everything_plan = replace(
        plan, group_by=(), table=_table_for(plan.source, [f.field for f in plan.filters], plan.scope is not None)
    )
    sql, params = rollup_sql(everything_plan, dialect)
    width = len(plan.value_columns)
    folded = Folded(len(rest), _sum([values for _, _, values in rest], width), {})
    by_ts = folded.by_ts
    for ts, _, values in rows_from_sql(everything_plan, fetch(sql, params)):
        by_ts[ts] = values
    for ts, _, values in rows:
        remainder = by_ts.get(ts)
        if remainder is not None:
            by_ts[ts] = list(map(sub, remainder, values))  # the same widths: `plan.value_columns`
    requests, cost = layout.index["requests"], layout.index.get("cost_usd")
    for ts in list(by_ts):
        if by_ts[ts][requests] < 1:
            del by_ts[ts]  # points where the top groups were everything
        elif cost is not None:
            by_ts[ts][cost] = max(0.0, by_ts[ts][cost])  # no -0.0000001 dollars from float sums
    return shape(plan, rows, folded)
