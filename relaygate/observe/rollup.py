"""Usage rollups: request-log rows summed per minute and per hour, by the dimensions the dashboard groups on.

The log writer aggregates each batch here in Python (one accumulator per distinct key), then the store
upserts one row per key into `usage_rollup_1m` and `usage_rollup_1h` in the same transaction as the log
rows (`INSERT ... ON CONFLICT ... DO UPDATE` adding every value column). The raw-scan path of usage
queries runs stored rows through the same `Rollup`, so both sources count a request the same way.

Key: the bucket start (unix seconds) and `DIMENSIONS`. Missing values are stored as `''` (a NULL would
make every key distinct to a unique index) and read back as None. `metadata` is canonical JSON text
(sorted keys, `{}` when none) of the keys `gateway-observability-config.metrics.labels.metadata` lists.

Values: counts and sums (`SUM_COLUMNS`), then the latency and TTFT histograms as one column per
bucket (`latency_b0`... counts requests with latency <= the bucket's bound, the last one is +Inf),
with the bounds of the Prometheus request-duration and time-to-first-chunk histograms. Columns rather
than arrays: the upsert adds them column by column and a query sums them with plain `SUM` on both
databases.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from relaygate.observe.record import LogRecord
from relaygate.observe.request_metrics import DURATION_BUCKETS, TTFC_BUCKETS

# Bounds in seconds, shared with the Prometheus histograms; the rollups count milliseconds against them.
LATENCY_BOUNDS: tuple[float, ...] = tuple(float(b) for b in DURATION_BUCKETS)
TTFT_BOUNDS: tuple[float, ...] = tuple(float(b) for b in TTFC_BUCKETS)
_LATENCY_MS = tuple(b * 1000.0 for b in LATENCY_BOUNDS)
_TTFT_MS = tuple(b * 1000.0 for b in TTFT_BOUNDS)

TABLES = {"1m": "usage_rollup_1m", "1h": "usage_rollup_1h"}
WIDTHS = {"1m": 60, "1h": 3600}
DIMENSIONS: tuple[str, ...] = (
    "model",  # resolved model, else the requested one
    "provider",
    "subject",
    "team",
    "virtual_account",  # the name, for `virtualaccount:<name>` subjects
    "token_id",
    "endpoint",  # `account/endpoint` for /proxy-api, else the API operation (`chat/completions`)
    "status_class",
    "error_type",
    "metadata",  # canonical JSON of the listed metadata keys
)
KEY_COLUMNS: tuple[str, ...] = ("bucket_start", *DIMENSIONS)
SUM_COLUMNS: tuple[str, ...] = (
    "requests",
    "errors",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost_usd",
)
LATENCY_COLUMNS: tuple[str, ...] = tuple(f"latency_b{i}" for i in range(len(LATENCY_BOUNDS) + 1))
TTFT_COLUMNS: tuple[str, ...] = tuple(f"ttft_b{i}" for i in range(len(TTFT_BOUNDS) + 1))
VALUE_COLUMNS: tuple[str, ...] = (*SUM_COLUMNS, *LATENCY_COLUMNS, *TTFT_COLUMNS)
COLUMNS: tuple[str, ...] = (*KEY_COLUMNS, *VALUE_COLUMNS)

_N = len(VALUE_COLUMNS)
_LAT0 = len(SUM_COLUMNS)
_TTFT0 = _LAT0 + len(LATENCY_COLUMNS)
_COST = SUM_COLUMNS.index("cost_usd")
_PROXY = "/proxy-api/"
_API_PREFIXES = ("/api/llm/v1/", "/api/llm/", "/v1/")
_VIRTUAL = "virtualaccount:"
_VIRTUAL_LEN = len(_VIRTUAL)
_STATUS_CLASS = {status: f"{status // 100}xx" for status in range(100, 600)}
_OFF = frozenset({"off", "0", "false", "no"})

Key = tuple[Any, ...]
# Memos for the writer thread's per-row work (a path's endpoint, listed metadata values' JSON); cleared
# when full, so odd traffic (unique paths or values) costs a recomputation, never unbounded memory.
_MEMO = 4096
_ENDPOINTS: dict[str, str] = {}
_METADATA: dict[tuple[Any, ...], str] = {}


def rollups_enabled(environ: dict[str, str] | None = None) -> bool:
    """False when `RELAYGATE_ROLLUPS=off` (an A/B switch for the log writer's cost; queries then see no rollups)."""
    value = (os.environ if environ is None else environ).get("RELAYGATE_ROLLUPS", "")
    return value.strip().lower() not in _OFF


def endpoint_of(path: str) -> str:
    """`/proxy-api/acct/ep/x` -> `acct/ep`; `/api/llm/v1/chat/completions` -> `chat/completions`."""
    found = _ENDPOINTS.get(path)
    if found is None:
        if len(_ENDPOINTS) >= _MEMO:
            _ENDPOINTS.clear()
        found = _ENDPOINTS[path] = _endpoint_of(path)
    return found


def _endpoint_of(path: str) -> str:
    path = path.partition("?")[0]
    if path.startswith(_PROXY):
        parts = path[len(_PROXY) :].split("/", 2)
        return "/".join(parts[:2])
    for prefix in _API_PREFIXES:
        if path.startswith(prefix):
            return path[len(prefix) :].rstrip("/")
    return path.strip("/")


def status_class_of(status: int) -> str:
    return f"{status // 100}xx" if 100 <= status <= 599 else ""


def metadata_text(metadata: dict[str, str] | None, keys: Sequence[str]) -> str:
    """Canonical JSON of the listed keys present in `metadata` (`{}` when none)."""
    if not keys or not metadata:
        return "{}"
    values = tuple(metadata.get(k) for k in keys)
    memo_key = (keys, values)
    found = _METADATA.get(memo_key)
    if found is None:
        chosen = {k: str(v) for k, v in zip(keys, values, strict=True) if v is not None}
        found = orjson.dumps(chosen, option=orjson.OPT_SORT_KEYS).decode() if chosen else "{}"
        if len(_METADATA) >= _MEMO:
            _METADATA.clear()
        _METADATA[memo_key] = found
    return found


def dimensions_of(record: LogRecord, metadata_keys: Sequence[str]) -> tuple[str, ...]:
    """The record's values for `DIMENSIONS` ('' for none)."""
    subject = record.subject or ""
    status = record.status
    return (
        record.resolved_model or record.requested_model or "",
        record.provider or "",
        subject,
        record.team or "",
        subject[len(_VIRTUAL) :] if subject.startswith(_VIRTUAL) else "",
        record.token_id or "",
        endpoint_of(record.path),
        _STATUS_CLASS.get(status, ""),
        record.error_type or "",
        metadata_text(record.metadata, metadata_keys),
    )


def _cache_counts(extra: dict[str, Any] | None) -> tuple[int, int]:
    details = extra.get("usage_details") if extra else None
    if not details:
        return 0, 0
    return int(details.get("cached_tokens") or 0), int(details.get("cache_write_tokens") or 0)


class Rollup:
    """Accumulators keyed by (bucket start, *dimensions): `add` rows, then read `rows()` or `coarser()`."""

    __slots__ = ("metadata_keys", "width", "sums")

    def __init__(self, metadata_keys: Sequence[str] = (), width: int = 60) -> None:
        self.metadata_keys = tuple(metadata_keys)
        self.width = width
        self.sums: dict[Key, list[float]] = {}

    def add(self, record: LogRecord) -> None:
        """Count one row (the writer thread runs this per row: `dimensions_of` inlined)."""
        width = self.width
        subject = record.subject or ""
        status = record.status
        key = (
            int(record.time // width) * width,
            record.resolved_model or record.requested_model or "",
            record.provider or "",
            subject,
            record.team or "",
            subject[_VIRTUAL_LEN:] if subject.startswith(_VIRTUAL) else "",
            record.token_id or "",
            endpoint_of(record.path),
            _STATUS_CLASS.get(status, ""),
            record.error_type or "",
            metadata_text(record.metadata, self.metadata_keys) if self.metadata_keys else "{}",
        )
        acc = self.sums.get(key)
        if acc is None:
            acc = self.sums[key] = [0] * _N
        status = record.status
        acc[0] += 1
        if status >= 400 or status < 100:
            acc[1] += 1
        if record.input_tokens:
            acc[2] += record.input_tokens
        if record.output_tokens:
            acc[3] += record.output_tokens
        if record.extra:
            cache_read, cache_write = _cache_counts(record.extra)
            acc[4] += cache_read
            acc[5] += cache_write
        if record.cost_usd:
            acc[_COST] += record.cost_usd
        if record.latency_ms is not None:
            acc[_LAT0 + bisect_left(_LATENCY_MS, record.latency_ms)] += 1
        if record.ttft_ms is not None:
            acc[_TTFT0 + bisect_left(_TTFT_MS, record.ttft_ms)] += 1

    def add_all(self, records: Iterable[LogRecord]) -> Rollup:
        for record in records:
            self.add(record)
        return self

    def coarser(self, width: int) -> Rollup:
        """The same sums in buckets of `width` seconds (a multiple of this one's)."""
        out = Rollup(self.metadata_keys, width)
        sums = out.sums
        for key, values in self.sums.items():
            wide = (key[0] // width * width, *key[1:])
            acc = sums.get(wide)
            if acc is None:
                sums[wide] = list(values)
            else:
                for i, value in enumerate(values):
                    if value:
                        acc[i] += value
        return out

    def project(self, dimensions: Sequence[str]) -> dict[Key, list[float]]:
        """The sums keyed by (bucket start, *`dimensions`) only: a projection table's rows."""
        if tuple(dimensions) == DIMENSIONS:
            return self.sums
        picks = [1 + DIMENSIONS.index(d) for d in dimensions]
        out: dict[Key, list[float]] = {}
        for key, values in self.sums.items():
            narrow = (key[0], *[key[i] for i in picks])
            acc = out.get(narrow)
            if acc is None:
                out[narrow] = list(values)
            else:
                for i, value in enumerate(values):
                    if value:
                        acc[i] += value
        return out

    def rows(self, dimensions: Sequence[str] = DIMENSIONS) -> list[tuple[Any, ...]]:
        """(key..., values...) of the table keyed by `dimensions`, sorted by key: concurrent writers
        upserting the same keys lock them in the same order and cannot deadlock."""
        return [(*key, *values) for key, values in sorted(self.project(dimensions).items())]

    def table_rows(self) -> list[tuple[RollupTable, list[tuple[Any, ...]]]]:
        """This per-minute rollup's upsert rows for every rollup table (hourly ones folded first)."""
        hours = self.coarser(WIDTHS["1h"])
        return [(table, (self if table.width == "1m" else hours).rows(table.dimensions)) for table in ROLLUP_TABLES]


def value_at_quantile(counts: Sequence[float], bounds: Sequence[float], q: float) -> float | None:
    """`q` (0..1) of a histogram with `len(bounds) + 1` buckets, interpolated linearly inside the
    bucket as Prometheus' `histogram_quantile` does (the +Inf bucket answers its lower bound); in the
    bounds' unit. None without observations."""
    total = sum(counts)
    if total <= 0:
        return None
    rank = q * total
    seen = 0.0
    for i, count in enumerate(counts):
        if count and seen + count >= rank:
            if i >= len(bounds):
                return float(bounds[-1])
            lower = 0.0 if i == 0 else float(bounds[i - 1])
            upper = float(bounds[i])
            return lower + (upper - lower) * ((rank - seen) / count)
        seen += count
    return float(bounds[-1])


@dataclass(frozen=True, slots=True)
class RollupTable:
    """One rollup table: its bucket width and the dimensions of its key (a projection keeps fewer)."""

    name: str
    width: str  # "1m" | "1h"
    dimensions: tuple[str, ...]

    @property
    def key_columns(self) -> tuple[str, ...]:
        return ("bucket_start", *self.dimensions)

    @property
    def columns(self) -> tuple[str, ...]:
        return (*self.key_columns, *VALUE_COLUMNS)

    def upsert_sql(self, placeholder: str) -> str:
        """`INSERT ... ON CONFLICT (key) DO UPDATE` adding every value column (both databases)."""
        table = self.name
        updates = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in VALUE_COLUMNS)
        return (
            f"INSERT INTO {table} ({', '.join(self.columns)}) "
            f"VALUES ({', '.join(placeholder for _ in self.columns)}) "
            f"ON CONFLICT ({', '.join(self.key_columns)}) DO UPDATE SET {updates}"
        )

    def index_ddl(self) -> tuple[str, ...]:
        """Secondary indexes: a user's buckets (the top-N series of a by-user query reads its groups
        through it instead of every user's rows)."""
        if self.dimensions and self.dimensions[0] == "subject":
            return (f"CREATE INDEX IF NOT EXISTS {self.name}_subject ON {self.name} (subject, bucket_start)",)
        return ()

    def ddl(self, *, integer: str, real: str) -> str:
        """CREATE TABLE (`integer`/`real`: the dialect's types)."""
        keys = [f"bucket_start {integer} NOT NULL", *(f"{d} text NOT NULL" for d in self.dimensions)]
        values = [f"{c} {real if c == 'cost_usd' else integer} NOT NULL DEFAULT 0" for c in VALUE_COLUMNS]
        return (
            f"CREATE TABLE IF NOT EXISTS {self.name} (\n    "
            + ",\n    ".join([*keys, *values, f"PRIMARY KEY ({', '.join(self.key_columns)})"])
            + "\n)"
        )


# Projections: the same sums keyed by fewer dimensions, so the common dashboard queries (by model,
# by user or team, totals) read a few thousand rows where the full key has one per user, model and
# metadata value. A query reads the narrowest table whose key has every dimension it uses.
PROJECTIONS: dict[str, tuple[str, ...]] = {
    "": DIMENSIONS,
    "_model": ("model", "provider", "endpoint", "status_class", "error_type"),
    "_identity": ("subject", "team", "virtual_account", "token_id"),
}
ROLLUP_TABLES: tuple[RollupTable, ...] = tuple(
    RollupTable(f"{TABLES[width]}{suffix}", width, dims) for width in WIDTHS for suffix, dims in PROJECTIONS.items()
)


def upsert_sql(table: str, placeholder: str) -> str:
    """The upsert of a full-key rollup table (`usage_rollup_1m`, `usage_rollup_1h`)."""
    return RollupTable(table, "", DIMENSIONS).upsert_sql(placeholder)


def table_ddl(table: str, *, integer: str, real: str) -> str:
    """CREATE TABLE for a full-key rollup table."""
    return RollupTable(table, "", DIMENSIONS).ddl(integer=integer, real=real)
