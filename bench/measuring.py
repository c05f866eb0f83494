"""What each scenario sends, the probes that check a target answers it, and one measured wrk run.

Chat scenarios POST the chat request to `/v1/chat/completions`. The custom-endpoint scenarios go to
the mock's `/echo-json` (a small JSON POST) and `/download/10000000` (a 10 MB GET): straight for
direct, under `/proxy-api/bench-proxy/mock/...` for nginx and Relaygate. The virtual-model scenarios
(Relaygate only) send the chat request with `"model": "bench-vm/chat"`, the rate-limit scenarios
(Relaygate only) with `"model": "bench-openai/gpt-4o-limited"`, each right after its plain-model twin on
the same Relaygate process (see `schedule`).
"""

from __future__ import annotations

import argparse
import http.client
import re
import statistics
from dataclasses import dataclass

import httpc
import machine
import targets as tg
import wrk
from configs import LIMITED_MODEL, PLAIN_MODEL, PROXY_PREFIX, RL_RULE_ID, VM_MODEL, rl_redis_key
from report import Measurement, Scenario, TargetInfo

ECHO_PATH = "/echo-json"
ECHO_BODY = (
    '{"id":"bench-0001","op":"lookup","params":{"customer_id":"cust_123","limit":10,'
    '"fields":["name","email","tier"]},"trace":true}'
)
DOWNLOAD_BYTES = 10_000_000  # "10 MB"; the mock sends it in 64 KiB writes with Content-Length
DOWNLOAD_PATH = f"/download/{DOWNLOAD_BYTES}"
RELAYGATE_ONLY = ("vm", "rl")  # scenario kinds that exist only on Relaygate targets
_RATELIMIT_STAGE_RE = re.compile(r"ratelimit;dur=([\d.]+)")


def json_body(model: str, stream: bool) -> str:
    """The chat request every target gets (~200 bytes), model aside."""
    stream_part = '"stream":true,' if stream else ""
    return (
        f'{{"model":"{model}",{stream_part}"messages":[{{"role":"system","content":"You are a helpful '
        'assistant."},{"role":"user","content":"Write one sentence about the sea, please."}],'
        '"max_tokens":64,"temperature":0.2}'
    )


@dataclass(frozen=True, slots=True)
class Load:
    """One request shape for wrk: method, path on the target, body ('' = none)."""

    method: str
    path: str
    body: str


def proxy_path(target: tg.Target, upstream_path: str) -> str:
    """`upstream_path` as this target serves it: as is on the mock, under the custom-endpoint prefix otherwise."""
    return upstream_path if target.name == "direct" else PROXY_PREFIX + upstream_path


def load_for(scenario: Scenario, target: tg.Target) -> Load:
    """What wrk sends to `target` in `scenario`."""
    if scenario.kind == "proxy":
        return Load("POST", proxy_path(target, ECHO_PATH), ECHO_BODY)
    if scenario.kind == "download":
        return Load("GET", proxy_path(target, DOWNLOAD_PATH), "")
    if scenario.kind == "vm":
        return Load("POST", httpc.CHAT_PATH, json_body(VM_MODEL, scenario.stream))
    if scenario.kind == "rl":
        return Load("POST", httpc.CHAT_PATH, json_body(LIMITED_MODEL, scenario.stream))
    return Load("POST", httpc.CHAT_PATH, json_body(target.model, scenario.stream))


def probe(target: tg.Target, info: TargetInfo, mock: tg.Mock, samples: int) -> None:
    """Check answers (JSON, stream with [DONE]), count events per stream, measure stream TTFB at c1."""
    status, body = httpc.http_request(
        target.port, "POST", httpc.CHAT_PATH, json_body(target.model, False).encode(), target.headers()
    )
    if status != 200 or b'"choices"' not in body:
        raise tg.TargetError(f"non-streaming probe answered {status}: {body[:300]!r}")
    stream_body = json_body(target.model, True).encode()
    mock.set_pace(0)
    _, _, events = httpc.stream_ttfb(target.port, stream_body, target.headers())
    info.events_per_stream = events
    mock.set_pace(2)
    ttfbs, totals = [], []
    for _ in range(samples):
        ttfb, total, _ = httpc.stream_ttfb(target.port, stream_body, target.headers())
        ttfbs.append(ttfb * 1000)
        totals.append(total * 1000)
    ttfbs.sort()
    info.ttfb_p50_ms = statistics.median(ttfbs)
    info.ttfb_p99_ms = ttfbs[min(len(ttfbs) - 1, int(len(ttfbs) * 0.99))]
    info.stream_total_p50_ms = statistics.median(totals)
    target.sent += 2 + samples
    if info.ttfb_p50_ms > 0.5 * info.stream_total_p50_ms:
        info.notes.append(
            f"TTFB {info.ttfb_p50_ms:.1f} ms vs whole stream {info.stream_total_p50_ms:.1f} ms: "
            "the stream looks buffered"
        )


