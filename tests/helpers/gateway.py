"""A real `relaygate serve` process for end-to-end tests, and the `relaygate` CLI next to it.

`GatewayProcess(root, yaml_text)` writes the config into `root`, and `start()` runs
`python -m relaygate serve --config CFG --host 127.0.0.1 --port FREE --database-url sqlite:///ROOT/relaygate.db`
with stdout/stderr captured to files in `root` (read them with `output()`; the secret-scan test does).
CLI helpers (`revoke_token`, `check`, `cli`) run `python -m relaygate ...` against the same config and
database; `create_token`, `list_tokens` and `logs` run the same CLI code in this process (`cli_in_process`:
the same output, without 0.5 s of interpreter start-up each). `stop()` sends SIGTERM and waits.
`GatewayHandle` is everything but the process; `tests/helpers/gateway_thread.py` serves the same app
from a thread of the test process.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any, Self

import orjson
from openai import AsyncOpenAI, OpenAI

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 15.0
LOG_WAIT_TIMEOUT = 5.0
API_PREFIX = "/api/llm"


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now (also usable as a 'closed port')."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def render(template: str, **values: object) -> str:
    """Replace `{name}` placeholders for the given names only (YAML flow mappings keep their braces)."""
    for name, value in values.items():
        template = template.replace("{" + name + "}", str(value))
    return template


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for relaygate processes: no inherited RELAYGATE_* settings, unbuffered output,
    the repository importable even when the package is not installed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAYGATE_")}
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """`python -m relaygate ARGS`, output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "relaygate", *args],
        capture_output=True,
        text=True,
        env=env if env is not None else subprocess_env(),
        cwd=str(cwd) if cwd else None,
        timeout=timeout,
        check=False,
    )


@dataclass
class HttpResult:
    """A raw HTTP answer: status, headers (case-insensitive `get`), body bytes."""

    status: int
    headers: Message
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


