"""The config size cap (`--max-config-bytes`, 1 MiB by default): an oversized file or directory is refused
before it is read or parsed, in the loader, `check`, `serve` and `apply` (hot reload:
tests/e2e/test_config_startup.py)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from relaygate.config.compile import load_snapshot
from relaygate.config.loader import load_path
from relaygate.config.options import LoadOptions
from relaygate.config.problems import ConfigError
from tests.helpers.gateway import free_port, run_cli, subprocess_env

MIB = 1024 * 1024
MOCK = """\
type: provider-account/mock
name: mock
integrations:
  - {name: echo, type: integration/model/mock, model_id: echo-1, model_types: [chat]}
"""


def big_manifest(path: Path, size: int) -> Path:
    """A valid mock manifest padded with many more small integrations up to `size` bytes: parsing it
    whole takes seconds (YAML), which is what the cap must avoid."""
    lines = [MOCK]
    n = 0
    total = len(MOCK)
    while total < size:
        line = f"  - {{name: m{n:07d}, type: integration/model/mock, model_id: m, model_types: [chat]}}\n"
        lines.append(line)
        total += len(line)
        n += 1
    path.write_text("".join(lines))
    return path


def test_ten_mib_file_is_refused_quickly_with_the_limit_named(tmp_path: Path) -> None:
    big = big_manifest(tmp_path / "big.yaml", 10 * MIB)
    started = time.perf_counter()
    with pytest.raises(ConfigError) as caught:
        load_snapshot(str(big))
    took = time.perf_counter() - started
    assert took < 1.0, f"took {took:.2f}s to refuse"  # measured ~0.001 s; parsing it took ~4.5 s
    [problem] = caught.value.problems
    assert problem.file == str(big)
    assert "1048576" in problem.rule and "--max-config-bytes" in problem.rule and "10.0 MiB" in problem.rule


def test_a_file_at_the_limit_loads(tmp_path: Path) -> None:
    path = tmp_path / "gw.yaml"
    path.write_text(MOCK)
    size = path.stat().st_size
    assert load_snapshot(str(path), LoadOptions(max_config_bytes=size)).models
    with pytest.raises(ConfigError, match="over the"):
        load_snapshot(str(path), LoadOptions(max_config_bytes=size - 1))


def test_a_directory_counts_all_its_files_together(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(MOCK)
    (tmp_path / "b.yaml").write_text("type: team\nname: ml\n")
    total = sum(p.stat().st_size for p in tmp_path.iterdir())
    assert load_path(tmp_path, env={}, max_bytes=total).teams
    with pytest.raises(ConfigError) as caught:
        load_path(tmp_path, env={}, max_bytes=total - 1)
    assert [p.file for p in caught.value.problems] == [str(tmp_path)]


def cli(*args: str, stdin: str | None = None) -> tuple[int, str, float]:
    """`python -m relaygate ARGS`: exit code, stdout + stderr, seconds."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "relaygate", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=120,
        check=False,
    )
    return result.returncode, result.stdout + result.stderr, time.perf_counter() - started


def test_check_refuses_an_oversized_file(tmp_path: Path) -> None:
    big = big_manifest(tmp_path / "big.yaml", 10 * MIB)
    code, output, took = cli("check", "-f", str(big))
    assert code == 1, output
    assert "big.yaml" in output and "over the 1.0 MiB (1048576 bytes) limit" in output, output
    # The whole process, interpreter start included: measured 0.35 s (the size is checked before the loader and
    # compiler are imported); before the cap, parsing the file took ~4.5 s. Generous for a loaded 2-core VM.
    assert took < 3.0, f"check took {took:.2f}s"


def test_check_max_config_bytes_flag_and_environment_variable(tmp_path: Path) -> None:
    path = tmp_path / "gw.yaml"
    path.write_text(MOCK)
    code, output, _ = cli("check", "-f", str(path), "--max-config-bytes", "50")
    assert code == 1 and "(50 bytes) limit" in output, output
    result = run_cli("check", "-f", str(path), env=subprocess_env(RELAYGATE_MAX_CONFIG_BYTES="50"))
    assert result.returncode == 1 and "(50 bytes) limit" in result.stdout, result.stdout + result.stderr
    code, output, _ = cli("check", "-f", str(path), "--max-config-bytes", "4096")
    assert code == 0, output


def test_serve_refuses_an_oversized_config_before_starting(tmp_path: Path) -> None:
    path = tmp_path / "gw.yaml"
    path.write_text(MOCK)
    code, output, _ = cli(
        "serve",
        "--config",
        str(path),
        "--port",
        str(free_port()),
        "--max-config-bytes",
        "50",
        "--database-url",
        f"sqlite:///{tmp_path / 'db.sqlite'}",
    )
    assert code == 1, output
    assert "(50 bytes) limit" in output and "not starting" in output, output


def test_apply_refuses_an_oversized_file_and_stdin(tmp_path: Path) -> None:
    path = tmp_path / "gw.yaml"
    path.write_text(MOCK)
    database = f"sqlite:///{tmp_path / 'db.sqlite'}"
    code, output, _ = cli("apply", "-f", str(path), "--database-url", database, "--max-config-bytes", "50")
    assert code == 2 and "(50 bytes) limit" in output, output
    code, output, _ = cli("apply", "-f", "-", "--database-url", database, "--max-config-bytes", "50", stdin=MOCK)
    assert code == 2 and "<stdin>" in output and "50 bytes" in output, output
    code, output, _ = cli("apply", "-f", str(path), "--database-url", database)
    assert code == 0, output
    # diff reads the stored config, so it runs once the database exists (it never creates one)
    code, output, _ = cli("diff", "-f", str(path), "--database-url", database, "--max-config-bytes", "50")
    assert code == 2 and "(50 bytes) limit" in output, output
