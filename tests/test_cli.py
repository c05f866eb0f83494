"""The `relaygate` command line as a first-time user meets it: help, version, pipes, missing databases,
and `relaygate logs purge` beside the filter flags of `relaygate logs`."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import orjson
import pytest

from relaygate.cli_parser import build_parser
from relaygate.observe.store.sqlite import SQLiteLogStore
from tests.helpers.gateway import REPO_ROOT, run_cli, subprocess_env
from tests.helpers.log_records import log_record

DAY = 86_400.0
COMMANDS = ("serve", "check", "apply", "diff", "tokens", "logs", "migrate")


def _parsers(parser: argparse.ArgumentParser, path: str = "relaygate") -> list[tuple[str, argparse.ArgumentParser]]:
    """Every parser of the command tree, with its command line (`relaygate tokens create`)."""
    found = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += _parsers(child, f"{path} {name}")
    return found


# -- help and version ---------------------------------------------------------------------------------


def test_version_prints_the_package_version() -> None:
    version = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
    result = run_cli("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"relaygate {version}"


def test_no_arguments_prints_help() -> None:
    result = run_cli()
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: relaygate")
    for command in COMMANDS:
        assert f"\n    {command} " in result.stdout, command
    assert "error" not in result.stdout + result.stderr


def test_every_command_has_a_description() -> None:
    parsers = _parsers(build_parser())
    assert {path for path, _ in parsers} >= {f"relaygate {c}" for c in COMMANDS} | {
        "relaygate tokens create",
        "relaygate tokens list",
        "relaygate tokens revoke",
    }
    for path, parser in parsers:
        assert parser.description and len(parser.description) > 15, path
        assert parser.description in " ".join(parser.format_help().split()) or " ".join(parser.description.split())[
            :40
        ] in " ".join(parser.format_help().split()), path


def test_every_option_help_says_its_default() -> None:
    checked = 0
    for path, parser in _parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction | argparse._VersionAction | argparse._SubParsersAction):
                continue
            assert action.help, f"{path} {action.option_strings or action.dest} has no help text"
            if action.option_strings:
                assert "default" in action.help or "required" in action.help, (
                    f"{path} {action.option_strings[0]}: help does not say its default: {action.help!r}"
                )
                checked += 1
    assert checked > 50


@pytest.mark.parametrize(
    "command",
    [
        c.split()
        for c in (
            "serve",
            "check",
            "apply",
            "diff",
            "tokens",
            "tokens create",
            "tokens list",
            "tokens revoke",
            "logs",
            "migrate",
        )
    ],
)
def test_help_of_every_command_runs_and_shows_defaults(command: list[str]) -> None:
    result = run_cli(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: relaygate {' '.join(command)}")
    if command != ["tokens"]:  # `tokens` has only its three commands
        assert "default" in result.stdout


def test_missing_subcommand_names_the_choices_not_an_internal_name() -> None:
    result = run_cli("tokens")
    assert result.returncode == 2
    assert "tokens_command" not in result.stderr and "_command" not in result.stderr
    assert "{create,list,revoke}" in result.stderr


def _typed_options() -> list[tuple[str, str]]:
    """(command, option) for every option converted by a function of ours (not int/float/str)."""
    found = []
    for path, parser in _parsers(build_parser()):
        for action in parser._actions:
            if action.option_strings and callable(action.type) and action.type not in (int, float, str):
                found.append((path, action.option_strings[-1]))
    return found


def test_bad_option_values_are_explained_without_function_names() -> None:
    options = _typed_options()
    assert ("relaygate serve", "--log-bodies") in options and ("relaygate logs", "--older-than") in options
    for path, option in options:
        args = path.split()[1:]
        result = run_cli(*args, option, "sometimes!", *(["purge"] if args == ["logs"] else []))
        assert result.returncode == 2, (path, option, result.stderr)
        error = result.stderr.strip().splitlines()[-1]
        assert option in error and "sometimes!" in error, error
        assert not re.search(r"invalid [a-z_]+ value", error), error  # argparse's "invalid parse_switch value"
        assert "could not convert" not in error, error


# -- pipes --------------------------------------------------------------------------------------------


def _log_db(tmp_path: Path, rows: int) -> str:
    url = f"sqlite:///{tmp_path / 'logs.db'}"
    store = SQLiteLogStore(url)
    now = time.time()
    store.write_many([log_record(n, time=now - n, response_body=b"x" * 200) for n in range(rows)])
    store.close()
    return url


@pytest.mark.parametrize("rows", [1, 3000])
@pytest.mark.parametrize("as_json", [False, True])
def test_logs_into_a_closed_pipe_exits_quietly(tmp_path: Path, rows: int, as_json: bool) -> None:
    url = _log_db(tmp_path, rows)
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first byte, as `| head -0` (or a fast `head -1`)
    command = [
        sys.executable,
        "-m",
        "relaygate",
        "logs",
        "--limit",
        str(rows),
        "--database-url",
        url,
        *(["--json"] if as_json else []),
    ]
    try:
        process = subprocess.run(
            command, stdout=write_end, stderr=subprocess.PIPE, env=subprocess_env(), timeout=60, check=False
        )
    finally:
        os.close(write_end)
    assert process.stderr.decode() == ""
    assert process.returncode == 0


def test_logs_piped_into_head_prints_one_line_and_no_traceback(tmp_path: Path) -> None:
    url = _log_db(tmp_path, 3000)  # ~1.5 MB of JSON lines: far more than a pipe buffer
    script = f"{sys.executable} -m relaygate logs --json --limit 3000 --database-url '{url}' | head -1"
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", script],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=60,
        check=False,
    )
    assert result.stderr == ""
    assert result.returncode == 0
    assert orjson.loads(result.stdout)["request_id"] == "req-0"


# -- read-only commands never create a database -------------------------------------------------------


READ_ONLY = [
    ["logs"],
    ["logs", "--json", "--limit", "5"],
    ["logs", "purge", "--older-than", "30d"],
    ["tokens", "list"],
    ["tokens", "revoke", "rg-abcdefabcdef"],
    ["diff", "-f", str(REPO_ROOT / "examples" / "quickstart.yaml")],
]


@pytest.mark.parametrize("command", READ_ONLY, ids=lambda c: " ".join(c[:2]))
def test_read_only_command_on_a_missing_sqlite_file_is_an_error_and_creates_nothing(
    tmp_path: Path, command: list[str]
) -> None:
    db = tmp_path / "missing.db"
    result = run_cli(*command, "--database-url", f"sqlite:///{db}")
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert f"database file {db} does not exist" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", READ_ONLY, ids=lambda c: " ".join(c[:2]))
def test_read_only_command_in_a_missing_directory_names_it_and_creates_nothing(
    tmp_path: Path, command: list[str]
) -> None:
    db = tmp_path / "no" / "such" / "dir" / "relaygate.db"
    result = run_cli(*command, env=subprocess_env(RELAYGATE_DATABASE_URL=f"sqlite:///{db}"))
    assert result.returncode == 1
    assert str(db) in result.stderr and str(db.parent) in result.stderr
    assert not (tmp_path / "no").exists()


def test_read_only_command_on_a_directory_says_so(tmp_path: Path) -> None:
    result = run_cli("logs", "--database-url", f"sqlite:///{tmp_path}")
    assert result.returncode == 1
    assert f"database file {tmp_path} is a directory" in result.stderr and "Traceback" not in result.stderr


def test_read_only_command_with_the_default_database_in_an_empty_directory(tmp_path: Path) -> None:
    result = run_cli("tokens", "list", cwd=tmp_path)
    assert result.returncode == 1
    assert "database file ./relaygate.db does not exist" in result.stderr
    assert "tokens create" in result.stderr  # says what creates it
    assert list(tmp_path.iterdir()) == []


def test_tokens_create_still_creates_the_database(tmp_path: Path) -> None:
    result = run_cli("tokens", "create", "--user", "you@example.com", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "relaygate.db").exists()
    listed = run_cli("tokens", "list", cwd=tmp_path)
    assert listed.returncode == 0 and "user:you@example.com" in listed.stdout


# -- relaygate logs [purge] ---------------------------------------------------------------------------


def _aged_db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'logs.db'}"
    store = SQLiteLogStore(url)
    now = time.time()
    ages = {"ancient": 400, "old": 31, "edge": 29.9, "recent": 1, "now": 0}
    store.write_many(
        [log_record(n, request_id=name, time=now - age * DAY) for n, (name, age) in enumerate(ages.items())]
    )
    store.close()
    return url


def _listed(url: str) -> list[str]:
    result = run_cli("logs", "--json", "--limit", "100", "--database-url", url)
    assert result.returncode == 0, result.stderr
    return [orjson.loads(line)["request_id"] for line in result.stdout.splitlines()]


def test_logs_purge_deletes_older_rows_and_says_how_many(tmp_path: Path) -> None:
    url = _aged_db(tmp_path)
    result = run_cli("logs", "purge", "--older-than", "30d", "--database-url", url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("deleted 2 request-log rows older than ")
    assert sorted(_listed(url)) == ["edge", "now", "recent"]
    again = run_cli("logs", "purge", "--older-than", "12h", "--database-url", url)
    assert again.returncode == 0 and again.stdout.startswith("deleted 2 request-log rows")
    assert _listed(url) == ["now"]


def test_logs_takes_filter_flags_directly_beside_purge(tmp_path: Path) -> None:
    url = _aged_db(tmp_path)
    assert _listed(url) == ["now", "recent", "edge", "old", "ancient"]
    table = run_cli("logs", "--limit", "2", "--database-url", url)
    assert table.returncode == 0 and len(table.stdout.strip().splitlines()) == 3  # header + 2 rows
    assert run_cli("logs", "--database-url", url, "--limit", "1", "--json").stdout.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["logs", "purge"], "needs --older-than"),
        (["logs", "--older-than", "30d"], "goes with purge"),
        (["logs", "purge", "--older-than", "soon"], "invalid duration 'soon'"),
        (["logs", "purge", "--older-than", "0d"], "greater than zero"),
        (["logs", "purge", "--older-than", "30d", "--model", "m"], "by age only"),
        (["logs", "prune"], "invalid choice: 'prune'"),
    ],
)
def test_logs_purge_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    url = _aged_db(tmp_path)
    result = run_cli(*args, "--database-url", url)
    assert result.returncode == 2, result.stdout
    assert message in result.stderr
    assert len(_listed(url)) == 5  # nothing deleted


def test_logs_purge_on_postgres(pg_url: str) -> None:
    from relaygate.observe.store.postgres import PostgresLogStore

    store = PostgresLogStore(pg_url)
    now = time.time()
    store.write_many([log_record(n, time=now - age * DAY) for n, age in enumerate([90, 45, 2])])
    store.close()
    result = run_cli("logs", "purge", "--older-than", "30d", "--database-url", pg_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("deleted 2 request-log rows")
    assert _listed(pg_url) == ["req-2"]
