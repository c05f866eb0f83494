"""The report's rate-limit section: what one matching rate-limit rule adds to a request, per limits backend.

`bench-openai/gpt-4o-limited` is a second integration of the same account and upstream model as
`bench-openai/gpt-4o`; one `requests_per_minute` rule (per user, a limit never reached) matches it and
nothing else. Each `rl_*` run follows its plain twin (`ns_*`) on the same Relaygate process within every
round, so the difference is the cost of matching the rule, reserving (in memory, or one Lua script
round trip to Redis) and settling. Two Relaygate processes are compared: `relaygate` (the default
in-process memory backend) and `relaygate-redis` (`relaygate serve --redis-url ...`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from configs import LIMITED_MODEL, PLAIN_MODEL, RL_RULE_ID, RL_UNIT
from report import (
    NOISY_CPU,
    RunData,
    TargetInfo,
    cpu_us_per_req,
    errors,
    fmt_added,
    fmt_ms,
    fmt_num,
    fmt_ratio,
    median,
    p50,
    p99,
    rps,
    table,
)

LAT_PLAIN, LAT_RL = "ns_c1", "rl_c1"
TPUT_PLAIN, TPUT_RL = "ns_c16", "rl_c16"
RL_KEYS = (LAT_RL, TPUT_RL)
ADDED_AIM_MS = 0.3  # one matching rule may add under 0.3 ms at p50, c1 (Redis on loopback)


def _rl_targets(data: RunData) -> list[TargetInfo]:
    return [t for t in data.targets if any(data.runs(t.name, key) for key in RL_KEYS)]


def _us(ms: float) -> str:
    return "–" if math.isnan(ms) else f"{ms * 1000:+,.1f} µs"


def paired_added_ms(data: RunData, name: str, which: str = "p50") -> list[float]:
    """Per round: rl − plain latency at c1 on the same process (the two runs were back to back)."""
    plain, limited = data.runs(name, LAT_PLAIN), data.runs(name, LAT_RL)
    if which == "p50":
        return [r.wrk.p50_ms - p.wrk.p50_ms for p, r in zip(plain, limited, strict=False)]
    return [r.wrk.p99_ms - p.wrk.p99_ms for p, r in zip(plain, limited, strict=False)]


def added_ms(data: RunData, name: str) -> tuple[float, float]:
    """(added p50, added p99) at c1: the median over rounds of the back-to-back differences."""
    return median(paired_added_ms(data, name, "p50")), median(paired_added_ms(data, name, "p99"))


def backend_cpu_us_per_req(data: RunData, name: str, key: str) -> float:
    """Median CPU µs per request the Redis server spent (only measured for a Redis the benchmark started)."""
    values = [
        m.backend_cpu_s / m.wrk.requests * 1e6
        for m in data.runs(name, key)
        if m.backend_cpu_s is not None and m.wrk.requests
    ]
    return median(values)


def rl_table(data: RunData) -> str:
    """Per Relaygate target: plain vs rate-limited model at c1 (latency) and c16 (throughput, CPU)."""
    rows = []
    for info in _rl_targets(data):
        a50, a99 = added_ms(data, info.name)
        stage = "–"
        if info.rl_stage_us is not None:
            stage = f"{info.rl_stage_us[0]:,.0f} / {info.rl_stage_us[1]:,.0f}"
        c_plain, c_rl = cpu_us_per_req(data, info.name, TPUT_PLAIN), cpu_us_per_req(data, info.name, TPUT_RL)
        rows.append(
            [
                info.name,
                info.limits_backend or "?",
                f"{fmt_ms(p50(data, info.name, LAT_PLAIN))} / {fmt_ms(p99(data, info.name, LAT_PLAIN))}",
                f"{fmt_ms(p50(data, info.name, LAT_RL))} / {fmt_ms(p99(data, info.name, LAT_RL))}",
                f"**{fmt_added(a50)}** / {fmt_added(a99)}",
                stage,
                f"{fmt_num(rps(data, info.name, TPUT_PLAIN))} → {fmt_num(rps(data, info.name, TPUT_RL))} "
                f"(×{fmt_ratio(rps(data, info.name, TPUT_RL), rps(data, info.name, TPUT_PLAIN))})",
                f"{fmt_num(c_plain)} → {fmt_num(c_rl)}",
                fmt_num(backend_cpu_us_per_req(data, info.name, TPUT_RL), 1),
                errors(data, info.name, (LAT_PLAIN, LAT_RL, TPUT_PLAIN, TPUT_RL)),
            ]
        )
    header = [
        "target",
        "limits backend",
        f"p50 / p99 ms c1 `{PLAIN_MODEL}`",
        f"p50 / p99 ms c1 `{LIMITED_MODEL}`",
        "added p50 / p99 ms c1",
        "`ratelimit` stage p50 / p99 µs",
        "rps c16 plain → limited",
        "Relaygate CPU µs/req c16",
        "Redis CPU µs/req c16",
        "errors",
    ]
    return table(header, rows, align_left=2)


def _noisy(data: RunData, name: str) -> bool:
    runs = [*data.runs(name, LAT_PLAIN), *data.runs(name, LAT_RL)]
    return any(m.other_cpu > NOISY_CPU for m in runs)


def rl_summary(data: RunData, info: TargetInfo) -> str:
    """The aim check for one target, with the per-round differences."""
    name = info.name
    a50, a99 = added_ms(data, name)
    paired = paired_added_ms(data, name)
    diff_of_medians = p50(data, name, LAT_RL) - p50(data, name, LAT_PLAIN)
    if math.isnan(a50):
        verdict = "cannot tell (needs ns_c1 and rl_c1 measured on this target)"
    elif a50 < ADDED_AIM_MS:
        verdict = f"**met** ({fmt_added(a50)} ms < {ADDED_AIM_MS:g} ms)"
    else:
        verdict = f"**not met** ({fmt_added(a50)} ms ≥ {ADDED_AIM_MS:g} ms)"
    if _noisy(data, name):
        verdict += "; ⚠ other processes used CPU during these runs (see Notes): rerun on a quiet machine"
    line = (
        f"- **{name} ({info.limits_backend or '?'} backend): one matching rule adds {_us(a50)} at p50, "
        f"{_us(a99)} at p99 (c1)**; aim under {ADDED_AIM_MS:g} ms at p50: {verdict}."
    )
    if len(paired) > 1:
        line += (
            " Per round (rl − plain p50, back to back): "
            + ", ".join(_us(x) for x in paired)
            + f"; difference of the medians: {_us(diff_of_medians)}."
        )
    return line


def rl_notes(data: RunData) -> str:
    """Why a backend is missing, if it is."""
    names = {t.name for t in _rl_targets(data)}
    missing = []
    if "relaygate-redis" not in names:
        why = next((n for n in data.notes if n.startswith("relaygate-redis")), "relaygate-redis was not run")
        missing.append(f"- Redis backend not measured: {why}")
    if not any(t.limits_backend == "memory" for t in _rl_targets(data)):
        missing.append("- memory backend not measured (no `relaygate` target ran rl_*).")
    return "\n".join(missing)


def rl_section(data: RunData) -> str:
    """The table, one aim line per target, and what was not measured."""
    parts = [rl_table(data), *(rl_summary(data, info) for info in _rl_targets(data))]
    notes = rl_notes(data)
    if notes:
        parts.append(notes)
    return "\n\n".join(parts)


RL_SECTIONS: list[tuple[str, str, Callable[[RunData], str], tuple[str, ...]]] = [
    (
        "Rate-limit overhead (one matching rule, non-streaming)",
        f'The same Relaygate process and body, `"model": "{PLAIN_MODEL}"` (ns_c1, ns_c16; matches no rule) vs '
        f'`"model": "{LIMITED_MODEL}"` (rl_c1, rl_c16; the same upstream model, matched by rule `{RL_RULE_ID}`: '
        f"{RL_UNIT}, per user, a limit never reached), each rl run right after its plain twin in every round. "
        "added = limited − plain on the same process at c1: the median over rounds of the back-to-back "
        "differences. `ratelimit` stage = Relaygate's own `server-timing` for the reserve (match, estimate, "
        "reserve call), sampled over sequential probe requests; the settle runs after the answer, off the "
        "request's path. Redis CPU is the Redis server's, for a Redis the benchmark started.",
        rl_section,
        RL_KEYS,
    ),
]
