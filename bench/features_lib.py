"""bench/features.py's parts: what it sends and how it times one request (the request bodies, a
kept-alive connection timed with `time.perf_counter`, the gateway's /metrics counter), the samples of
each case per round, and the markdown report.

Every request is sent on one `http.client.HTTPConnection` per case, kept alive, one at a time (c1).
"""

from __future__ import annotations

import http.client
import json
import math
import re
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from httpc import CHAT_PATH

PLAIN = "bench-openai/gpt-4o"  # no guardrails (configs.PLAIN_MODEL)
GUARD = "bench-guard/gpt-4o"  # input guardrails: regex (ticket) + pii, validate, enforce
BUFFER = "bench-buffer/gpt-4o"  # output guardrail: pii, validate, stream_mode buffer
CACHE_ON = json.dumps({"type": "exact-match"}, separators=(",", ":"))
STAGE_RE = re.compile(r"input_guardrails;dur=([\d.]+)")
TIMING_RE = re.compile(r"(?:^|, )([a-z_]+);dur=([\d.]+)")  # every stage of a non-streaming answer's server-timing
ATTEMPTS = "relaygate_upstream_attempts_total"

# ~2 KB of plain English for the guardrail case: no digits, no colons, no '@' (nothing the pii
# detectors or the TICKET-[0-9]{1,8} pattern can match), so both input guardrails pass.
PROMPT_2KB = (
    "I am preparing a short guide for new volunteers at the harbour museum and would like your help "
    "with the section about the old lighthouse. Please keep the tone warm and simple, as many readers "
    "are school children visiting with their families on weekends. The lighthouse stood at the end of "
    "the northern breakwater for well over a century. Its keepers lived in a small stone cottage beside "
    "the tower, and every evening one of them climbed the spiral stairs to light the lamp, wind the "
    "clockwork that turned the lens, and check that the glass was clean. On stormy nights they stayed "
    "awake until dawn, watching the beam sweep across the water and listening for ships in trouble. "
    "The lens itself was a tall drum of polished glass prisms that bent the light of a single flame "
    "into a bright, narrow beam that sailors could see far out at sea. Each lighthouse along the coast "
    "had its own pattern of flashes, so a captain who counted the flashes knew exactly which headland "
    "lay ahead. When electric lamps arrived, the keepers no longer needed to carry oil up the stairs, "
    "and later the light was switched on and off automatically, so the last keeper left the cottage "
    "and the museum took over the building. Today visitors can climb the same stairs, look at the "
    "great lens from close by, and read the logbooks in which the keepers wrote down the weather, the "
    "ships they saw, and the small events of their quiet lives. Could you write three short paragraphs "
    "for the guide? The first should explain what a lighthouse does and why ships needed it. The second "
    "should describe a day in the life of a keeper, with a few details children will remember, such as "
    "the smell of lamp oil, the sound of the wind around the gallery, and the cat that is said to have "
    "lived in the cottage. The third should invite the reader to look for the marks the keepers left "
    "on the walls and to imagine the view from the top on a clear evening. Please avoid dates and "
    "numbers, keep every sentence short, and end with a friendly line that welcomes the visitor."
)


def chat_body(model: str, user_text: str, stream: bool = False, pad_to: int = 0) -> bytes:
    """A chat completion request; `pad_to` pads the system prompt so the body is about that many bytes."""

    def build(system: str) -> bytes:
        body: dict[str, object] = {
            "model": model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user_text}],
            "max_tokens": 64,
            "temperature": 0.2,
        }
        if stream:
            body["stream"] = True
        return json.dumps(body, separators=(",", ":")).encode()

    system = "You are a helpful assistant."
    raw = build(system)
    if pad_to > len(raw):
        filler = " Answer in plain words, briefly, and do not use lists or headings."
        while len(raw) < pad_to:
            system += filler[: pad_to - len(raw)]
            raw = build(system)
    return raw


def cache_text(i: int) -> str:
    """The user message of the cache case; `i` < 0 is the one hit body, others are unique (misses)."""
    tag = "the same question every time" if i < 0 else f"question number {i}"
    return f"Write one sentence about the sea, please ({tag})."