def http_request(
    method: str,
    url: str,
    *,
    json: Any = None,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> HttpResult:
    """One plain HTTP request with urllib (no SDK in the way); HTTP errors are results, not exceptions."""
    all_headers = dict(headers or {})
    if json is not None:
        data = orjson.dumps(json)
        all_headers.setdefault("Content-Type", "application/json")
    request = urllib.request.Request(url, data=data, headers=all_headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return HttpResult(int(response.status), response.headers, response.read())
    except urllib.error.HTTPError as exc:
        return HttpResult(int(exc.code), exc.headers, exc.read())


class GatewayFailed(AssertionError):
    """The gateway process misbehaved (did not start, CLI failed); the message carries its output."""


class GatewayHandle:
    """A gateway's config file, SQLite database, clients and CLI; subclasses run it (`start`, `stop`)."""

    def __init__(self, root: Path, config_text: str, *, env: dict[str, str] | None = None) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.config_path = root / "relaygate.yaml"
        self.db_path = root / "relaygate.db"
        self.stdout_path = root / "server.stdout.log"
        self.stderr_path = root / "server.stderr.log"
        self.port = free_port()
        self.extra_env = dict(env or {})
        self.serve_args: list[str] = []  # extra `relaygate serve` flags, e.g. ["--workers", "2"]
        # False: serve without --config, from the config `relaygate apply` stored in the database.
        self.use_config_file = True
        self._clients: list[OpenAI] = []
        self.write_config(config_text)

    # -- addresses ---------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """The OpenAI-compatible base URL (`/api/llm`)."""
        return self.url + API_PREFIX

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.db_path}"

    def env(self) -> dict[str, str]:
        config = {"RELAYGATE_CONFIG": str(self.config_path)} if self.use_config_file else {}
        return subprocess_env(RELAYGATE_DATABASE_URL=self.database_url, **config, **self.extra_env)

    def write_config(self, text: str) -> None:
        """Write the config file in place (as an editor would; the watcher sees a modification)."""
        with open(self.config_path, "w", encoding="utf-8") as handle:
            handle.write(text)

    def start(self, timeout: float = READY_TIMEOUT) -> Self:
        raise NotImplementedError

    def stop(self, timeout: float = 40.0) -> int | None:
        raise NotImplementedError

    def output(self) -> str:
        raise NotImplementedError

    def http_status(self, path: str) -> int | None:
        """Status of a plain GET (None when nothing answers)."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=2) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except (OSError, ValueError):
            return None

    # -- clients -----------------------------------------------------------------------------------

    def client(self, token: str, prefix: str = API_PREFIX, **options: Any) -> OpenAI:
        """A real OpenAI SDK client aimed at the gateway (no SDK retries: tests count requests).

        Closed when the gateway stops (its pooled connections would otherwise be left to the collector)."""
        options.setdefault("max_retries", 0)
        options.setdefault("timeout", 30.0)
        client = OpenAI(api_key=token, base_url=self.url + prefix, **options)
        self._clients.append(client)
        return client

    def close_clients(self) -> None:
        while self._clients:
            self._clients.pop().close()

    def async_client(self, token: str, prefix: str = API_PREFIX, **options: Any) -> AsyncOpenAI:
        options.setdefault("max_retries", 0)
        options.setdefault("timeout", 30.0)
        return AsyncOpenAI(api_key=token, base_url=self.url + prefix, **options)

    def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json: Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30.0,
    ) -> HttpResult:
        """A raw request to the gateway; `token` becomes `Authorization: Bearer <token>`."""
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        return http_request(method, self.url + path, json=json, data=data, headers=all_headers, timeout=timeout)

    # -- CLI ---------------------------------------------------------------------------------------

    def cli(self, *args: str, check: bool = True, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """`python -m relaygate ARGS` with this gateway's config and database (env and flags)."""
        result = run_cli(*args, env=self.env(), cwd=self.root, timeout=timeout)
        if check and result.returncode != 0:
            raise GatewayFailed(
                f"`relaygate {' '.join(args)}` exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def cli_in_process(self, *args: str) -> str:
        """`relaygate ARGS` run by the CLI's own `main` in this process: its stdout (raises on a non-zero exit).

        For the commands that read only their flags (`--config`, `--database-url` are always given)."""
        from relaygate.cli import main

        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
        if code != 0:
            raise GatewayFailed(
                f"`relaygate {' '.join(args)}` exited {code}\nstdout:\n{out.getvalue()}\nstderr:\n{err.getvalue()}"
            )
        return out.getvalue()

    def _common(self) -> list[str]:
        config = ["--config", str(self.config_path)] if self.use_config_file else []
        return [*config, "--database-url", self.database_url]

    def create_token(
        self,
        *,
        user: str | None = None,
        virtual_account: str | None = None,
        name: str | None = None,
        expires_in: str | None = None,
    ) -> str:
        """`relaygate tokens create ...`; the token is the last line of stdout."""
        args = ["tokens", "create", *self._common()]
        if user is not None:
            args += ["--user", user]
        if virtual_account is not None:
            args += ["--virtual-account", virtual_account]
        if name is not None:
            args += ["--name", name]
        if expires_in is not None:
            args += ["--expires-in", expires_in]
        # The token's own line: an in-process gateway's threads print to the same (redirected) stdout
        # meanwhile (its access log), so "the last line" could be one of theirs.
        lines = [line.strip() for line in self.cli_in_process(*args).splitlines() if line.strip().startswith("rg-")]
        if not lines:
            raise GatewayFailed(f"`relaygate {' '.join(args)}` printed no token")
        return lines[-1]

    def list_tokens(self) -> str:
        return self.cli_in_process("tokens", "list", *self._common())

    def revoke_token(self, token: str) -> subprocess.CompletedProcess[str]:
        """Revoke by the id that `tokens list` shows for this token."""
        return self.cli("tokens", "revoke", *self._common(), listed_token_id(self.list_tokens(), token))

    def logs(
        self,
        *,
        limit: int | None = None,
        model: str | None = None,
        user: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """`relaygate logs --json ...` parsed, one dict per row."""
        args = ["logs", "--json", *self._common()]
        if limit is not None:
            args += ["--limit", str(limit)]
        if model is not None:
            args += ["--model", model]
        if user is not None:
            args += ["--user", user]
        for key, value in (metadata or {}).items():
            args += ["--metadata", f"{key}={value}"]
        stdout = self.cli_in_process(*args)
        return [orjson.loads(line) for line in stdout.splitlines() if line.strip().startswith("{")]

    def wait_for_log(self, request_id: str, timeout: float = LOG_WAIT_TIMEOUT) -> dict[str, Any]:
        """Poll `relaygate logs --json` until the row for `request_id` appears (the log is asynchronous)."""
        deadline = time.monotonic() + timeout
        seen: list[dict[str, Any]] = []
        while True:
            seen = self.logs(limit=1000)
            for row in seen:
                if row.get("request_id") == request_id:
                    return row
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no log row for request {request_id} within {timeout}s; "
                    f"latest ids: {[r.get('request_id') for r in seen[:10]]}"
                )
            time.sleep(0.1)

    def wait_for_logs(self, count: int, timeout: float = LOG_WAIT_TIMEOUT, **filters: Any) -> list[dict[str, Any]]:
        """Poll until at least `count` rows match the filters."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.logs(**filters)
            if len(rows) >= count or time.monotonic() > deadline:
                return rows
            time.sleep(0.1)

    def check(self, path: Path) -> subprocess.CompletedProcess[str]:
        """`relaygate check -f PATH` (exit code not checked)."""
        return self.cli("check", "-f", str(path), check=False)


class GatewayProcess(GatewayHandle):
    """One `relaygate serve` process with its own config file, SQLite database and captured output."""

    def __init__(self, root: Path, config_text: str, *, env: dict[str, str] | None = None) -> None:
        super().__init__(root, config_text, env=env)
        self.process: subprocess.Popen[bytes] | None = None

    # -- process -----------------------------------------------------------------------------------

    def start(self, timeout: float = READY_TIMEOUT) -> Self:
        command = [
            sys.executable,
            "-m",
            "relaygate",
            "serve",
            *(["--config", str(self.config_path)] if self.use_config_file else []),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--database-url",
            self.database_url,
            *self.serve_args,
        ]
        with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
            self.process = subprocess.Popen(command, stdout=out, stderr=err, env=self.env(), cwd=str(self.root))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise GatewayFailed(f"relaygate serve exited with {self.process.returncode}\n{self.output()}")
            if self.http_status("/ready") == 200:
                return self
            time.sleep(0.05)
        self.kill()
        raise GatewayFailed(f"relaygate serve was not ready within {timeout}s\n{self.output()}")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def terminate(self) -> None:
        """Send SIGTERM without waiting."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 40.0) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def stop(self, timeout: float = 40.0) -> int | None:
        """SIGTERM, then wait (SIGKILL if it does not exit in time). Returns the exit code."""
        self.close_clients()
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def output(self) -> str:
        """Everything the server printed so far (stdout then stderr)."""
        parts = []
        for label, path in (("stdout", self.stdout_path), ("stderr", self.stderr_path)):
            text = path.read_text("utf-8", "replace") if path.exists() else ""
            parts.append(f"--- server {label} ---\n{text}")
        return "\n".join(parts)


def token_id_of(token: str) -> str:
    """The public id part of `rg-<id>-<secret>`."""
    assert token.startswith("rg-"), token
    return token[3:15]


def token_secret_of(token: str) -> str:
    return token[16:]


def listed_token_id(listing: str, token: str) -> str:
    """The id `relaygate tokens list` shows for `token` (`rg-<id>` or `<id>`)."""
    for word in listing.split():
        if word in (f"rg-{token_id_of(token)}", token_id_of(token)):
            return word
    raise AssertionError(f"token id of {token[:15]}... not in `tokens list` output:\n{listing}")
