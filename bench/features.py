"""Issue 14: what guardrails and the response cache cost or save, at concurrency 1, in one run.

    python bench/features.py [--rounds N] [--requests N] [--stream-requests N] [--pace-ms MS]
                             [--out bench/results/features-latest.md]

Starts bench/mock_upstream.py and one `relaygate serve` (the helpers of bench/targets.py: free port,
token from `relaygate tokens create`, process groups, taskset) with bench/configs.py's manifests plus
two accounts on the same mock, `bench-guard` (input guardrails `regex` + `pii`, validate, enforce) and
`bench-buffer` (output guardrail `pii`, validate, `stream_mode: buffer`). This process and the mock run
on one CPU, the gateway on the other. Then, round after round (case order rotated every round), one
request at a time on one kept-alive connection per case, each timed with `time.perf_counter`:

1. cache (one block of requests per case): the same ~500-byte chat request to the mock directly,
   through the gateway without a cache header, as a miss (a unique body each time) and as a hit (one
   body, primed once), the last two with `x-tfy-cache-config: {"type":"exact-match"}`; the gateway's
   `relaygate_upstream_attempts_total` (/metrics) is read before and after every hit block (it must not
   move). Then the same with `stream: true` and the mock pacing its 21 events (`--pace-ms`, default
   1 ms: ~20 ms of "model time"; the mock has no delay for non-streaming answers).
2. input guardrails: a ~2 KB prompt (English, nothing the guardrails match) to `bench-openai/gpt-4o`
   and to `bench-guard/gpt-4o`, alternating request by request; the `server-timing` header's
   `input_guardrails;dur=` of every guarded answer is kept.
3. buffer mode: paced streams to `bench-openai/gpt-4o` and `bench-buffer/gpt-4o`, alternating; time to
   the first `data:` bytes and to the last byte.

Every answer is checked (status, `x-tfy-cache-status`, `x-relaygate-guardrails`, the events of a
stream). Helpers in features_lib.py: the bodies, the timed connection, /metrics, the samples and the
markdown. Prints a markdown report and writes it to --out. Exit status 0 when
every answer was as expected, 1 otherwise (the report says which), 130 on Ctrl-C. Every child is
stopped on exit.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import FrameType

import machine
import targets as tg
from configs import BENCH_USER, UPSTREAM_KEY, relaygate_yaml
from features_lib import (
    BUFFER,
    CACHE_ON,
    GUARD,
    PLAIN,
    PROMPT_2KB,
    STAGE_RE,
    TIMING_RE,
    Answer,
    Case,
    Conn,
    RunInfo,
    chat_body,
    render,
    upstream_attempts,
)

CACHE_BODY_BYTES = 500
STREAM_TEXT = "Write one sentence about the sea, please."
Check = Callable[[Answer], str]  # '' when the answer is as expected, else what is wrong


def features_yaml(mock_port: int) -> str:
    """bench/configs.py's manifests plus the guarded and the buffered account and their guardrails."""
    account = """---
type: provider-account/openai
name: {name}
base_url: http://127.0.0.1:{port}/v1
auth_data: {{type: api-key, api_key: {key}}}
collaborators: [{{subject: "user:{user}", role_id: provider-account-access}}]
integrations:
  - {{name: gpt-4o, type: integration/model/openai, model_id: gpt-4o, model_types: [chat]}}
"""
    accounts = "".join(
        account.format(name=name, port=mock_port, key=UPSTREAM_KEY, user=BENCH_USER)
        for name in ("bench-guard", "bench-buffer")
    )
    return (
        relaygate_yaml(mock_port)
        + accounts
        + f"""---
type: provider-account/guardrail-config-group
name: bench
integrations:
  - name: ticket
    type: integration/guardrail-config/regex
    operation: validate
    enforcing_strategy: enforce
    config: {{patterns: [{{name: ticket, pattern: "TICKET-[0-9]{{1,8}}"}}]}}
  - name: pii
    type: integration/guardrail-config/pii
    operation: validate
    enforcing_strategy: enforce
    config: {{}}
  - name: pii-out
    type: integration/guardrail-config/pii
    operation: validate
    enforcing_strategy: enforce
    config: {{}}
---
type: gateway-guardrails-config
name: guardrails
rules:
  - id: bench-input
    when: {{models: [{GUARD}]}}
    llm_input_guardrails: [bench/ticket, bench/pii]
  - id: bench-output
    when: {{models: [{BUFFER}]}}
    llm_output_guardrails: [bench/pii-out]
    stream_mode: buffer
"""
    )