@dataclass(slots=True)
class Answer:
    """One timed exchange."""

    status: int
    headers: dict[str, str]
    body: bytes
    total_ms: float  # request sent → last byte read
    ttfb_ms: float = 0.0  # streams: request sent → first `data:` bytes
    events: int = 0  # streams: `data:` lines received


class Conn:
    """One kept-alive connection to 127.0.0.1:`port`, timing each request with perf_counter."""

    def __init__(self, port: int, headers: Mapping[str, str]) -> None:
        self.port = port
        self.headers = dict(headers)
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def post(self, body: bytes, extra: Mapping[str, str] | None = None) -> Answer:
        """A non-streaming POST to the chat path; the whole answer read."""
        headers = {**self.headers, **extra} if extra else self.headers
        clock = time.perf_counter
        start = clock()
        self.conn.request("POST", CHAT_PATH, body=body, headers=headers)
        resp = self.conn.getresponse()
        data = resp.read()
        total = (clock() - start) * 1000.0
        return Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data, total)

    def stream(self, body: bytes, extra: Mapping[str, str] | None = None) -> Answer:
        """A streamed POST: time to the first `data:` bytes and to the end of the stream."""
        headers = {**self.headers, **extra} if extra else self.headers
        clock = time.perf_counter
        start = clock()
        self.conn.request("POST", CHAT_PATH, body=body, headers=headers)
        resp = self.conn.getresponse()
        parts: list[bytes] = []
        ttfb = 0.0
        seen = b""
        while True:
            chunk = resp.read1(65536)
            if not chunk:
                break
            parts.append(chunk)
            if not ttfb:
                seen = (seen + chunk)[-4096:]
                if b"data:" in seen:
                    ttfb = (clock() - start) * 1000.0
        total = (clock() - start) * 1000.0
        data = b"".join(parts)
        events = sum(1 for line in data.split(b"\n") if line.startswith(b"data:"))
        return Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data, total, ttfb, events)

    def reopen(self) -> None:
        """A new connection, opened now (untimed): the gateway closes connections idle for 75 s, and a case
        waits through the other phases between its blocks."""
        self.conn.close()
        self.conn.connect()

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


def upstream_attempts(port: int) -> float:
    """The sum of `relaygate_upstream_attempts_total` over every label set, from the gateway's /metrics."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/metrics")
        resp = conn.getresponse()
        text = resp.read().decode()
        if resp.status != 200:
            raise http.client.HTTPException(f"/metrics answered {resp.status}: {text[:200]}")
    finally:
        conn.close()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(ATTEMPTS + "{") or line.startswith(ATTEMPTS + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def pct(values: Sequence[float], q: float) -> float:
    """The nearest-rank q-quantile (0 < q <= 1) of `values`."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]


def med(values: Sequence[float]) -> float:
    """The median, NaN for nothing."""
    return statistics.median(values) if values else float("nan")


def spread(values: Sequence[float], digits: int = 3) -> str:
    """`min..max` of per-round values."""
    return f"{min(values):.{digits}f}..{max(values):.{digits}f}" if values else "–"


# ----------------------------------------------------------------------------- results and report

AIM_HIT_SPEEDUP = 5.0  # a hit at least 5x faster than the call it replaces (c1, p50)
AIM_GUARD_ADDED_MS = 0.2  # input guardrails (regex + pii on ~2 KB) add at most 0.2 ms at p50


def _no_check(_: Answer) -> str:
    return ""


@dataclass
class Round:
    """One round's samples of one case, ms."""

    total: list[float] = field(default_factory=list)  # request sent → last byte
    ttfb: list[float] = field(default_factory=list)  # streams: → first `data:` bytes
    timing: dict[str, list[float]] = field(default_factory=dict)  # server-timing stage -> durations

    @property
    def stage(self) -> list[float]:
        """The `input_guardrails` stage of each guarded answer."""
        return self.timing.get("input_guardrails", [])


