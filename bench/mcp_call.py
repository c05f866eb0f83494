"""MCP `tools/call` through Relaygate vs direct to the same MCP server, at concurrency 1 and 16.

    python bench/mcp_call.py                  # 5 s per run; prints a markdown table
    python bench/mcp_call.py --duration 2     # a quick look
    python bench/mcp_call.py --paired         # plus c1 with direct and gateway calls alternated

What runs: an MCP server written with the official SDK (`MCPServer`, JSON answers, one `echo` tool) in
its own process, `relaygate serve` in another with one `mcp-server/remote` manifest pointing at it,
and this process as the client (aiohttp, keep-alive): one session per client task (initialize, then
`tools/call echo` in a loop). "direct" calls the server itself; "relaygate" calls `/mcp/bench`
with a Relaygate token, so the gateway authenticates, opens its session id, checks access, writes the
log row and relays the answer. The number that matters is the added p50 at c1 (the issue's target:
under 1 ms); the c16 run shows throughput under load. Both share the machine with the client, so
compare within one run, not across machines. As bench/run.py does, the gateway runs on one CPU and
the client and the MCP server on another (`taskset`; `--no-pin` to leave scheduling to the kernel).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
ACCEPT = "application/json, text/event-stream"
INIT = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}},
}
UPSTREAM = """
import sys, uvicorn
from mcp.server.mcpserver import MCPServer
server = MCPServer("bench", log_level="WARNING")
@server.tool()
def echo(text: str) -> str:
    return text
app = server.streamable_http_app(streamable_http_path="/mcp", json_response=True)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""
CONFIG = """
type: mcp-server/remote
name: bench
url: http://127.0.0.1:{port}/mcp
collaborators: [{{subject: team:everyone, role_id: mcp-server-user}}]
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_up(url: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            try:
                async with http.get(url) as response:
                    await response.read()
                    return
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


CALL = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "hi"}}}


async def open_session(http: aiohttp.ClientSession, url: str, token: str | None) -> dict[str, str]:
    """initialize, then `notifications/initialized`: the headers of the session's requests."""
    headers = {"Accept": ACCEPT, "Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with http.post(url, json=INIT, headers=headers) as response:
        await response.read()
        session_id = response.headers["mcp-session-id"]
    headers = {**headers, "Mcp-Session-Id": session_id, "MCP-Protocol-Version": "2025-11-25"}
    async with http.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers) as r:
        await r.read()
    return headers