def start_gateway(children: tg.Children, tmp: Path, mock: tg.Mock, cpus: str | None) -> tg.Target:
    """`relaygate serve` with features_yaml, as targets.start_relaygate starts it (same token, flags, env)."""
    cli = tg.relaygate_command()
    if cli is None:
        raise tg.TargetError("relaygate is not installed: run `pip install -e .` (then `relaygate --help`)")
    work = tmp / "relaygate"
    work.mkdir(exist_ok=True)
    config = work / "bench.yaml"
    config.write_text(features_yaml(mock.port))
    db_url = f"sqlite:///{work / 'bench.db'}"
    token = tg.create_token(cli, db_url, work)
    port = tg.free_port()
    log = tmp / "relaygate.log"
    env = dict(os.environ, RELAYGATE_CONFIG=str(config), RELAYGATE_DATABASE_URL=db_url)
    for inherited in ("RELAYGATE_REDIS_URL", "RELAYGATE_CACHE_REDIS_URL", "RELAYGATE_LIMITS_KEY_PREFIX"):
        env.pop(inherited, None)  # limits and cache in process memory
    cmd = [*cli, "serve", "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--database-url", db_url, "--workers", "1"]
    target = tg.Target(
        "relaygate", "Relaygate (uvicorn, 1 worker)", port, PLAIN, token=token, metadata=tg.BENCH_METADATA, log=log
    )
    probe = chat_body(PLAIN, STREAM_TEXT)
    start = time.perf_counter()
    target.proc = children.start("relaygate", [*tg.cpu_prefix(cpus), *cmd], log, env=env, cwd=work)
    tg.wait_until(lambda: target.check_200(probe), target.proc, log, "relaygate", timeout_s=60)
    target.startup_s = time.perf_counter() - start
    return target


# ----------------------------------------------------------------------------- checks


def ok_json(a: Answer) -> str:
    return "" if a.status == 200 and b'"choices"' in a.body else f"{a.status} {a.body[:200]!r}"


def ok_stream(a: Answer) -> str:
    if a.status != 200 or a.events != 21 or b"data: [DONE]" not in a.body:
        return f"{a.status}, {a.events} data events: {a.body[:200]!r}"
    return ""


def cache_status(want: str, base: Check) -> Check:
    def check(a: Answer) -> str:
        got = a.headers.get("x-tfy-cache-status", "")
        return base(a) or ("" if got == want else f"x-tfy-cache-status {got!r}, expected {want!r}")

    return check


def no_guardrails(base: Check) -> Check:
    def check(a: Answer) -> str:
        extra = a.headers.get("x-relaygate-guardrails") or a.headers.get("x-tfy-cache-status")
        return base(a) or ("" if extra is None else f"unexpected guardrail/cache header {extra!r}")

    return check


def guarded(a: Answer) -> str:
    verdicts = a.headers.get("x-relaygate-guardrails", "")
    if "bench/ticket=pass" not in verdicts or "bench/pii=pass" not in verdicts:
        return ok_json(a) or f"x-relaygate-guardrails {verdicts!r}"
    if not STAGE_RE.search(a.headers.get("server-timing", "")):
        return "no input_guardrails in server-timing"
    return ok_json(a)


def buffered(a: Answer) -> str:
    if b": relaygate-guardrails bench/pii-out=pass" not in a.body:
        return ok_stream(a) or "no `: relaygate-guardrails bench/pii-out=pass` comment"
    return ok_stream(a)


# ----------------------------------------------------------------------------- the run