@dataclass
class Case:
    """One kind of request: what it sends, how its answer is checked, what was measured."""

    key: str
    label: str
    stream: bool
    body: Callable[[], bytes]
    headers: dict[str, str] | None = None
    check: Callable[[Answer], str] = _no_check
    rounds: list[Round] = field(default_factory=list)
    failures: int = 0
    first_failure: str = ""

    def new_round(self) -> None:
        self.rounds.append(Round())

    def last_p50(self) -> float:
        return med(self.rounds[-1].total) if self.rounds else float("nan")

    def p50s(self) -> list[float]:
        return [med(r.total) for r in self.rounds]

    def p99s(self) -> list[float]:
        return [pct(r.total, 0.99) for r in self.rounds]

    def ttfb_p50s(self) -> list[float]:
        return [med(r.ttfb) for r in self.rounds]

    def timing(self, stage: str) -> float:
        """The median over rounds of the p50 of one `server-timing` stage (NaN: streams, the mock, hits)."""
        values = [med(r.timing[stage]) for r in self.rounds if r.timing.get(stage)]
        return med(values)

    def gw_total(self) -> str:
        """The gateway's own `total`, or a dash when its answers carry no `server-timing`."""
        total = self.timing("total")
        return "–" if math.isnan(total) else f"{total:.3f}"

    def samples(self) -> int:
        return sum(len(r.total) for r in self.rounds)


@dataclass
class RunInfo:
    """What the report says about the run itself."""

    command: str
    date: str
    load_before: str
    machine: str
    pinning: str
    rounds: int
    requests: int
    stream_requests: int
    pace_ms: float
    load_after: str = "?"
    duration_s: float = 0.0
    startup_s: float = 0.0
    other_cpu: list[float] = field(default_factory=list)


def _ratios(num: Case, den: Case) -> list[float]:
    return [a / b for a, b in zip(num.p50s(), den.p50s(), strict=True) if b > 0]


def _diffs(a: Case, b: Case, of: Callable[[Case], list[float]] = Case.p50s) -> list[float]:
    return [x - y for x, y in zip(of(a), of(b), strict=True)]


def _ms(x: float) -> str:
    return f"{x:.3f}"


def _met(ok: bool) -> str:
    return "**met**" if ok else "**missed**"


STAGES = ("auth", "input_guardrails", "ratelimit", "budget", "loadbalance", "model", "logging", "total")


def _stage(case: Case, stage: str) -> str:
    value = case.timing(stage)
    return "–" if math.isnan(value) else f"{value:.3f}"


def _stage_diff(case: Case, base: Case, stage: str) -> str:
    """`case`'s stage minus `base`'s; a stage only `case` has counts whole."""
    ours, theirs = case.timing(stage), base.timing(stage)
    if math.isnan(ours):
        return "–"
    return f"{ours - (0.0 if math.isnan(theirs) else theirs):+.3f}"


