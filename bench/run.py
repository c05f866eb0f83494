"""Relaygate vs direct vs nginx, in one run, as ratios.

    python bench/run.py [--quick] [--rounds N] [--duration S] [--out bench/results/latest.md]
                        [--targets direct,nginx,relaygate] [--server uvicorn|granian] [--candidates]
                        [--scenarios ns_c1,rl_c1,...] [--redis-url redis://HOST:PORT | --no-redis]

Starts the mock upstream, nginx and Relaygate, drives each with wrk through every scenario (round by
round, targets interleaved per scenario), prints markdown tables and writes them to --out. Load
generator and mock run on one CPU, the proxy under test on another (taskset). Every child process is
stopped on exit, also on Ctrl-C and errors. When rate-limit scenarios (rl_*) are selected, a second
Relaygate (`relaygate-redis`, limits in Redis) runs them and their plain twins beside the default one.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

import httpc
import machine
import targets as tg
import wrk
from configs import LIMITED_MODEL, PLAIN_MODEL, PROXY_PREFIX, RL_RULE_ID, VM_MODEL
from measuring import (
    DOWNLOAD_PATH,
    ECHO_BODY,
    ECHO_PATH,
    json_body,
    measure,
    probe,
    probe_proxy,
    probe_rl,
    probe_vm,
    runs_on,
    schedule,
)
from report import SCENARIOS, Measurement, RunData, Scenario, TargetInfo, render

ALL_TARGETS = ("direct", "nginx", "relaygate")
REDIS_TARGET = "relaygate-redis"  # started beside `relaygate` when rl_* scenarios are selected
REDIS_FAILED = "limits backend (Redis) failed"  # RedisBackend's warning: requests were admitted unchecked
NGINX_FALLBACK = "/usr/sbin/nginx"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(description="Relaygate vs direct vs nginx benchmark (wrk, one run, ratios).")
    p.add_argument("--quick", action="store_true", help="~2 s runs, 1 s warm-up (smoke test)")
    p.add_argument("--rounds", type=int, default=1, help="rounds; tables show medians (default 1)")
    p.add_argument("--duration", type=int, help="seconds per throughput run (default 10, quick 2)")
    p.add_argument("--lat-duration", type=int, help="seconds per c1 latency run (default 5, quick 2)")
    p.add_argument("--warmup", type=int, help="seconds of warm-up before each run (default 3, quick 1)")
    p.add_argument("--targets", default=",".join(ALL_TARGETS), help="comma list of direct,nginx,relaygate")
    p.add_argument(
        "--server",
        choices=("uvicorn", "granian"),
        default="uvicorn",
        help="ASGI server for the relaygate target (default uvicorn via `relaygate serve`)",
    )
    p.add_argument(
        "--candidates", action="store_true", help="also measure Relaygate on the other ASGI server (relaygate-granian)"
    )
    p.add_argument(
        "--scenarios", help="comma list of scenario keys (default all: " + ",".join(s.key for s in SCENARIOS) + ")"
    )
    p.add_argument(
        "--redis-url",
        help="the Redis for the relaygate-redis target (rl_* scenarios); default: start a private redis-server "
        "on a free port (or use 127.0.0.1:6379 when there is no redis-server binary)",
    )
    p.add_argument("--no-redis", action="store_true", help="do not start the relaygate-redis target")
    p.add_argument("--load-cpus", default="0", help="CPUs for wrk + mock (default 0)")
    p.add_argument("--proxy-cpus", default="1", help="CPUs for the proxy under test (default 1)")
    p.add_argument("--no-pin", action="store_true", help="do not use taskset")
    p.add_argument(
        "--out",
        default=str(Path(__file__).resolve().parent / "results" / "latest.md"),
        help="markdown report path (default bench/results/latest.md)",
    )
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="S",
        help="before each measured run, wait up to S seconds for other processes to leave the CPUs idle",
    )
    p.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (configs, logs, sqlite db)")
    args = p.parse_args(argv)
    args.duration = args.duration or (2 if args.quick else 10)
    args.lat_duration = args.lat_duration or (2 if args.quick else 5)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)
    args.rounds = max(1, args.rounds)
    args.want = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = set(args.want) - set(ALL_TARGETS)
    if unknown:
        p.error(f"unknown targets: {', '.join(sorted(unknown))} (choose from {', '.join(ALL_TARGETS)})")
    args.scenario_list = list(SCENARIOS)
    if args.scenarios:
        keys = [k.strip() for k in args.scenarios.split(",") if k.strip()]
        bad = set(keys) - {s.key for s in SCENARIOS}
        if bad:
            p.error(f"unknown scenarios: {', '.join(sorted(bad))}")
        args.scenario_list = [s for s in SCENARIOS if s.key in keys]
    args.pin = not args.no_pin and (os.cpu_count() or 1) >= 2
    return args


def log(msg: str) -> None:
    """Progress to stderr (stdout gets the report)."""
    print(msg, file=sys.stderr, flush=True)


def check_tools(want: list[str], pin: bool) -> tuple[str, str | None]:
    """(wrk path, nginx path or None); exits with the apt-get command when one is missing."""
    missing = []
    wrk_bin = shutil.which("wrk")
    if wrk_bin is None:
        missing.append(("wrk", "wrk"))
    nginx_bin = None
    if "nginx" in want:
        nginx_bin = shutil.which("nginx") or (NGINX_FALLBACK if os.access(NGINX_FALLBACK, os.X_OK) else None)
        if nginx_bin is None:
            missing.append(("nginx", "nginx-light"))
    if pin and shutil.which("taskset") is None:
        missing.append(("taskset", "util-linux"))
    if missing:
        for tool, pkg in missing:
            log(f"error: `{tool}` not found. Install it with:  sudo apt-get install -y {pkg}")
        log("(or leave nginx out with --targets direct,relaygate; pinning off with --no-pin)")
        sys.exit(2)
    assert wrk_bin is not None
    return wrk_bin, nginx_bin


def redis_scope(scenarios: list[Scenario]) -> frozenset[str]:
    """What relaygate-redis runs: the selected rl_* scenarios and their plain twins."""
    rl = [s for s in scenarios if s.kind == "rl"]
    return frozenset(s.key for s in rl) | frozenset(s.base for s in rl if s.base)


def start_targets(
    args: argparse.Namespace,
    want: list[str],
    children: tg.Children,
    tmp: Path,
    mock: tg.Mock,
    nginx_bin: str | None,
    cpus: tuple[str | None, str | None],
    notes: list[str],
) -> tuple[list[tg.Target], list[TargetInfo]]:
    """Start every requested target; a target that fails is reported, not fatal. `cpus`: (load, proxy)."""
    load_cpus, proxy_cpus = cpus
    started: list[tg.Target] = []
    infos: list[TargetInfo] = []
    plan: list[tuple[str, str]] = [(name, args.server) for name in want]
    if args.candidates and "relaygate" in want:
        other = "granian" if args.server == "uvicorn" else "uvicorn"
        plan.append((f"relaygate-{other}", other))
    redis: tg.RedisServer | None = None
    if "relaygate" in want and any(s.kind == "rl" for s in args.scenario_list):
        if args.no_redis:
            notes.append(f"{REDIS_TARGET}: not run (--no-redis)")
        else:
            try:
                redis = tg.start_redis(children, tmp, load_cpus, args.redis_url)
            except tg.TargetError as exc:
                notes.append(f"{REDIS_TARGET}: not run: {exc}".splitlines()[0])
                log(f"!! {REDIS_TARGET}: not run: {exc}")
            else:
                where = "started by the benchmark" if redis.proc else "existing"
                log(f"   redis ({where}) at {redis.url.split('@')[-1]}")
                plan.append((REDIS_TARGET, args.server))
    # Ready = the first 200 on the chat path, or on the custom endpoint when only proxy scenarios run.
    chat = any(s.kind in ("chat", "vm") for s in args.scenario_list)
    path = httpc.CHAT_PATH if chat else PROXY_PREFIX + ECHO_PATH
    for name, server in plan:
        try:
            if name == "direct":
                target = tg.direct_target(mock, "gpt-4o")
            elif name == "nginx":
                assert nginx_bin is not None
                body = json_body("gpt-4o", False) if chat else ECHO_BODY
                target = tg.start_nginx(children, tmp, mock, proxy_cpus, nginx_bin, body.encode(), "gpt-4o", path)
            else:
                body = json_body(PLAIN_MODEL, False) if chat else ECHO_BODY
                on_redis = name == REDIS_TARGET
                target = tg.start_relaygate(
                    children,
                    tmp,
                    mock,
                    proxy_cpus,
                    server,
                    body.encode(),
                    name,
                    path,
                    redis=redis if on_redis else None,
                    scope=redis_scope(args.scenario_list) if on_redis else None,
                )
        except tg.TargetError as exc:
            log(f"!! {name}: {exc}")
            scope = redis_scope(args.scenario_list) if name == REDIS_TARGET else None
            infos.append(TargetInfo(name, name, failed=str(exc).splitlines()[0], scope=scope))
            continue
        log(f"   {name} up on :{target.port}" + (f" in {target.startup_s:.2f}s" if target.startup_s else ""))
        started.append(target)
        backend = ("redis" if name == REDIS_TARGET else "memory") if name.startswith("relaygate") else ""
        infos.append(
            TargetInfo(name, target.label, startup_s=target.startup_s, scope=target.scope, limits_backend=backend)
        )
    return started, infos


def run(args: argparse.Namespace, children: tg.Children, tmp: Path) -> tuple[RunData, bool]:
    """Start everything, measure every scenario for every round; (data, all targets measured cleanly)."""
    want: list[str] = args.want
    scenarios: list[Scenario] = args.scenario_list
    pin: bool = args.pin
    wrk_bin: str = args.wrk_bin
    nginx_bin: str | None = args.nginx_bin
    load_cpus = args.load_cpus if pin else None
    proxy_cpus = args.proxy_cpus if pin else None
    load_prefix = tg.cpu_prefix(load_cpus)

    log(f"== temp dir {tmp}")
    mock = tg.start_mock(children, tmp, load_cpus)
    log(f"   mock upstream on :{mock.port}")
    run_notes: list[str] = []
    started, infos = start_targets(args, want, children, tmp, mock, nginx_bin, (load_cpus, proxy_cpus), run_notes)
    info_by = {i.name: i for i in infos}
    time.sleep(0.5)
    for target in started:
        if target.pid:
            info_by[target.name].rss_idle_mib = machine.rss_mib(target.pid)
        try:
            if any(s.kind == "chat" for s in scenarios if target.scope is None or s.key in target.scope):
                probe(target, info_by[target.name], mock, samples=20 if args.quick else 50)
        except (tg.TargetError, OSError, http.client.HTTPException) as exc:
            info_by[target.name].skipped["chat"] = f"probe failed: {exc}"
        probe_proxy(target, info_by[target.name], {s.kind for s in scenarios} - {"chat"})
        if target.serves_virtual and any(s.kind == "vm" and runs_on(s, target) for s in scenarios):
            probe_vm(target, info_by[target.name])
        if target.serves_virtual and any(s.kind == "rl" and runs_on(s, target) for s in scenarios):
            probe_rl(target, info_by[target.name], 50 if args.quick else 300, target.redis_check_port)
        for kind, why in info_by[target.name].skipped.items():
            log(f"!! {target.name}: {kind} scenarios skipped: {why}")
    live = [t for t in started if not info_by[t.name].failed]

    results: dict[str, dict[str, list[Measurement]]] = {t.name: {} for t in live}
    for rnd in range(1, args.rounds + 1):
        pace: float | None = None
        for scenario, target in schedule(scenarios, live):
            if scenario.pace_ms != pace:
                pace = scenario.pace_ms
                mock.set_pace(pace)
            info = info_by[target.name]
            if info.failed or scenario.kind in info.skipped:
                continue
            if not target.alive():
                info.failed = f"process died (exit {target.proc.returncode if target.proc else '?'})"
                log(f"!! {target.name}: {info.failed}\n{tg.log_tail(target.log) if target.log else ''}")
                continue
            if args.wait_quiet > 0:
                waited = machine.wait_quiet(args.wait_quiet)
                if waited is None or waited > 1:
                    log(
                        f"   waited {args.wait_quiet if waited is None else waited:.0f}s for a quiet machine"
                        + (" (still busy)" if waited is None else "")
                    )
            try:
                m = measure(args, scenario, target, mock, load_prefix, info)
            except wrk.WrkError as exc:
                log(f"!! {target.name} {scenario.key}: {exc}")
                info.notes.append(f"{scenario.key} round {rnd}: wrk failed")
                continue
            results[target.name].setdefault(scenario.key, []).append(m)
            err = f"  ERRORS: {m.wrk.error_text()}" if m.wrk.errors else ""
            err += f"  other CPU {m.other_cpu:.2f}"
            if m.rss_peak_mib is not None and m.rss_before_mib is not None:
                err += f"  RSS {m.rss_before_mib:.1f} -> peak {m.rss_peak_mib:.1f} MiB"
            if scenario.kind == "download":
                err += f"  {m.wrk.mb_per_s:,.0f} MB/s"
            log(
                f"   round {rnd} {scenario.key:8s} {target.name:18s} {m.wrk.rps:10,.0f}/s "
                f"p50 {m.wrk.p50_ms:8.3f} ms  p99 {m.wrk.p99_ms:8.3f} ms{err}"
            )
    mock.set_pace(0)
    for target in live:
        info = info_by[target.name]
        if target.pid and target.alive():
            info.rss_load_mib = machine.rss_mib(target.pid)
            info.processes = len(machine.process_tree(target.pid))
        elif target.pid and not info.failed:
            info.failed = "process died"
        if target.backend_pid is not None or target.name == REDIS_TARGET:
            failures = tg.log_count(target.log, REDIS_FAILED) if target.log else 0
            if failures:
                info.notes.append(
                    f"⚠ the log says `{REDIS_FAILED}` {failures} time(s): some rl_* requests were admitted "
                    "unchecked (on_backend_error: allow), so those numbers understate Redis's cost"
                )
        if target.db_path is not None:
            rows = tg.request_log_rows(target.db_path)
            if rows is None:
                info.notes.append("request log: no `request_logs` table found to count")
            else:
                info.notes.append(
                    f"request log: {rows:,} rows for ~{target.sent:,} completed requests "
                    f"({rows / max(target.sent, 1):.1%}; wrk stops mid-request, so a few more rows than "
                    "requests is normal)"
                )

    meta = run_meta(args, want, scenarios, pin, load_cpus, proxy_cpus, wrk_bin, nginx_bin)
    data = RunData(meta, infos, results, args.rounds, run_notes)
    clean = all(not i.failed and not i.skipped for i in infos) and all(
        not m.wrk.errors for per in results.values() for runs in per.values() for m in runs
    )
    return data, clean


def run_meta(
    args: argparse.Namespace,
    want: list[str],
    scenarios: list[Scenario],
    pin: bool,
    load_cpus: str | None,
    proxy_cpus: str | None,
    wrk_bin: str,
    nginx_bin: str | None,
) -> list[tuple[str, str]]:
    """The header lines of the report."""
    versions = [
        platform.python_implementation() + " " + platform.python_version(),
        machine.tool_version([wrk_bin, "-v"]).split(" [")[0],
    ]
    if nginx_bin:
        versions.append(machine.tool_version([nginx_bin, "-v"]).replace("nginx version: ", ""))
    try:
        from importlib.metadata import version

        versions += [
            f"{pkg} {version(pkg)}"
            for pkg in ("relaygate", "uvicorn", "uvloop", "httptools", "aiohttp")
            if _installed(pkg)
        ]
    except ImportError:  # pragma: no cover
        pass
    return [
        ("date", dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")),
        ("machine", f"{os.cpu_count()} CPUs ({machine.cpu_model()}), {platform.system()} {platform.release()}"),
        (
            "pinning",
            f"wrk + mock on CPU {load_cpus}, proxy on CPU {proxy_cpus} (taskset)"
            if pin
            else "none (fewer than 2 CPUs or --no-pin)",
        ),
        (
            "load",
            "wrk -t1, keep-alive, --latency, bench/chat.lua; POST /v1/chat/completions, "
            f"{len(json_body('gpt-4o', False))}-byte body",
        ),
        (
            "custom endpoint",
            f"px_*: POST {ECHO_PATH} ({len(ECHO_BODY)}-byte JSON in, ~300 out); dl10m_*: GET {DOWNLOAD_PATH} "
            "(Content-Length, 64 KiB writes); direct on the mock, nginx and Relaygate at "
            "/proxy-api/bench-proxy/mock/<path>",
        ),
        (
            "durations",
            f"{args.duration} s throughput, {args.lat_duration} s c1 latency, {args.warmup} s warm-up "
            f"before each run; rounds {args.rounds} (medians)" + (" [--quick]" if args.quick else ""),
        ),
        ("scenarios", ", ".join(s.key for s in scenarios)),
        (
            "targets",
            ", ".join(want)
            + (f" (+ candidates, --server {args.server})" if args.candidates else f" (relaygate on {args.server})"),
        ),
        (
            "relaygate",
            "auth on (Bearer token from `relaygate tokens create`), x-tfy-metadata header, "
            "request logging to SQLite as configured by default; vm_*: model "
            f"{VM_MODEL} (virtual, weight-based, one target {PLAIN_MODEL}), each right after its ns_* twin; "
            f"rl_*: model {LIMITED_MODEL} (same upstream, matched by rate-limit rule {RL_RULE_ID}), each right "
            f"after its ns_* twin, on `relaygate` (memory backend) and `{REDIS_TARGET}` (--redis-url)",
        ),
        ("versions", ", ".join(v for v in versions if v)),
    ]


def _installed(pkg: str) -> bool:
    from importlib.metadata import PackageNotFoundError, version

    try:
        version(pkg)
    except PackageNotFoundError:
        return False
    return True


def _raise_exit(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 when every target was measured without errors."""
    args = parse_args(argv)
    args.wrk_bin, args.nginx_bin = check_tools(args.want, args.pin)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C even if started with SIGINT ignored
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_exit)
    children = tg.Children()
    tmp = Path(tempfile.mkdtemp(prefix="relaygate-bench-"))
    keep = args.keep_tmp
    try:
        data, clean = run(args, children, tmp)
        report = render(data)
        print(report)
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(report)
        log(f"== report written to {out}")
        if not clean:
            log("!! some targets failed or had errors (see the ⚠ marks and Notes)")
            keep = True
        return 0 if clean else 1
    except (KeyboardInterrupt, SystemExit) as exc:
        keep = True
        log(f"!! interrupted ({type(exc).__name__}); stopping every process this run started")
        return 130 if isinstance(exc, KeyboardInterrupt) else int(exc.code or 1)
    except BaseException:
        keep = True
        raise
    finally:
        children.stop_all()
        if keep:
            log(f"== logs and configs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