@dataclass
class Bench:
    """The connections, bodies and results of one run."""

    gateway: tg.Target
    mock: tg.Mock
    stream_n: int
    cases: dict[str, Case] = field(default_factory=dict)
    unique: int = 0
    upstream: dict[str, float] = field(default_factory=dict)  # cache case -> upstream attempts during its blocks
    conns: dict[str, Conn] = field(default_factory=dict)

    def conn(self, key: str) -> Conn:
        """The kept-alive connection of case `key` (`*-direct` cases: to the mock)."""
        if key not in self.conns:
            direct = key.endswith("-direct")
            port = self.mock.port if direct else self.gateway.port
            headers = {"Content-Type": "application/json"} if direct else self.gateway.headers()
            self.conns[key] = Conn(port, headers)
        return self.conns[key]

    def next_unique(self) -> int:
        self.unique += 1
        return self.unique


def cache_body(model: str, stream: bool, i: int) -> bytes:
    """The cache case's request: `i` < 0 the one body that hits, else a unique one (a miss)."""
    kind = "streamed" if stream else "plain"
    tag = f"the same {kind} question every time" if i < 0 else f"{kind} question number {i}"
    return chat_body(model, f"Write one sentence about the sea, please ({tag}).", stream, CACHE_BODY_BYTES)


def unique_body(bench: Bench, stream: bool) -> Callable[[], bytes]:
    """A new miss body on every call."""
    return lambda: cache_body(PLAIN, stream, bench.next_unique())


def make_cases(bench: Bench) -> None:
    """Every case: what it sends, on which connection, and what a right answer looks like."""
    c = bench.cases
    for stream, pre in ((False, "cache"), (True, "scache")):
        base = ok_stream if stream else ok_json
        hdr = {"x-tfy-cache-config": CACHE_ON}
        same_direct, same = partial(cache_body, "gpt-4o", stream, -1), partial(cache_body, PLAIN, stream, -1)
        c[f"{pre}-direct"] = Case(f"{pre}-direct", "mock directly", stream, same_direct, None, base)
        c[f"{pre}-plain"] = Case(f"{pre}-plain", "gateway, no cache header", stream, same, None, no_guardrails(base))
        c[f"{pre}-miss"] = Case(
            f"{pre}-miss", "gateway, cache miss (unique body)", stream, unique_body(bench, stream), hdr,
            cache_status("miss", base),
        )  # fmt: skip
        c[f"{pre}-hit"] = Case(f"{pre}-hit", "gateway, cache hit", stream, same, hdr, cache_status("hit", base))
    plain_2k, guard_2k = chat_body(PLAIN, PROMPT_2KB), chat_body(GUARD, PROMPT_2KB)
    c["guard-plain"] = Case("guard-plain", PLAIN, False, lambda: plain_2k, None, no_guardrails(ok_json))
    c["guard-on"] = Case("guard-on", f"{GUARD} (regex + pii)", False, lambda: guard_2k, None, guarded)
    s_plain, s_buf = chat_body(PLAIN, STREAM_TEXT, True), chat_body(BUFFER, STREAM_TEXT, True)
    c["buf-plain"] = Case("buf-plain", PLAIN, True, lambda: s_plain, None, no_guardrails(ok_stream))
    c["buf-on"] = Case("buf-on", f"{BUFFER} (pii, buffer)", True, lambda: s_buf, None, buffered)


def send(bench: Bench, case: Case, record: bool) -> None:
    """One request of `case`; its times recorded in the current round when `record`."""
    conn = bench.conn(case.key)
    body = case.body()
    answer = conn.stream(body, case.headers) if case.stream else conn.post(body, case.headers)
    problem = case.check(answer)
    if problem:
        case.failures += 1
        case.first_failure = case.first_failure or problem
    if not record:
        return
    rnd = case.rounds[-1]
    rnd.total.append(answer.total_ms)
    if case.stream:
        rnd.ttfb.append(answer.ttfb_ms)
    timing = answer.headers.get("server-timing", "")
    for name, dur in TIMING_RE.findall(timing):
        rnd.timing.setdefault(name, []).append(float(dur))


def settled_attempts(port: int) -> float:
    """The upstream attempts counter once it stops moving (answers may be counted just after they end)."""
    last = upstream_attempts(port)
    for _ in range(40):
        time.sleep(0.05)
        now = upstream_attempts(port)
        if now == last:
            return now
        last = now
    return last


