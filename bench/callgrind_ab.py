#!/usr/bin/env python3
"""Instructions per chat request of one gateway variant, counted by valgrind's callgrind.

    python bench/callgrind_ab.py metrics-off 1000 RELAYGATE_METRICS=off
    python bench/callgrind_ab.py metrics-on 1000
    python bench/callgrind_ab.py tracing 1000 OTEL_EXPORTER_OTLP_ENDPOINT={otlp}
    python bench/callgrind_ab.py full 1024 OTEL_EXPORTER_OTLP_ENDPOINT={otlp} OTEL_BSP_SCHEDULE_DELAY=600000
    python bench/callgrind_ab.py before 1000 PYTHONPATH=/path/to/older/tree
    python bench/callgrind_ab.py --scenario stream before 1000 PYTHONPATH=/path/to/older/tree

`--scenario`: `chat` (default; a non-streaming chat request), `stream` (a streaming chat request,
the mock's 21-event burst read to its end), `proxy` (the custom endpoint's JSON POST,
`/proxy-api/.../echo-json`), the three paths bench/run.py measures as ns, stb and px, or `mcp` (an MCP
`tools/call` in one session, to bench/mcp_call.py's MCP server, as that benchmark sends it).

Wall-clock A/B on a shared VM moves by ±10-20% from run to run; instruction counts do not (two runs
of one variant agree within 0.5%). The gateway runs under `valgrind --tool=callgrind` with counting
off; after 256 warm-up requests counting is switched on (`callgrind_control -i on`), N sequential
non-streaming chat requests are sent (bench/mock_upstream.py answers them), the background writers
get a few seconds to drain, and the counts are dumped. Printed: all instructions of the gateway
process (every thread: the request path, the log writer, span export) divided by N. The access
log is off unless a variant sets it; `{otlp}` is the URL of a local bench/otlp_sink.py.

Tracing: the 256 warm-up requests fill exactly one export batch of 512 spans, so the exporter's
first post (connection, lazy imports) is not counted. Under valgrind the gateway serves some ten
requests a second, so the default export every 5 s posts a batch of ~100 spans each time: a post per
~50 requests, where under load (c16, ~2,000 requests/s) a post carries 512 spans (256 chat requests).
`OTEL_BSP_SCHEDULE_DELAY=600000` with N a multiple of 256 counts only full batches, as under load.
"""

from __future__ import annotations

import glob
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.configs import BENCH_USER, PLAIN_MODEL, PROXY_PREFIX, relaygate_yaml  # noqa: E402
from bench.mcp_call import CONFIG as MCP_CONFIG  # noqa: E402
from bench.mcp_call import INIT as MCP_INIT  # noqa: E402
from bench.mcp_call import UPSTREAM as MCP_UPSTREAM  # noqa: E402
from bench.measuring import ECHO_BODY, ECHO_PATH, json_body  # noqa: E402

BENCH = Path(__file__).resolve().parent
WARM_UP = 256  # one full export batch (512 spans) with tracing on
IDLE_SECONDS = 20.0  # counted with no request, to subtract the background threads' share
DRAIN_SECONDS = 6.0
SCENARIOS = {  # path, body
    "chat": (
        "/v1/chat/completions",
        json.dumps({"model": PLAIN_MODEL, "messages": [{"role": "user", "content": "hi"}]}),
    ),
    "stream": ("/v1/chat/completions", json_body(PLAIN_MODEL, True)),
    "proxy": (PROXY_PREFIX + ECHO_PATH, ECHO_BODY),
    "mcp": (
        "/mcp/bench",
        json.dumps(
            {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "hi"}}}
        ),
    ),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 900.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"nothing listens on {port} after {timeout:g} s") from None
            time.sleep(1)


def dumped_total(work: Path, reason: str) -> int:
    """The instructions counted since the previous dump, from the dump `callgrind_control -d reason` made."""
    for path in glob.glob(str(work / "callgrind.out*")):
        lines = Path(path).read_text(errors="replace").splitlines()
        if f"desc: Trigger: dump {reason}" in lines[:40]:
            return max(int(line.split()[1]) for line in lines if line.startswith(("summary:", "totals:")))
    raise SystemExit(f"no callgrind dump {reason!r} in {work}")


