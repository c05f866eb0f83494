"""`scripts/two-replicas.sh` (the README's multi-replica walkthrough) runs as documented.

`--check --own` starts a private Redis and PostgreSQL in a temp dir, two replicas, and verifies the
shared rate limit, the shared budget and the shared request log; the Ctrl-C test runs the
interactive mode against whatever the script finds (the machine's Redis and PostgreSQL when they
answer) and checks that everything it started is gone afterwards.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.gateway import REPO_ROOT, free_port, subprocess_env

SCRIPT = REPO_ROOT / "scripts" / "two-replicas.sh"


def _pg_tool(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(candidates[-1]) if candidates else None


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _can_start_own() -> bool:
    if not (shutil.which("redis-server") and _pg_tool("initdb") and _pg_tool("pg_ctl")):
        return False
    if os.geteuid() == 0:  # initdb refuses root; the script runs it as `postgres`
        has_user = subprocess.run(["id", "postgres"], capture_output=True).returncode == 0
        return has_user and shutil.which("runuser") is not None
    return True


def _env(**extra: str) -> dict[str, str]:
    return subprocess_env(PYTHON=sys.executable, **extra)


needs_tools = pytest.mark.skipif(
    shutil.which("curl") is None or shutil.which("bash") is None, reason="the script needs bash and curl"
)


@needs_tools
@pytest.mark.skipif(not _can_start_own(), reason="redis-server, initdb and pg_ctl are needed to start private servers")
def test_check_mode_shares_limit_budget_and_log_across_two_replicas() -> None:
    started = time.monotonic()
    result = subprocess.run(
        ["bash", str(SCRIPT), "--check", "--own"], capture_output=True, text=True, timeout=90, env=_env(), cwd=REPO_ROOT
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "started redis-server" in output and "started a private server" in output
    assert "call 6 -> replica B:   429" in output  # the 5-per-minute rule counted calls on both replicas
    assert "budget_exceeded" in output
    assert "check passed" in output
    assert time.monotonic() - started < 60


@needs_tools
@pytest.mark.skipif(
    not (_answers(6379) and _answers(5432)) and not _can_start_own(),
    reason="neither running Redis/PostgreSQL on 127.0.0.1 nor the binaries to start them",
)
def test_ctrl_c_stops_both_replicas() -> None:
    port_a, port_b = free_port(), free_port()
    proc = subprocess.Popen(
        ["bash", str(SCRIPT)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_env(PORT_A=str(port_a), PORT_B=str(port_b)),
        cwd=REPO_ROOT,
    )
    assert proc.stdout is not None
    output: list[str] = []
    try:
        for line in proc.stdout:
            output.append(line)
            if "Ctrl-C stops" in line:
                break
        assert _answers(port_a) and _answers(port_b), "".join(output)[-4000:]
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, "".join(output)[-4000:] + rest
    assert not _answers(port_a) and not _answers(port_b)