def render(info: RunInfo, cases: Mapping[str, Case], upstream: Mapping[str, float]) -> str:
    """The markdown report."""
    c = cases
    out: list[str] = ["# Issue 14: guardrails and response cache, c1 latency", ""]
    out += [
        f"- date: {info.date}; load average (1, 5, 15 min) before {info.load_before}, after {info.load_after}; "
        f"other processes used {med(info.other_cpu):.2f} CPUs on average during the rounds "
        f"(per round {', '.join(f'{x:.2f}' for x in info.other_cpu)})",
        f"- machine: {info.machine}; {info.pinning}",
        f"- command: `{info.command}` ({info.duration_s:.0f} s; gateway's first 200 after {info.startup_s:.2f} s)",
        f"- method: {info.rounds} rounds; per round and case {info.requests} non-streaming requests or "
        f"{info.stream_requests} streams, one at a time on one kept-alive connection per case, timed with "
        "`time.perf_counter` in a Python `http.client` client (its own ~0.05-0.1 ms per request is in every "
        "number, direct included); a warm-up round first. p50/p99: the median over rounds of each round's "
        "p50/p99. Added times and ratios: per round, then the median (min..max over rounds)",
        f"- the mock: non-streaming answers at once (it has no delay option); streams paced "
        f"{info.pace_ms:g} ms between its 21 events (`POST /__bench/pace?ms={info.pace_ms:g}`), ~20 ms",
        "",
    ]

    # 1. cache, non-streaming
    hit, miss, direct = c["cache-hit"], c["cache-miss"], c["cache-direct"]
    mh, dh = _ratios(miss, hit), _ratios(direct, hit)
    out += [
        "## 1. Cache hit vs the call it replaces (non-streaming, ~500-byte body)",
        "",
        "| request | p50 ms | p99 ms | gateway's `total` p50 ms | p50 per round |",
        "|---|---:|---:|---:|---|",
    ]
    for case in (direct, c["cache-plain"], miss, hit):
        out.append(
            f"| {case.label} | {_ms(med(case.p50s()))} | {_ms(med(case.p99s()))} | {case.gw_total()} | "
            f"{', '.join(_ms(x) for x in case.p50s())} |"
        )
    hits = hit.samples()
    up = upstream.get("cache-hit", 0.0)
    out += [
        "",
        f"- miss / hit (p50): **{med(mh):.2f}×** ({spread(mh, 2)}); direct / hit: **{med(dh):.2f}×** ({spread(dh, 2)})",
        f"- a miss against no cache header (key, lookup, and the store after the answer): "
        f"{med(_diffs(miss, c['cache-plain'])):+.3f} ms at p50 ({spread(_diffs(miss, c['cache-plain']))})",
        f"- upstream calls during the hit blocks: **{up:g}** for {hits:,} hits "
        "(`relaygate_upstream_attempts_total` on /metrics, read before and after every gateway block; "
        f"the same counter moved by {upstream.get('cache-miss', 0.0):g} for {miss.samples():,} misses and "
        f"{upstream.get('cache-plain', 0.0):g} for {c['cache-plain'].samples():,} requests without the header)",
        "",
    ]

    # 1b. cache, paced streams
    shit, smiss, sdirect = c["scache-hit"], c["scache-miss"], c["scache-direct"]
    smh, sdh = _ratios(smiss, shit), _ratios(sdirect, shit)
    out += [
        f"### 1b. The same with model time: `stream: true`, the mock pacing 21 events {info.pace_ms:g} ms apart",
        "",
        "| request | TTFB p50 ms | last byte p50 ms | last byte p99 ms |",
        "|---|---:|---:|---:|",
    ]
    for case in (sdirect, c["scache-plain"], smiss, shit):
        out.append(
            f"| {case.label} | {_ms(med(case.ttfb_p50s()))} | {_ms(med(case.p50s()))} | {_ms(med(case.p99s()))} |"
        )
    sup = upstream.get("scache-hit", 0.0)
    out += [
        "",
        f"- miss / hit (time to last byte, p50): **{med(smh):.1f}×** ({spread(smh, 1)}); direct / hit: "
        f"**{med(sdh):.1f}×** ({spread(sdh, 1)}); the hit replays the recorded events without pacing",
        f"- upstream calls during the streamed hit blocks: **{sup:g}** for {shit.samples():,} hits (misses: "
        f"{upstream.get('scache-miss', 0.0):g} for {smiss.samples():,}; no header: "
        f"{upstream.get('scache-plain', 0.0):g} for {c['scache-plain'].samples():,})",
        "",
    ]

    # 2. input guardrails
    plain, guard = c["guard-plain"], c["guard-on"]
    added = _diffs(guard, plain)
    stages = [s for r in guard.rounds for s in r.stage]
    stage_p50s = [med(r.stage) for r in guard.rounds]
    out += [
        "## 2. Input guardrail overhead (regex + pii, validate, enforce; ~2 KB prompt, both pass)",
        "",
        "| model | p50 ms | p99 ms | gateway's `total` p50 ms | p50 per round |",
        "|---|---:|---:|---:|---|",
    ]
    for case in (plain, guard):
        out.append(
            f"| {case.label} | {_ms(med(case.p50s()))} | {_ms(med(case.p99s()))} | {case.gw_total()} | "
            f"{', '.join(_ms(x) for x in case.p50s())} |"
        )
    out += [
        "",
        f"- added p50 (guarded − plain, per round, alternating request by request): **{med(added):+.3f} ms** "
        f"({', '.join(f'{x:+.3f}' for x in added)})",
        f"- the gateway's own `server-timing` `input_guardrails;dur=`: median **{med(stages):.3f} ms**, "
        f"p99 {pct(stages, 0.99) if stages else float('nan'):.3f} ms over {len(stages):,} answers "
        f"(per round {', '.join(_ms(x) for x in stage_p50s)})",
        "",
        "Where the added time goes, by the gateway's `server-timing` stages (median over rounds of each "
        "round's p50, ms; a stage's p50s do not add up to `total`'s):",
        "",
        "| model | " + " | ".join(f"`{s}`" for s in STAGES) + " |",
        "|---|" + "---:|" * len(STAGES),
    ]
    for case in (plain, guard):
        out.append(f"| {case.label} | " + " | ".join(_stage(case, s) for s in STAGES) + " |")
    out += [
        "| difference | " + " | ".join(_stage_diff(guard, plain, s) for s in STAGES) + " |",
        "",
    ]

    # 3. buffer mode
    bplain, bbuf = c["buf-plain"], c["buf-on"]
    badded = _diffs(bbuf, bplain)
    out += [
        f"## 3. Buffer mode on a 20-chunk stream (21 events, {info.pace_ms:g} ms apart)",
        "",
        "| model | TTFB p50 ms | last byte p50 ms | last byte p99 ms |",
        "|---|---:|---:|---:|",
    ]
    for case in (bplain, bbuf):
        out.append(
            f"| {case.label} | {_ms(med(case.ttfb_p50s()))} | {_ms(med(case.p50s()))} | {_ms(med(case.p99s()))} |"
        )
    out += [
        "",
        f"- added time to last byte (p50, buffered − plain, per round, alternating): **{med(badded):+.3f} ms** "
        f"({', '.join(f'{x:+.3f}' for x in badded)})",
        f"- under buffer, the first `data:` bytes arrive with the rest: TTFB {_ms(med(bbuf.ttfb_p50s()))} ms "
        f"against {_ms(med(bplain.ttfb_p50s()))} ms relayed",
        "",
    ]

    # aims
    out += [
        "## Aims",
        "",
        f"- cache hit ≥ {AIM_HIT_SPEEDUP:g}× faster than the call it replaces, at c1: against the gateway's miss "
        f"(upstream call + gateway) {med(mh):.2f}× on the µs mock → {_met(med(mh) >= AIM_HIT_SPEEDUP)}; with "
        f"~{20 * info.pace_ms:g} ms of model time {med(smh):.1f}× → {_met(med(smh) >= AIM_HIT_SPEEDUP)}; "
        f"against the mock alone {med(dh):.2f}× (µs mock) and {med(sdh):.1f}× (paced)",
        f"- hits make no upstream call: {up:g} + {sup:g} calls during hit blocks → {_met(up == 0 and sup == 0)}",
        f"- input guardrails add ≤ {AIM_GUARD_ADDED_MS:g} ms at p50: {med(added):+.3f} ms → "
        f"{_met(med(added) <= AIM_GUARD_ADDED_MS)} (the stage itself: {med(stages):.3f} ms)",
        f"- buffer mode adds {med(badded):+.3f} ms to the last byte of a {20 * info.pace_ms:g} ms stream (no aim "
        "set; it is the time to check and replay the held events)",
        "",
        "## Per round",
        "",
        "| round | other CPU | hit / miss / direct p50 ms | miss/hit | guard added p50 ms | `input_guardrails` "
        "p50 ms | buffer added TTLB ms | streamed hit / miss TTLB ms |",
        "|---:|---:|---|---:|---:|---:|---:|---|",
    ]
    for i in range(len(hit.rounds)):
        other = info.other_cpu[i] if i < len(info.other_cpu) else float("nan")
        out.append(
            f"| {i + 1} | {other:.2f} | {_ms(hit.p50s()[i])} / {_ms(miss.p50s()[i])} / {_ms(direct.p50s()[i])} | "
            f"{mh[i]:.2f} | {added[i]:+.3f} | {_ms(stage_p50s[i])} | {badded[i]:+.3f} | "
            f"{_ms(shit.p50s()[i])} / {_ms(smiss.p50s()[i])} |"
        )
    out += ["", "## Checks", ""]
    for case in cases.values():
        state = "ok" if not case.failures else f"⚠ {case.failures} unexpected answers, first: {case.first_failure}"
        out.append(f"- `{case.key}` ({case.label}): {case.samples():,} measured; {state}")
    return "\n".join(out) + "\n"