def block(bench: Bench, keys: list[str], n: int, record: bool) -> None:
    """`n` requests of each case in turn, one block per case; the gateway's upstream attempts counter is
    read before and after each gateway block (hits must not move it; the others show that it counts)."""
    for key in keys:
        case = bench.cases[key]
        bench.conn(key).reopen()
        counted = record and not key.endswith("-direct")
        before = settled_attempts(bench.gateway.port) if counted else 0.0
        for _ in range(n):
            send(bench, case, record)
        if counted:
            after = settled_attempts(bench.gateway.port)
            bench.upstream[key] = bench.upstream.get(key, 0.0) + after - before


def alternate(bench: Bench, keys: list[str], n: int, record: bool) -> None:
    """`n` requests of each case, alternating request by request."""
    cases = [bench.cases[k] for k in keys]
    for key in keys:
        bench.conn(key).reopen()
    for _ in range(n):
        for case in cases:
            send(bench, case, record)


def rotate(keys: list[str], rnd: int) -> list[str]:
    k = rnd % len(keys)
    return keys[k:] + keys[:k]


def prime(bench: Bench, case: Case) -> None:
    """Store the entry a hit case reads: one miss, then wait until the same request hits (the write
    follows the answer)."""
    conn = bench.conn(case.key)
    for attempt in range(100):
        answer = conn.stream(case.body(), case.headers) if case.stream else conn.post(case.body(), case.headers)
        status = answer.headers.get("x-tfy-cache-status", "")
        if answer.status != 200 or status not in ("miss", "hit") or (attempt == 0 and status != "miss"):
            raise tg.TargetError(f"priming {case.key}: {answer.status}, x-tfy-cache-status {status!r}")
        if status == "hit":
            return
        time.sleep(0.05)
    raise tg.TargetError(f"priming {case.key}: still a miss after 100 tries")


