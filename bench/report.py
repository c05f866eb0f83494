"""The benchmark's data model (scenarios, measurements) and its markdown tables."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from wrk import WrkResult


@dataclass(frozen=True, slots=True)
class Scenario:
    """One wrk load shape."""

    key: str
    title: str
    stream: bool
    connections: int
    pace_ms: float
    latency_run: bool  # measured for the latency duration instead of the throughput duration
    kind: str = "chat"  # chat: /v1/chat/completions; proxy: JSON POST, download: 10 MB GET (custom endpoint);
    # vm: chat via the virtual model, rl: chat to the rate-limited model (Relaygate only), each run right
    # after `base` on the same process
    base: str = ""


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("ns_c1", "non-streaming c1", False, 1, 0.0, True),
    Scenario("vm_c1", "virtual model c1", False, 1, 0.0, True, "vm", "ns_c1"),
    Scenario("ns_c16", "non-streaming c16", False, 16, 0.0, False),
    Scenario("vm_c16", "virtual model c16", False, 16, 0.0, False, "vm", "ns_c16"),
    Scenario("rl_c1", "rate-limited model c1", False, 1, 0.0, True, "rl", "ns_c1"),
    Scenario("rl_c16", "rate-limited model c16", False, 16, 0.0, False, "rl", "ns_c16"),
    Scenario("ns_c64", "non-streaming c64", False, 64, 0.0, False),
    Scenario("stp_c16", "streaming paced c16", True, 16, 2.0, False),
    Scenario("stp_c64", "streaming paced c64", True, 64, 2.0, False),
    Scenario("stb_c16", "streaming burst c16", True, 16, 0.0, False),
    Scenario("stb_c64", "streaming burst c64", True, 64, 0.0, False),
    Scenario("px_c1", "proxy JSON POST c1", False, 1, 0.0, True, "proxy"),
    Scenario("px_c16", "proxy JSON POST c16", False, 16, 0.0, False, "proxy"),
    Scenario("px_c64", "proxy JSON POST c64", False, 64, 0.0, False, "proxy"),
    Scenario("dl10m_c1", "proxy 10 MB download c1", False, 1, 0.0, False, "download"),
    Scenario("dl10m_c8", "proxy 10 MB download c8", False, 8, 0.0, False, "download"),
)
SCENARIO_BY_KEY = {s.key: s for s in SCENARIOS}
NOISY_CPU = 0.15  # other processes' CPU (in CPUs) above which a run is reported as noisy


@dataclass(frozen=True, slots=True)
class Measurement:
    """One measured wrk run plus the CPU the target's process tree used meanwhile."""

    wrk: WrkResult
    cpu_s: float | None
    other_cpu: float = 0.0  # CPUs' worth of time used by processes outside the benchmark meanwhile
    rss_before_mib: float | None = None  # download scenarios: the target's RSS before the warm-up
    rss_peak_mib: float | None = None  # ... and its peak over warm-up + measured run
    backend_cpu_s: float | None = None  # CPU of the Redis server the target uses (rl_* on relaygate-redis)


@dataclass
class TargetInfo:
    """What the report knows about one target."""

    name: str
    label: str
    startup_s: float | None = None
    rss_idle_mib: float | None = None
    rss_load_mib: float | None = None
    processes: int | None = None
    events_per_stream: int | None = None
    ttfb_p50_ms: float | None = None
    ttfb_p99_ms: float | None = None
    stream_total_p50_ms: float | None = None
    failed: str | None = None  # why the target was not (fully) measured
    skipped: dict[str, str] = field(default_factory=dict)  # scenario kind -> why it was not measured
    rss_method: str = ""  # how peak RSS was read (VmHWM or sampling)
    notes: list[str] = field(default_factory=list)
    scope: frozenset[str] | None = None  # the only scenario keys this target runs (None: all)
    limits_backend: str = ""  # Relaygate: "memory" or "redis" (the rl_* comparison)
    rl_stage_us: tuple[float, float] | None = None  # server-timing `ratelimit` p50, p99 (µs) from the rl probe

    def runs_scenario(self, key: str) -> bool:
        """Whether this target is meant to run scenario `key` at all."""
        return self.scope is None or key in self.scope