def probe_proxy(target: tg.Target, info: TargetInfo, kinds: set[str]) -> None:
    """One echo POST and/or one whole 10 MB download; a wrong answer marks that scenario kind skipped."""
    checks = [("proxy", "POST", ECHO_PATH, ECHO_BODY.encode()), ("download", "GET", DOWNLOAD_PATH, None)]
    for kind, method, path, body in checks:
        if kind not in kinds:
            continue
        url = proxy_path(target, path)
        try:
            status, answer = httpc.http_request(target.port, method, url, body, target.headers(), timeout=30.0)
        except (OSError, http.client.HTTPException) as exc:
            info.skipped[kind] = f"probe {method} {url} failed: {type(exc).__name__}: {exc}"
            continue
        target.sent += 1
        if kind == "proxy":
            ok = status == 200 and b'"object":"echo"' in answer and b'"cust_123"' in answer
            got = f"{answer[:300]!r}"
        else:
            ok = status == 200 and len(answer) == DOWNLOAD_BYTES
            got = f"{len(answer):,} bytes: {answer[:300]!r}"
        if not ok:
            info.skipped[kind] = f"probe {method} {url} answered {status}, {got}"


def probe_vm(target: tg.Target, info: TargetInfo) -> None:
    """One chat request to the virtual model: 200 with `choices`, answered by its target (else vm skipped)."""
    body = json_body(VM_MODEL, False).encode()
    try:
        status, headers, answer = httpc.http_exchange(target.port, "POST", httpc.CHAT_PATH, body, target.headers())
    except (OSError, http.client.HTTPException) as exc:
        info.skipped["vm"] = f"probe of {VM_MODEL} failed: {type(exc).__name__}: {exc}"
        return
    target.sent += 1
    resolved = headers.get("x-tfy-resolved-model", "")
    if status != 200 or b'"choices"' not in answer or resolved not in ("", PLAIN_MODEL):
        info.skipped["vm"] = f"probe of {VM_MODEL} answered {status} (resolved model {resolved!r}): {answer[:300]!r}"


def probe_rl(target: tg.Target, info: TargetInfo, samples: int, redis_port: int | None = None) -> None:
    """Requests to the rate-limited model: 200 with `choices` and the rule id in `x-tfy-applied-configurations`
    (else rl skipped); the `ratelimit` server-timing stage over `samples` sequential requests; with Redis,
    the rule's counter must exist in Redis afterwards (else the backend was not really used)."""
    body = json_body(LIMITED_MODEL, False).encode()
    stages: list[float] = []
    try:
        for i in range(max(1, samples)):
            status, headers, answer = httpc.http_exchange(target.port, "POST", httpc.CHAT_PATH, body, target.headers())
            target.sent += 1
            applied = headers.get("x-tfy-applied-configurations", "")
            if status != 200 or b'"choices"' not in answer or RL_RULE_ID not in applied:
                info.skipped["rl"] = (
                    f"probe of {LIMITED_MODEL} answered {status} (x-tfy-applied-configurations {applied!r}): "
                    f"{answer[:300]!r}"
                )
                return
            found = _RATELIMIT_STAGE_RE.search(headers.get("server-timing", ""))
            if found and i > 0:  # the first request pays one-time costs (script load, first connection)
                stages.append(float(found.group(1)) * 1000)
    except (OSError, http.client.HTTPException) as exc:
        info.skipped["rl"] = f"probe of {LIMITED_MODEL} failed: {type(exc).__name__}: {exc}"
        return
    if stages:
        stages.sort()
        info.rl_stage_us = (statistics.median(stages), stages[min(len(stages) - 1, int(len(stages) * 0.99))])
    if redis_port is not None:
        try:
            exists = httpc.redis_command(redis_port, "EXISTS", rl_redis_key())
        except OSError as exc:
            info.skipped["rl"] = f"could not check Redis on :{redis_port} after the probe: {exc}"
            return
        if exists != b":1":
            info.skipped["rl"] = (
                f"the rule's counter {rl_redis_key()} is not in Redis after the probe ({exists!r}): "
                "the Redis backend was not used (admitted unchecked?); see the target's log"
            )


