#!/usr/bin/env python3
"""CPU per request of Relaygate built from several source trees, measured side by side in one run.

    git worktree add --detach /tmp/base <commit-before>
    python bench/cpu_ab.py /tmp/base,. --scenarios ns,stb,px --rounds 6 --duration 4
    python bench/cpu_ab.py '.@RELAYGATE_METRICS=off,.,.@OTEL_EXPORTER_OTLP_ENDPOINT={otlp}' --rounds 6

A tree may carry environment variables after `@` (`tree@VAR=value@VAR2=value`), so one tree is
measured with a feature off and on in the same run; `{otlp}` in a value is the URL of a local OTLP/HTTP
receiver the script starts (bench/otlp_sink.py: accepts and counts export requests, stores nothing).

Whole-gateway throughput on a shared 2-core VM moves by ±5% between runs of the same code; the CPU
time the gateway process spends per request moves far less, and is what a code change changes. Each
tree gets its own `relaygate serve` (PYTHONPATH=<tree>, same config, same SQLite request log on, one
token) pinned to CPU 1, all behind one mock upstream on CPU 0, and wrk (CPU 0, 16 connections) loads
them in turn; the order of the trees flips every round, so drift hits all alike. Printed per scenario
and tree: median and minimum CPU µs per request (utime + stime of the process, all its threads, over
wrk's request count) and median and best requests/s.

Scenarios: `ns` non-streaming chat, `stb` streaming chat (burst: 21 events in one upstream write),
`px` the custom-endpoint JSON POST; the same requests as bench/run.py's ns_c16, stb_c16 and px_c16.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.configs import BENCH_USER, relaygate_yaml  # noqa: E402

BENCH = Path(__file__).resolve().parent
CHAT = '{"model":"bench-openai/gpt-4o","messages":[{"role":"user","content":"hi"}]'
SCENARIOS = {
    "ns": (CHAT + "}", "/v1/chat/completions"),
    "stb": (CHAT + ',"stream":true}', "/v1/chat/completions"),
    "px": ('{"a":1,"b":"hello world","c":[1,2,3],"d":{"x":"y"}}', "/proxy-api/bench-proxy/mock/echo-json"),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on port {port} after {timeout:g} s (see the logs in the temp dir)")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Gateway:
    """One `relaygate serve` from one source tree."""

    def __init__(self, spec: str, work: Path, mock_port: int, otlp_url: str) -> None:
        self.tree = spec
        tree, *assignments = spec.split("@")
        work.mkdir()
        (work / "bench.yaml").write_text(relaygate_yaml(mock_port))
        env = dict(os.environ, PYTHONPATH=str(Path(tree).resolve()))
        for assignment in assignments:
            name, _, value = assignment.partition("=")
            env[name] = value.replace("{otlp}", otlp_url)
        db = f"sqlite:///{work / 'bench.db'}"
        cli = [sys.executable, "-c", "import sys; from relaygate.cli import main; sys.exit(main())"]
        created = subprocess.run(
            [*cli, "tokens", "create", "--user", BENCH_USER, "--database-url", db],
            env=env,
            capture_output=True,
            text=True,
            cwd=work,
            check=True,
        )
        self.token = created.stdout.strip().splitlines()[-1]
        self.port = free_port()
        with (work / "relaygate.log").open("w") as log:
            self.proc = subprocess.Popen(
                [
                    "taskset",
                    "-c",
                    "1",
                    *cli,
                    "serve",
                    "--config",
                    str(work / "bench.yaml"),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--database-url",
                    db,
                ],
                env=env,
                cwd=work,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_port(self.port)

    def load(self, scenario: str, seconds: int) -> tuple[float, float]:
        """CPU µs per request and requests/s of one wrk run."""
        body, path = SCENARIOS[scenario]
        env = dict(
            os.environ, BENCH_METHOD="POST", BENCH_BODY=body, BENCH_TOKEN=self.token, BENCH_METADATA='{"app":"bench"}'
        )
        before = cpu_seconds(self.proc.pid)
        wrk = [
            "taskset",
            "-c",
            "0",
            "wrk",
            "-t1",
            "-c16",
            f"-d{seconds}s",
            "-s",
            str(BENCH / "chat.lua"),
            f"http://127.0.0.1:{self.port}{path}",
        ]
        out = subprocess.run(wrk, env=env, capture_output=True, text=True).stdout
        used = cpu_seconds(self.proc.pid) - before
        summary = json.loads(out.split("BENCH_JSON ", 1)[1].splitlines()[0])
        if summary["status_errors"] or not summary["requests"]:
            raise SystemExit(f"{self.tree} {scenario}: wrk saw errors: {summary}")
        return used * 1e6 / summary["requests"], summary["requests"] / seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trees", help="comma-separated source trees (each holds relaygate/)")
    parser.add_argument("--scenarios", default="ns,stb,px", help="comma-separated: ns, stb, px (default all)")
    parser.add_argument("--rounds", type=int, default=6, help="measured runs per tree and scenario (default 6)")
    parser.add_argument("--duration", type=int, default=4, help="seconds per run (default 4)")
    args = parser.parse_args()
    trees = args.trees.split(",")
    scenarios = args.scenarios.split(",")
    tmp = Path(tempfile.mkdtemp(prefix="cpu-ab-"))
    mock_port = free_port()
    mock = subprocess.Popen(
        ["taskset", "-c", "0", sys.executable, str(BENCH / "mock_upstream.py"), "--port", str(mock_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    sink_port = free_port()
    sink = subprocess.Popen(
        ["taskset", "-c", "0", sys.executable, str(BENCH / "otlp_sink.py"), "--port", str(sink_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    gateways: list[Gateway] = []
    try:
        wait_port(mock_port)
        wait_port(sink_port)
        otlp = f"http://127.0.0.1:{sink_port}"
        gateways = [Gateway(tree, tmp / str(i), mock_port, otlp) for i, tree in enumerate(trees)]
        for gateway in gateways:
            for scenario in scenarios:
                gateway.load(scenario, 2)  # warm-up
        results: dict[tuple[int, str], list[tuple[float, float]]] = {}
        for round_ in range(args.rounds):
            order = list(enumerate(gateways))
            for scenario in scenarios:
                for i, gateway in order if round_ % 2 == 0 else order[::-1]:
                    results.setdefault((i, scenario), []).append(gateway.load(scenario, args.duration))
        for scenario in scenarios:
            for i, tree in enumerate(trees):
                cpu = [c for c, _ in results[(i, scenario)]]
                rps = [r for _, r in results[(i, scenario)]]
                print(
                    f"{scenario:4} {tree:50} CPU µs/req median {statistics.median(cpu):6.1f} min {min(cpu):6.1f}"
                    f"   rps median {statistics.median(rps):7.0f} best {max(rps):7.0f}"
                )
    finally:
        for gateway in gateways:
            gateway.proc.send_signal(signal.SIGINT)
        mock.kill()
        sink.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