@dataclass
class RunData:
    """Everything one run produced."""

    meta: list[tuple[str, str]]
    targets: list[TargetInfo]
    results: dict[str, dict[str, list[Measurement]]]  # target -> scenario -> one per round
    rounds: int
    notes: list[str] = field(default_factory=list)  # run-level notes (e.g. why the Redis target was skipped)

    def view(self, keys: Sequence[str]) -> RunData:
        """The same run with only the targets meant to run some of `keys` (all targets when `keys` is empty)."""
        if not keys:
            return self
        targets = [t for t in self.targets if any(t.runs_scenario(k) for k in keys)]
        return RunData(self.meta, targets, self.results, self.rounds, self.notes)

    def runs(self, target: str, scenario: str) -> list[Measurement]:
        """The rounds measured for (target, scenario)."""
        return self.results.get(target, {}).get(scenario, [])


# ----------------------------------------------------------------------------- aggregation


def median(values: Sequence[float]) -> float:
    """Median of the values that are not NaN (NaN when none are)."""
    clean = [v for v in values if not math.isnan(v)]
    return statistics.median(clean) if clean else math.nan


def rps(data: RunData, target: str, scenario: str) -> float:
    """Median requests (or streams) per second over rounds."""
    return median([m.wrk.rps for m in data.runs(target, scenario)])


def p50(data: RunData, target: str, scenario: str) -> float:
    """Median over rounds of the p50 latency, ms."""
    return median([m.wrk.p50_ms for m in data.runs(target, scenario)])


def p99(data: RunData, target: str, scenario: str) -> float:
    """Median over rounds of the p99 latency, ms."""
    return median([m.wrk.p99_ms for m in data.runs(target, scenario)])


def cpu_us_per_req(data: RunData, target: str, scenario: str) -> float:
    """Median CPU microseconds the target spent per request."""
    values = [
        m.cpu_s / m.wrk.requests * 1e6 for m in data.runs(target, scenario) if m.cpu_s is not None and m.wrk.requests
    ]
    return median(values)


def errors(data: RunData, target: str, scenarios: Sequence[str]) -> str:
    """Error counts over all rounds of `scenarios`, '0' when clean."""
    parts = []
    for key in scenarios:
        runs = data.runs(target, key)
        total = sum(m.wrk.errors for m in runs)
        if total:
            texts = "; ".join(t for t in (m.wrk.error_text() for m in runs) if t)
            parts.append(f"{key}: {texts}")
    return "; ".join(parts) if parts else "0"


# ----------------------------------------------------------------------------- formatting


def fmt_num(value: float | None, digits: int = 0) -> str:
    """A number with thousands separators, '–' when missing."""
    if value is None or math.isnan(value):
        return "–"
    return f"{value:,.{digits}f}"


def fmt_ms(value: float | None) -> str:
    """Milliseconds: 3 decimals below 10 ms, 2 above."""
    if value is None or math.isnan(value):
        return "–"
    return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.2f}"


def fmt_added(value: float) -> str:
    """A signed difference in ms, '–' when missing."""
    if math.isnan(value):
        return "–"
    return f"{value:+,.3f}" if abs(value) < 10 else f"{value:+,.2f}"


