"""The report's virtual-model section: Relaygate calling `bench-openai/gpt-4o` directly vs via `bench-vm/chat`.

`bench-vm/chat` is a weight-based virtual model whose only target is `bench-openai/gpt-4o`, so the two
paths reach the same upstream with the same body and differ only by the virtual-model routing. Each
`vm_*` run follows its plain twin (`ns_*`) on the same Relaygate process within every round.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from configs import PLAIN_MODEL, VM_MODEL
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

LAT_PLAIN, LAT_VM = "ns_c1", "vm_c1"
TPUT_PLAIN, TPUT_VM = "ns_c16", "vm_c16"
VM_KEYS = (LAT_VM, TPUT_VM)
EXTRA_AIM = 0.10  # the virtual model may add under 10% to the overhead of calling its target directly


def _vm_targets(data: RunData) -> list[TargetInfo]:
    return [t for t in data.targets if any(data.runs(t.name, key) for key in VM_KEYS)]


def extra_share(plain_added: float, vm_added: float) -> float:
    """(vm_added − plain_added) / plain_added; NaN when the direct-model overhead is unknown or not positive."""
    if math.isnan(plain_added) or math.isnan(vm_added) or plain_added <= 0:
        return math.nan
    return (vm_added - plain_added) / plain_added


def _pct(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:+.1%}"


def _us(ms: float) -> str:
    return "–" if math.isnan(ms) else f"{ms * 1000:+,.1f} µs"


def vm_table(data: RunData) -> str:
    """Per Relaygate target: the plain model and the virtual model side by side (c1 latency, c16 throughput)."""
    d50, d99 = p50(data, "direct", LAT_PLAIN), p99(data, "direct", LAT_PLAIN)
    rows = []
    for info in _vm_targets(data):
        for model, lat, tput in ((PLAIN_MODEL, LAT_PLAIN, TPUT_PLAIN), (VM_MODEL, LAT_VM, TPUT_VM)):
            t50, t99 = p50(data, info.name, lat), p99(data, info.name, lat)
            rows.append(
                [
                    info.name,
                    f"`{model}`",
                    f"{fmt_ms(t50)} / {fmt_ms(t99)}",
                    f"{fmt_added(t50 - d50)} / {fmt_added(t99 - d99)}",
                    fmt_num(rps(data, info.name, tput)),
                    fmt_ratio(rps(data, info.name, tput), rps(data, info.name, TPUT_PLAIN)),
                    fmt_num(cpu_us_per_req(data, info.name, tput)),
                    errors(data, info.name, (lat, tput)),
                ]
            )
    header = [
        "target",
        "model called",
        "p50 / p99 ms c1",
        "added p50 / p99 ms c1 (− direct)",
        "rps c16",
        "× plain model",
        "CPU µs/req c16",
        "errors",
    ]
    return table(header, rows, align_left=2)


def _paired_extras_ms(data: RunData, name: str) -> list[float]:
    """Per round: vm p50 − plain p50 at c1 on the same process (the runs were back to back)."""
    plain, vm = data.runs(name, LAT_PLAIN), data.runs(name, LAT_VM)
    return [v.wrk.p50_ms - p.wrk.p50_ms for p, v in zip(plain, vm, strict=False)]


def _noisy(data: RunData, name: str) -> bool:
    runs = [*data.runs("direct", LAT_PLAIN), *data.runs(name, LAT_PLAIN), *data.runs(name, LAT_VM)]
    return any(m.other_cpu > NOISY_CPU for m in runs)


def vm_summary(data: RunData, info: TargetInfo) -> str:
    """The virtual model's extra overhead as a share of the direct-model overhead, rps at c16, the aim check."""
    name = info.name
    d50, d99 = p50(data, "direct", LAT_PLAIN), p99(data, "direct", LAT_PLAIN)
    plain50, vm50 = p50(data, name, LAT_PLAIN) - d50, p50(data, name, LAT_VM) - d50
    plain99, vm99 = p99(data, name, LAT_PLAIN) - d99, p99(data, name, LAT_VM) - d99
    share50, share99 = extra_share(plain50, vm50), extra_share(plain99, vm99)
    lines = [
        f"- **{name}: the virtual model adds {_pct(share50)} to the direct-model overhead at p50, c1** "
        f"(added p50 {fmt_added(plain50)} ms calling `{PLAIN_MODEL}` → {fmt_added(vm50)} ms via `{VM_MODEL}`: "
        f"{_us(vm50 - plain50)}); at p99 {_pct(share99)} ({fmt_added(plain99)} → {fmt_added(vm99)} ms: "
        f"{_us(vm99 - plain99)})."
    ]
    paired = _paired_extras_ms(data, name)
    if len(paired) > 1:
        lines.append(
            f"- vm − plain p50 at c1 within each round (back-to-back runs): median {_us(median(paired))} "
            f"({_pct(extra_share(plain50, plain50 + median(paired)))} of the direct-model overhead); per round: "
            + ", ".join(_us(x) for x in paired)
            + "."
        )
    r_plain, r_vm = rps(data, name, TPUT_PLAIN), rps(data, name, TPUT_VM)
    c_plain, c_vm = cpu_us_per_req(data, name, TPUT_PLAIN), cpu_us_per_req(data, name, TPUT_VM)
    cpu_share = (c_vm - c_plain) / c_plain if c_plain > 0 else math.nan
    lines.append(
        f"- c16 throughput: {fmt_num(r_plain)} rps plain, {fmt_num(r_vm)} rps via the virtual model "
        f"(×{fmt_ratio(r_vm, r_plain)}); CPU per request {fmt_num(c_plain)} → {fmt_num(c_vm)} µs ({_pct(cpu_share)}: "
        "all of Relaygate's CPU is overhead, so this is the same share measured in CPU time)."
    )
    if math.isnan(share50):
        verdict = "cannot tell (needs direct, ns_c1 and vm_c1 measured, and a positive direct-model overhead)"
    elif share50 < EXTRA_AIM:
        verdict = f"**met** ({_pct(share50)} < {EXTRA_AIM:.0%})"
    else:
        verdict = f"**not met** ({_pct(share50)} ≥ {EXTRA_AIM:.0%})"
    if not math.isnan(cpu_share) and not math.isnan(share50) and (cpu_share < EXTRA_AIM) != (share50 < EXTRA_AIM):
        verdict += f"; CPU per request at c16 disagrees ({_pct(cpu_share)})"
    if _noisy(data, name):
        verdict += "; ⚠ other processes used CPU during these runs (see Notes): rerun on a quiet machine"
    lines.append(
        f"- Aim: the virtual model adds under {EXTRA_AIM:.0%} to the direct-model overhead (p50, c1): {verdict}."
    )
    return "\n".join(lines)


def vm_section(data: RunData) -> str:
    """The side-by-side table, then one summary per Relaygate target."""
    return "\n\n".join([vm_table(data), *(vm_summary(data, info) for info in _vm_targets(data))])


VM_SECTIONS: list[tuple[str, str, Callable[[RunData], str], tuple[str, ...]]] = [
    (
        f"Virtual model vs its target (`{VM_MODEL}` → `{PLAIN_MODEL}`, non-streaming)",
        f'The same Relaygate process and body, `"model": "{PLAIN_MODEL}"` (ns_c1, ns_c16) vs '
        f'`"model": "{VM_MODEL}"` (vm_c1, vm_c16: weight-based, one target, weight 100), each vm run right '
        "after its plain twin in every round. added = Relaygate − direct at c1 (direct's ns_c1); the virtual "
        "model's extra share = (vm added − plain added) ÷ plain added.",
        vm_section,
        VM_KEYS,
    ),
]
