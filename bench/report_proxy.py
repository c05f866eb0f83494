"""The report's custom-endpoint sections: JSON POST through `/proxy-api/...` and 10 MB downloads."""

from __future__ import annotations

import math
from collections.abc import Callable

from report import (
    RunData,
    TargetInfo,
    errors,
    fmt_added,
    fmt_ms,
    fmt_num,
    fmt_ratio,
    latency_table,
    median,
    p50,
    p99,
    row_label,
    table,
    throughput_table,
)

PX_KEYS = ("px_c1", "px_c16", "px_c64")
DL_KEYS = ("dl10m_c1", "dl10m_c8")
DOWNLOAD_MB = 10.0  # the download scenarios' body, MB (10^6 bytes)
ADDED_P50_AIM = 3.0  # Relaygate's added p50 at c1 within this many times nginx's
GROWTH_AIM_MB = 10.0  # RSS growth per concurrent download should stay well under this


def _proxied(data: RunData) -> list[TargetInfo]:
    return [t for t in data.targets if t.name != "direct"]


def added_p50_ratio_line(data: RunData) -> str:
    """Each Relaygate target's added p50 at c1 as a multiple of nginx's (the aim: ≤ 3×)."""
    d50 = p50(data, "direct", "px_c1")
    n_added = p50(data, "nginx", "px_c1") - d50
    parts = []
    for info in _proxied(data):
        if info.name == "nginx":
            continue
        added = p50(data, info.name, "px_c1") - d50
        if math.isnan(added) or math.isnan(n_added) or n_added <= 0:
            parts.append(f"{info.name} added p50 {fmt_added(added)} ms (no nginx reference to compare with)")
            continue
        ratio = added / n_added
        verdict = "within the aim" if ratio <= ADDED_P50_AIM else "over the aim"
        parts.append(
            f"**{info.name} added p50 at c1 = {ratio:.1f}× nginx's** ({fmt_added(added)} vs {fmt_added(n_added)} ms; "
            f"aim ≤ {ADDED_P50_AIM:g}×: {verdict})"
        )
    return " ".join(parts)


def json_post_section(data: RunData) -> str:
    """Throughput at c16/c64, then latency and added latency at c1/c16/c64, then the c1 aim line."""
    return "\n\n".join(
        [
            throughput_table(data, PX_KEYS[1:]),
            latency_table(data, PX_KEYS),
            added_p50_ratio_line(data),
        ]
    )


def mb_per_s(data: RunData, target: str, key: str) -> float:
    """Median over rounds of the MB/s wrk read."""
    return median([m.wrk.mb_per_s for m in data.runs(target, key)])


def cpu_ms_per_gb(data: RunData, target: str, key: str) -> float:
    """CPU ms the target spent per GB relayed (= µs per MB)."""
    return median(
        [
            m.cpu_s / (m.wrk.bytes_read / 1e9) * 1000
            for m in data.runs(target, key)
            if m.cpu_s is not None and m.wrk.bytes_read
        ]
    )


def download_table(data: RunData) -> str:
    """MB/s at c1 and c8 with ×direct / ×nginx, download latency, added p50 at c1, CPU per GB."""
    rows = []
    for info in data.targets:
        row = [row_label(data, info, DL_KEYS)]
        for key in DL_KEYS:
            value = mb_per_s(data, info.name, key)
            row += [
                fmt_num(value),
                fmt_ratio(value, mb_per_s(data, "direct", key)),
                fmt_ratio(value, mb_per_s(data, "nginx", key)),
            ]
        for key in DL_KEYS:
            row.append(f"{fmt_ms(p50(data, info.name, key))} / {fmt_ms(p99(data, info.name, key))}")
        added = p50(data, info.name, DL_KEYS[0]) - p50(data, "direct", DL_KEYS[0])
        row.append(fmt_added(added) if info.name != "direct" else "–")
        row.append(fmt_num(cpu_ms_per_gb(data, info.name, DL_KEYS[1])) if info.name != "direct" else "–")
        row.append(errors(data, info.name, DL_KEYS))
        rows.append(row)
    header = ["target"]
    for key in DL_KEYS:
        c = key.split("_")[-1]
        header += [f"MB/s {c}", "×direct", "×nginx"]
    header += [
        "download p50 / p99 ms c1",
        "download p50 / p99 ms c8",
        "added p50 ms c1",
        "CPU ms/GB c8",
        "errors",
    ]
    return table(header, rows)