def fmt_ratio(num: float, den: float) -> str:
    """num / den with 3 decimals, '–' when either is missing."""
    if math.isnan(num) or math.isnan(den) or den == 0:
        return "–"
    return f"{num / den:.3f}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]], align_left: int = 1) -> str:
    """A markdown table; the first `align_left` columns left-aligned, the rest right-aligned."""
    sep = [":---" if i < align_left else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def row_label(data: RunData, info: TargetInfo, scenarios: Sequence[str]) -> str:
    """The target column: its label, ⚠ when it had errors, failed, or skipped some of these scenarios."""
    label = info.label
    if errors(data, info.name, scenarios) != "0":
        label += " ⚠ errors"
    if info.failed:
        label += " ⚠ " + info.failed
    for kind in sorted({SCENARIO_BY_KEY[k].kind for k in scenarios} & info.skipped.keys()):
        label += f" ⚠ {kind} not measured"
    return label


def _has(data: RunData, name: str) -> bool:
    return any(data.runs(name, s.key) for s in SCENARIOS)


# ----------------------------------------------------------------------------- tables


def throughput_table(data: RunData, keys: Sequence[str] = ("ns_c16", "ns_c64")) -> str:
    """Request throughput at two concurrencies with ×direct and ×nginx ratios."""
    c = [key.split("_")[-1] for key in keys]
    rows = []
    for info in data.targets:
        row = [row_label(data, info, keys)]
        for key in keys:
            value = rps(data, info.name, key)
            row += [
                fmt_num(value),
                fmt_ratio(value, rps(data, "direct", key)),
                fmt_ratio(value, rps(data, "nginx", key)),
            ]
        for key in keys:
            row.append(f"{fmt_ms(p50(data, info.name, key))} / {fmt_ms(p99(data, info.name, key))}")
        row.append(fmt_num(cpu_us_per_req(data, info.name, keys[1])) if info.name != "direct" else "–")
        row.append(errors(data, info.name, keys))
        rows.append(row)
    header = [
        "target",
        f"rps {c[0]}",
        "×direct",
        "×nginx",
        f"rps {c[1]}",
        "×direct",
        "×nginx",
        f"p50 / p99 ms {c[0]}",
        f"p50 / p99 ms {c[1]}",
        f"CPU µs/req {c[1]}",
        "errors",
    ]
    return table(header, rows)


def latency_table(data: RunData, keys: Sequence[str] = ("ns_c1", "ns_c16", "ns_c64")) -> str:
    """Latency per concurrency: direct, then each proxy's absolute and added (proxied − direct) p50/p99."""
    proxied = [t for t in data.targets if t.name != "direct" and _has(data, t.name)]
    header = ["concurrency", "direct p50 / p99"]
    for info in proxied:
        header += [f"{info.name} p50 / p99", f"{info.name} added p50 / p99"]
    rows = []
    for key in keys:
        d50, d99 = p50(data, "direct", key), p99(data, "direct", key)
        row = [SCENARIO_BY_KEY[key].title.split()[-1], f"{fmt_ms(d50)} / {fmt_ms(d99)}"]
        for info in proxied:
            t50, t99 = p50(data, info.name, key), p99(data, info.name, key)
            flag = " ⚠ errors" if errors(data, info.name, [key]) != "0" else ""
            row += [f"{fmt_ms(t50)} / {fmt_ms(t99)}{flag}", f"{fmt_added(t50 - d50)} / {fmt_added(t99 - d99)}"]
        rows.append(row)
    c1 = [f"{info.name} {fmt_num(rps(data, info.name, keys[0]))} rps" for info in data.targets if _has(data, info.name)]
    return table(header, rows) + "\n\nc1 throughput (one connection, sequential): " + ", ".join(c1) + "."


def stream_table(data: RunData, paced: bool) -> str:
    """Streaming events/s (streams/s × events per stream) with ×direct and ×nginx."""
    prefix = "stp" if paced else "stb"
    keys = [f"{prefix}_c16", f"{prefix}_c64"]

    def events(name: str, key: str) -> float:
        info = next((t for t in data.targets if t.name == name), None)
        if info is None or not info.events_per_stream:
            return math.nan
        return rps(data, name, key) * info.events_per_stream

    rows = []
    for info in data.targets:
        row = [row_label(data, info, keys)]
        for key in keys:
            ev = events(info.name, key)
            row += [
                fmt_num(rps(data, info.name, key)),
                fmt_num(ev),
                fmt_ratio(ev, events("direct", key)),
                fmt_ratio(ev, events("nginx", key)),
            ]
        row.append(f"{fmt_ms(p50(data, info.name, keys[1]))} / {fmt_ms(p99(data, info.name, keys[1]))}")
        if paced:
            row.append(f"{fmt_ms(info.ttfb_p50_ms)} / {fmt_ms(info.ttfb_p99_ms)}")
        per_event = cpu_us_per_req(data, info.name, keys[1])
        if info.events_per_stream:
            per_event /= info.events_per_stream
        row.append(fmt_num(per_event, 1) if info.name != "direct" else "–")
        row.append(str(info.events_per_stream or "–"))
        row.append(errors(data, info.name, keys))
        rows.append(row)
    header = ["target"]
    for key in keys:
        c = key.split("_")[1]
        header += [f"streams/s {c}", f"events/s {c}", "×direct", "×nginx"]
    header.append("stream p50 / p99 ms c64")
    if paced:
        header.append("TTFB p50 / p99 ms c1")
    header += ["CPU µs/event c64", "events/stream", "errors"]
    return table(header, rows)


def startup_table(data: RunData) -> str:
    """Startup time and memory of each proxy's process tree."""
    rows = []
    for info in data.targets:
        if info.name == "direct":
            continue
        rows.append(
            [
                info.label + (f" ⚠ {info.failed}" if info.failed else ""),
                fmt_num(info.startup_s, 2),
                fmt_num(info.rss_idle_mib, 1),
                fmt_num(info.rss_load_mib, 1),
                str(info.processes or "–"),
            ]
        )
    header = ["target", "startup s (to first proxied 200)", "RSS idle MiB", "RSS after load MiB", "processes"]
    return table(header, rows)


def rounds_table(data: RunData) -> str:
    """Per-round rps of every measured scenario, to judge noise."""
    measured = [s for s in SCENARIOS if any(data.runs(t.name, s.key) for t in data.targets)]
    rows = []
    for info in data.targets:
        row = [info.name]
        for s in measured:
            row.append(", ".join(fmt_num(m.wrk.rps) for m in data.runs(info.name, s.key)) or "–")
        rows.append(row)
    return table(["target", *(s.key for s in measured)], rows)


def render(data: RunData) -> str:
    """The whole markdown report."""
    from report_proxy import PROXY_SECTIONS  # report_proxy and report_vm build on this module's helpers
    from report_rl import RL_SECTIONS
    from report_vm import VM_SECTIONS

    out = ["# Relaygate benchmark", ""]
    out += [f"- **{k}**: {v}" for k, v in data.meta]
    sections: list[tuple[str, str, Callable[[RunData], str], tuple[str, ...]]] = [
        (
            "Non-streaming chat completions (throughput)",
            "rps = requests/s (median over rounds); ×direct / ×nginx = rps ÷ that target's rps at the same "
            "concurrency; CPU µs/req = CPU time of the proxy's process tree ÷ requests.",
            throughput_table,
            ("ns_c16", "ns_c64"),
        ),
        (
            "Latency and added latency (non-streaming, ms)",
            "added = proxied − direct at the same concurrency (p50 and p99 of wrk's latency distribution).",
            latency_table,
            ("ns_c1", "ns_c16", "ns_c64"),
        ),
        *VM_SECTIONS,
        *RL_SECTIONS,
        (
            "Streaming, paced upstream (2 ms between events)",
            "events/s = streams/s × events per stream (as the client receives them, [DONE] included); "
            "stream latency is the whole stream; TTFB = request sent → first `data:` bytes at c1.",
            lambda d: stream_table(d, paced=True),
            ("stp_c16", "stp_c64"),
        ),
        (
            "Streaming, burst upstream (all events back to back)",
            "",
            lambda d: stream_table(d, paced=False),
            ("stb_c16", "stb_c64"),
        ),
        *PROXY_SECTIONS,
        (
            "Startup and memory (process tree of the proxy)",
            "startup = process start → first successful proxied 200; RSS read from /proc after idle start and "
            "after all load.",
            startup_table,
            (),
        ),
    ]
    measured = {key for per in data.results.values() for key, runs in per.items() if runs}
    for title, note, render_fn, keys in sections:
        if keys and not measured.intersection(keys):
            continue
        out += ["", f"## {title}", ""]
        if note:
            out += [note, ""]
        out.append(render_fn(data.view(keys)))
    if data.rounds > 1:
        out += ["", "## Per-round throughput (requests or streams per second)", "", rounds_table(data)]
    notes = [f"- {n}" for n in data.notes] + [f"- {t.name}: {n}" for t in data.targets for n in t.notes]
    noisy = [
        f"{t.name} {key} {m.other_cpu:.2f}"
        for t in data.targets
        for key, runs in data.results.get(t.name, {}).items()
        for m in runs
        if m.other_cpu > NOISY_CPU
    ]
    if noisy:
        notes.append(
            "- ⚠ noisy machine: processes outside the benchmark used more than "
            f"{NOISY_CPU:.2f} CPU during these runs (CPUs' worth): " + ", ".join(noisy)
        )
    notes += [f"- {t.name}: not fully measured: {t.failed}" for t in data.targets if t.failed]
    notes += [
        f"- {t.name}: {kind} scenarios not measured: {why}" for t in data.targets for kind, why in t.skipped.items()
    ]
    if notes:
        out += ["", "## Notes", "", *notes]
    return "\n".join(out) + "\n"