def one_round(bench: Bench, rnd: int, n: int, record: bool) -> None:
    """Every phase once; the order of the cases in a phase rotates from round to round."""
    sn = bench.stream_n if record else max(5, bench.stream_n // 10)
    n = n if record else max(50, n // 5)
    if record:
        for case in bench.cases.values():
            case.new_round()
    block(bench, rotate(["cache-direct", "cache-plain", "cache-miss", "cache-hit"], rnd), n, record)
    alternate(bench, rotate(["guard-plain", "guard-on"], rnd), n, record)
    alternate(bench, rotate(["buf-plain", "buf-on"], rnd), sn, record)
    block(bench, rotate(["scache-direct", "scache-plain", "scache-miss", "scache-hit"], rnd), sn, record)


def run(args: argparse.Namespace, children: tg.Children, tmp: Path, info: RunInfo) -> Bench:
    """Start the mock and the gateway, warm up, measure every round."""
    load_cpus, gw_cpus = (args.load_cpus, args.gateway_cpus) if args.pin else (None, None)
    if load_cpus is not None:
        os.sched_setaffinity(0, {int(c) for c in load_cpus.split(",")})  # this client beside the mock
    mock = tg.start_mock(children, tmp, load_cpus)
    log(f"   mock upstream on :{mock.port}")
    gateway = start_gateway(children, tmp, mock, gw_cpus)
    log(f"   relaygate up on :{gateway.port} in {gateway.startup_s:.2f}s")
    info.startup_s = gateway.startup_s or 0.0
    mock.set_pace(args.pace_ms)  # paces streams only; non-streaming answers are immediate
    bench = Bench(gateway, mock, args.stream_requests)
    make_cases(bench)
    for key in ("cache-hit", "scache-hit"):
        prime(bench, bench.cases[key])
    log("   warm-up")
    one_round(bench, 0, args.requests, record=False)
    for rnd in range(1, args.rounds + 1):
        if args.wait_quiet > 0 and machine.wait_quiet(args.wait_quiet) is None:
            log(f"   round {rnd}: the machine stayed busy for {args.wait_quiet:.0f}s; measuring anyway")
        pids = [p.pid for p in (gateway.proc, mock.proc) if p is not None]
        ours0, sys0, wall0 = _our_cpu(pids), _system_cpu(), time.perf_counter()
        one_round(bench, rnd, args.requests, record=True)
        wall = time.perf_counter() - wall0
        other = max(0.0, (_system_cpu() - sys0) - (_our_cpu(pids) - ours0)) / wall
        info.other_cpu.append(other)
        c = bench.cases
        log(
            f"   round {rnd}: {wall:5.1f}s other CPU {other:.2f}  hit {c['cache-hit'].last_p50():.3f} "
            f"miss {c['cache-miss'].last_p50():.3f} direct {c['cache-direct'].last_p50():.3f} ms | guard "
            f"{c['guard-on'].last_p50() - c['guard-plain'].last_p50():+.3f} ms | buffer TTLB "
            f"{c['buf-on'].last_p50() - c['buf-plain'].last_p50():+.3f} ms | stream hit "
            f"{c['scache-hit'].last_p50():.3f} miss {c['scache-miss'].last_p50():.3f} ms"
        )
    for conn in bench.conns.values():
        conn.close()
    return bench


def _our_cpu(pids: list[int]) -> float:
    t = os.times()
    return t.user + t.system + sum(machine.cpu_seconds(p) for p in pids)


def _system_cpu() -> float:
    """CPU seconds the whole machine used so far: user, nice, system, irq and softirq (loopback traffic is
    partly softirq time, which a process's own stime may include), all CPUs."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return sum(int(fields[i]) for i in (1, 2, 3, 6, 7)) / os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    """Progress to stderr (stdout gets the report)."""
    print(msg, file=sys.stderr, flush=True)


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Issue 14: guardrail and response-cache latency at c1.")
    p.add_argument("--rounds", type=int, default=5, help="measured rounds (default 5); tables show medians")
    p.add_argument("--requests", type=int, default=500, help="non-streaming requests per case per round (500)")
    p.add_argument("--stream-requests", type=int, default=200, help="paced streams per case per round (200)")
    p.add_argument("--pace-ms", type=float, default=1.0, help="the mock's pause between stream events (1 ms)")
    p.add_argument("--load-cpus", default="0", help="CPUs of this client and the mock (default 0)")
    p.add_argument("--gateway-cpus", default="1", help="CPUs of the gateway (default 1)")
    p.add_argument("--no-pin", action="store_true", help="do not use taskset")
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="S", help="before each round, wait up to S s")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "features-latest.md"))
    p.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (config, logs, SQLite db)")
    args = p.parse_args(argv)
    args.rounds, args.requests, args.stream_requests = (
        max(1, args.rounds),
        max(1, args.requests),
        max(1, args.stream_requests),
    )
    args.pin = not args.no_pin and (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None
    return args


def _raise_exit(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_exit)
    command = "python bench/features.py " + " ".join(sys.argv[1:] if argv is None else argv)
    info = RunInfo(
        command=command.strip(),
        date=dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        load_before=loadavg(),
        machine=f"{os.cpu_count()} CPUs ({machine.cpu_model()}), {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}",
        pinning=f"client + mock on CPU {args.load_cpus}, gateway on CPU {args.gateway_cpus} (taskset)"
        if args.pin
        else "none",
        rounds=args.rounds,
        requests=args.requests,
        stream_requests=args.stream_requests,
        pace_ms=args.pace_ms,
    )
    children = tg.Children()
    tmp = Path(tempfile.mkdtemp(prefix="relaygate-features-"))
    keep = args.keep_tmp
    try:
        log(f"== temp dir {tmp}")
        started = time.perf_counter()
        bench = run(args, children, tmp, info)
        info.load_after = loadavg()
        info.duration_s = time.perf_counter() - started
        report = render(info, bench.cases, bench.upstream)
        print(report)
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(report)
        log(f"== report written to {out}")
        clean = not any(case.failures for case in bench.cases.values())
        clean = clean and not any(v for k, v in bench.upstream.items() if k.endswith("-hit"))
        if not clean:
            keep = True
            log("!! some answers were not as expected (see the report's Checks)")
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