def memory_table(data: RunData) -> str:
    """Each proxy's RSS before the download runs vs its peak during them (worst round)."""
    rows = []
    for info in _proxied(data):
        for key in DL_KEYS:
            runs = [m for m in data.runs(info.name, key) if m.rss_before_mib is not None and m.rss_peak_mib is not None]
            if not runs:
                continue
            worst = max(runs, key=lambda m: (m.rss_peak_mib or 0.0) - (m.rss_before_mib or 0.0))
            before, peak = worst.rss_before_mib or 0.0, worst.rss_peak_mib or 0.0
            conns = int(key.split("_c")[-1])
            per_download_mb = max(0.0, peak - before) * 1.048576 / conns
            share = per_download_mb / DOWNLOAD_MB
            verdict = "ok" if per_download_mb < GROWTH_AIM_MB else "⚠"
            if per_download_mb < GROWTH_AIM_MB / 4:
                verdict = "flat"
            rows.append(
                [
                    info.name,
                    key,
                    fmt_num(before, 1),
                    fmt_num(peak, 1),
                    f"{peak - before:+,.1f}",
                    f"{per_download_mb:,.2f}",
                    f"{share:.0%} {verdict}",
                ]
            )
    header = [
        "target",
        "scenario",
        "RSS before MiB",
        "peak RSS MiB",
        "growth MiB",
        "growth per concurrent download MB",
        "÷ 10 MB body",
    ]
    method = next((t.rss_method for t in data.targets if t.rss_method), "")
    how = {
        "VmHWM": "VmHWM, the kernel's per-process high-water mark, reset (`/proc/<pid>/clear_refs`) before the "
        "warm-up and summed over the tree: exact for one process (Relaygate), an upper bound for nginx's master "
        "+ worker"
    }
    note = f"\n\nPeak read as {how.get(method, method)}." if method else ""
    return (table(header, rows, align_left=2) if rows else "(no proxy process measured)") + note


PROXY_SECTIONS: list[tuple[str, str, Callable[[RunData], str], tuple[str, ...]]] = [
    (
        "Custom endpoint, small JSON POST (`/proxy-api/bench-proxy/mock/echo-json`)",
        "A ~120-byte JSON POST answered with ~300 bytes of JSON. direct = wrk → mock `/echo-json`; nginx "
        "maps `location /proxy-api/bench-proxy/mock/` onto the mock; Relaygate serves the custom endpoint "
        "(auth, access check, upstream credential injection, request log). added = proxied − direct.",
        json_post_section,
        PX_KEYS,
    ),
    (
        "Custom endpoint, streamed 10 MB download (`GET …/download/10000000`)",
        "MB/s = response bytes wrk read ÷ run time (MB = 10^6 bytes); download latency = whole 10 MB "
        "response; CPU ms/GB = the proxy's CPU time ÷ GB relayed.",
        download_table,
        DL_KEYS,
    ),
    (
        "Custom endpoint, memory during the 10 MB downloads",
        "RSS before = the proxy's process tree right before the scenario's warm-up; peak = its highest "
        "RSS over warm-up + measured run (worst round). A proxy that streams keeps this flat; one that "
        "buffered whole bodies would grow by ~10 MB per concurrent download (the aim: well under that). "
        "Verdict: flat < 2.5 MB per download, ok < 10 MB, ⚠ above.",
        memory_table,
        DL_KEYS,
    ),
]