async def timed_call(http: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> float:
    """One `tools/call echo`, in seconds."""
    started = time.perf_counter()
    async with http.post(url, json=CALL, headers=headers) as response:
        body = await response.read()
    elapsed = time.perf_counter() - started
    assert response.status == 200 and b'"hi"' in body, body[:200]
    return elapsed


async def one_client(http: aiohttp.ClientSession, url: str, token: str | None, until: float, out: list[float]) -> None:
    headers = await open_session(http, url, token)
    while time.perf_counter() < until:
        out.append(await timed_call(http, url, headers))


async def paired(direct_url: str, gateway_url: str, token: str, duration: float) -> dict[str, float]:
    """c1, a direct call and a call through the gateway alternately, so whatever slows the machine
    meanwhile slows both alike: the p50 of each, and the median of the per-pair differences."""
    direct: list[float] = []
    gateway: list[float] = []
    async with aiohttp.ClientSession() as http:
        direct_headers = await open_session(http, direct_url, None)
        gateway_headers = await open_session(http, gateway_url, token)
        warm_until = time.perf_counter() + 0.5
        while time.perf_counter() < warm_until:
            await timed_call(http, direct_url, direct_headers)
            await timed_call(http, gateway_url, gateway_headers)
        until = time.perf_counter() + duration
        while time.perf_counter() < until:
            direct.append(await timed_call(http, direct_url, direct_headers))
            gateway.append(await timed_call(http, gateway_url, gateway_headers))
    added = sorted(g - d for d, g in zip(direct, gateway, strict=True))
    return {
        "pairs": len(added),
        "direct_p50": statistics.median(direct) * 1000,
        "gateway_p50": statistics.median(gateway) * 1000,
        "added_p50": statistics.median(added) * 1000,
    }


async def measure(url: str, token: str | None, concurrency: int, duration: float) -> dict[str, float]:
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        warm: list[float] = []
        await one_client(http, url, token, time.perf_counter() + 0.5, warm)
        until = time.perf_counter() + duration
        await asyncio.gather(*(one_client(http, url, token, until, latencies) for _ in range(concurrency)))
    latencies.sort()
    return {
        "rps": len(latencies) / duration,
        "p50": statistics.median(latencies) * 1000,
        "p99": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument(
        "--concurrency", type=lambda text: [int(c) for c in text.split(",")], default=[1, 16], help="default 1,16"
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin the processes to CPUs")
    parser.add_argument(
        "--paired", action="store_true", help="also c1 with direct and gateway calls alternated (drift-proof added p50)"
    )
    args = parser.parse_args()
    pin = not args.no_pin and (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None
    load_cpu, gateway_cpu = ["taskset", "-c", "0"] if pin else [], ["taskset", "-c", "1"] if pin else []
    if pin:
        os.sched_setaffinity(0, {0})
    tmp = Path(tempfile.mkdtemp(prefix="relaygate-mcp-bench-"))
    upstream_port, gateway_port = free_port(), free_port()
    (tmp / "relaygate.yaml").write_text(CONFIG.format(port=upstream_port))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RELAYGATE_ACCESS_LOG": "off"}
    common = ["--config", str(tmp / "relaygate.yaml"), "--database-url", f"sqlite:///{tmp / 'bench.db'}"]
    cli = [sys.executable, "-m", "relaygate.cli"]
    token = (
        subprocess.run(
            [*cli, "tokens", "create", *common, "--user", "bench@example.com"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    children = [
        subprocess.Popen(
            [*load_cpu, sys.executable, "-c", UPSTREAM, str(upstream_port)], env=env, start_new_session=True
        ),
        subprocess.Popen(
            [*gateway_cpu, *cli, "serve", *common, "--port", str(gateway_port)],
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
    ]
    try:
        asyncio.run(wait_up(f"http://127.0.0.1:{gateway_port}/health"))
        time.sleep(1.0)
        rows = []
        for concurrency in args.concurrency:
            direct = asyncio.run(measure(f"http://127.0.0.1:{upstream_port}/mcp", None, concurrency, args.duration))
            gateway = asyncio.run(
                measure(f"http://127.0.0.1:{gateway_port}/mcp/bench", token, concurrency, args.duration)
            )
            rows.append((concurrency, direct, gateway))
        print("| c | direct rps | relaygate rps | direct p50 ms | relaygate p50 ms | added p50 ms | relaygate p99 ms |")
        print("|---|---|---|---|---|---|---|")
        for concurrency, direct, gateway in rows:
            print(
                f"| {concurrency} | {direct['rps']:.0f} | {gateway['rps']:.0f} | {direct['p50']:.2f} | "
                f"{gateway['p50']:.2f} | {gateway['p50'] - direct['p50']:.2f} | {gateway['p99']:.2f} |"
            )
        if args.paired:
            pair = asyncio.run(
                paired(
                    f"http://127.0.0.1:{upstream_port}/mcp",
                    f"http://127.0.0.1:{gateway_port}/mcp/bench",
                    token,
                    args.duration,
                )
            )
            print(
                f"\nc1 paired ({pair['pairs']:.0f} pairs, calls alternated): direct p50 {pair['direct_p50']:.2f} ms, "
                f"relaygate p50 {pair['gateway_p50']:.2f} ms, added p50 {pair['added_p50']:.2f} ms "
                "(median of the per-pair differences)"
            )
    finally:
        for child in children:
            os.killpg(child.pid, signal.SIGTERM)
            child.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
