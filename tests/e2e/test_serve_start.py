"""`relaygate serve` that cannot start: one clear line and exit 1, before anything says "ready".

A port someone else listens on (with one process or `--workers`), and request limits that would
refuse every request."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.helpers.gateway import REPO_ROOT, run_cli


@pytest.mark.parametrize("workers", ["1", "2"])
def test_busy_port_fails_before_ready_with_one_line(tmp_path: Path, workers: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = run_cli(
            "serve",
            "--config",
            str(REPO_ROOT / "examples" / "quickstart.yaml"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            workers,
            "--database-url",
            f"sqlite:///{tmp_path / 'relaygate.db'}",
            cwd=tmp_path,
            timeout=30,
        )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "relaygate ready" not in output
    assert "Application startup" not in output  # nothing was started
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [f"relaygate: cannot listen on 127.0.0.1:{port}: address already in use"]


@pytest.mark.parametrize(
    ("flag", "value", "line"),
    [
        ("--max-headers", "0", "relaygate: --max-headers (RELAYGATE_MAX_HEADERS) must be at least 1, got 0"),
        (
            "--header-timeout",
            "-1",
            "relaygate: --header-timeout (RELAYGATE_HEADER_TIMEOUT) must be 0 (off) or more, got -1.0",
        ),
    ],
)
def test_impossible_request_limit_is_refused_at_start(tmp_path: Path, flag: str, value: str, line: str) -> None:
    result = run_cli(
        "serve",
        "--config",
        str(REPO_ROOT / "examples" / "quickstart.yaml"),
        "--port",
        "0",
        flag,
        value,
        "--database-url",
        f"sqlite:///{tmp_path / 'relaygate.db'}",
        cwd=tmp_path,
        timeout=30,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert [text for text in result.stderr.splitlines() if text.strip()] == [line]