def runs_on(scenario: Scenario, target: tg.Target) -> bool:
    """Relaygate-only kinds run only on Relaygate targets; a scoped target runs only its own scenarios."""
    if scenario.kind in RELAYGATE_ONLY and not target.serves_virtual:
        return False
    return target.scope is None or scenario.key in target.scope


def schedule(scenarios: list[Scenario], targets: list[tg.Target]) -> list[tuple[Scenario, tg.Target]]:
    """One round's (scenario, target) runs in order: every target runs scenario 1, then scenario 2, ...;
    a virtual-model or rate-limit scenario runs only on Relaygate targets, right after its plain-model `base`
    on the same target (plain, vm, rl, plain, vm, rl: noise hits all), or on its own when its base is not
    selected. A target with a `scope` (relaygate-redis) runs only the scenarios in it."""
    keys = {s.key for s in scenarios}
    followers: dict[str, list[Scenario]] = {}
    for s in scenarios:
        if s.base in keys:
            followers.setdefault(s.base, []).append(s)
    steps: list[tuple[Scenario, tg.Target]] = []
    for s in scenarios:
        if s.base in keys:
            continue
        for target in targets:
            if not runs_on(s, target):
                continue
            steps.append((s, target))
            steps += [(f, target) for f in followers.get(s.key, []) if runs_on(f, target)]
    return steps


def measure(
    args: argparse.Namespace,
    scenario: Scenario,
    target: tg.Target,
    mock: tg.Mock,
    load_prefix: list[str],
    info: TargetInfo | None = None,
) -> Measurement:
    """Warm up, then one measured wrk run, with the CPU the proxy and everything else used meanwhile
    (and, for downloads, the proxy's RSS before the warm-up and its peak over warm-up + run)."""
    load = load_for(scenario, target)
    url = f"http://127.0.0.1:{target.port}{load.path}"
    common = dict(
        token=target.token, metadata=target.metadata, prefix=load_prefix, wrk_bin=args.wrk_bin, method=load.method
    )
    pid = target.pid
    peak: machine.PeakRss | None = None
    rss_before = None
    if scenario.kind == "download" and pid:
        rss_before = machine.rss_mib(pid)
        peak = machine.PeakRss(pid)
        peak.start()
        if info is not None:
            info.rss_method = peak.method
    try:
        if args.warmup > 0:
            warm = wrk.run(url, scenario.connections, args.warmup, load.body, **common)
            target.sent += warm.requests
        duration = args.lat_duration if scenario.latency_run else args.duration
        backend_pid = target.backend_pid  # a Redis the benchmark started: part of the run, not "other" CPU
        ours0 = machine.waited_children_cpu_seconds() + machine.cpu_seconds(mock.proc.pid)
        backend0 = machine.cpu_seconds(backend_pid) if backend_pid else 0.0
        cpu0 = machine.cpu_seconds(pid) if pid else 0.0
        system0 = machine.system_cpu_seconds()
        result = wrk.run(url, scenario.connections, duration, load.body, **common)
        system_s = machine.system_cpu_seconds() - system0
        cpu_s = machine.cpu_seconds(pid) - cpu0 if pid else 0.0
        backend_s = machine.cpu_seconds(backend_pid) - backend0 if backend_pid else 0.0
        ours_s = machine.waited_children_cpu_seconds() + machine.cpu_seconds(mock.proc.pid) - ours0 + cpu_s + backend_s
    finally:
        rss_peak = peak.stop() if peak is not None else None
    target.sent += result.requests
    other = max(0.0, system_s - ours_s) / max(result.duration_s, 0.001)
    return Measurement(result, cpu_s if pid else None, other, rss_before, rss_peak, backend_s if backend_pid else None)