def mcp_session(connection: http.client.HTTPConnection, headers: dict[str, str], path: str) -> dict[str, str]:
    """Open an MCP session (initialize, then `notifications/initialized`): the headers of its requests."""
    session = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}
    connection.request("POST", path, json.dumps(MCP_INIT), {**headers, **session})
    response = connection.getresponse()
    response.read()
    session["Mcp-Session-Id"] = response.headers["mcp-session-id"]
    connection.request(
        "POST", path, json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}), {**headers, **session}
    )
    connection.getresponse().read()
    return session


def main() -> int:
    args = sys.argv[1:]
    scenario = "chat"
    if args[:1] == ["--scenario"]:
        scenario, args = args[1], args[2:]
    if len(args) < 2 or scenario not in SCENARIOS:
        raise SystemExit(__doc__)
    label, count = args[0], int(args[1])
    variables = dict(arg.split("=", 1) for arg in args[2:])
    path, body = SCENARIOS[scenario]
    work = Path(f"/tmp/callgrind-ab/{label}")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    mock_port, gateway_port, sink_port = free_port(), free_port(), free_port()
    python = sys.executable
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    if scenario == "mcp":
        mock = subprocess.Popen([python, "-c", MCP_UPSTREAM, str(mock_port)], **quiet)  # type: ignore[call-overload]
    else:
        mock = subprocess.Popen([python, str(BENCH / "mock_upstream.py"), "--port", str(mock_port)], **quiet)  # type: ignore[call-overload]
    sink = subprocess.Popen([python, str(BENCH / "otlp_sink.py"), "--port", str(sink_port)], **quiet)  # type: ignore[call-overload]
    config = MCP_CONFIG.format(port=mock_port) if scenario == "mcp" else relaygate_yaml(mock_port)
    (work / "bench.yaml").write_text(config)
    database = f"sqlite:///{work / 'bench.db'}"
    # Run from the work directory: `python -m` puts the current directory first on sys.path, so from a
    # source tree every variant would import that tree and a PYTHONPATH variable would change nothing.
    cli = [python, "-m", "relaygate"]
    otlp = f"http://127.0.0.1:{sink_port}"
    env = dict(os.environ, RELAYGATE_ACCESS_LOG="off")
    env.update({name: value.replace("{otlp}", otlp) for name, value in variables.items()})
    created = subprocess.run(
        [*cli, "tokens", "create", "--user", BENCH_USER, "--database-url", database],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=work,
    )
    token = created.stdout.strip().splitlines()[-1]
    with (work / "gateway.log").open("w") as log:
        gateway = subprocess.Popen(
            [
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                f"--callgrind-out-file={work / 'callgrind.out'}",
                *cli,
                "serve",
                "--config",
                str(work / "bench.yaml"),
                "--port",
                str(gateway_port),
                "--database-url",
                database,
            ],
            env=env,
            cwd=work,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_port(gateway_port)
        wait_port(mock_port)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        connection = http.client.HTTPConnection("127.0.0.1", gateway_port, timeout=120)
        if scenario == "mcp":
            headers.update(mcp_session(connection, headers, path))

        def send(times: int) -> None:
            for _ in range(times):
                connection.request("POST", path, body, headers)
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    raise SystemExit(f"{label}: status {response.status}")

        send(WARM_UP)
        time.sleep(2)
        control = ["callgrind_control"]
        subprocess.run([*control, "-i", "on", str(gateway.pid)], capture_output=True, check=True)
        time.sleep(IDLE_SECONDS)  # what the gateway's background threads cost while no request comes
        subprocess.run([*control, "-d", "idle", str(gateway.pid)], capture_output=True, check=True)
        idle = dumped_total(work, "idle")
        started = time.monotonic()
        send(count)
        time.sleep(DRAIN_SECONDS)  # the batched writers (request log, span export) handle these requests too
        elapsed = time.monotonic() - started
        subprocess.run([*control, "-d", "requests", str(gateway.pid)], capture_output=True, check=True)
        time.sleep(3)
        connection.close()
        total = dumped_total(work, "requests")
        background = idle / IDLE_SECONDS * elapsed
        print(
            f"{label} ({scenario}): {total / count:,.0f} instructions per request ({count} requests); "
            f"{(total - background) / count:,.0f} without the idle background ({idle / IDLE_SECONDS:,.0f}/s "
            f"over {elapsed:.0f} s)"
        )
    finally:
        gateway.send_signal(signal.SIGINT)
        try:
            gateway.wait(60)
        except subprocess.TimeoutExpired:
            gateway.kill()
        mock.kill()
        sink.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
