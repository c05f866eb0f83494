"""Start and stop what the benchmark measures: the mock upstream, nginx, Relaygate, and the Redis the
`relaygate-redis` target keeps its rate limits in.

Every child runs in its own process group and is registered in `Children`, whose `stop_all()`
(called from run.py's `finally`, also on Ctrl-C and SIGTERM) kills each group by its id.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from configs import BENCH_USER, PLAIN_MODEL, nginx_config, relaygate_yaml
from httpc import CHAT_PATH, http_request, redis_command

BENCH_DIR = Path(__file__).resolve().parent
BENCH_METADATA = '{"app":"bench"}'


class TargetError(RuntimeError):
    """A target could not be started or did not answer as expected."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_prefix(cpus: str | None) -> list[str]:
    """`taskset -c <cpus>` as a command prefix, or nothing when not pinning."""
    return ["taskset", "-c", cpus] if cpus else []


def log_tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log file ('' if missing)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@dataclass
class Children:
    """The processes this run started; each in its own process group."""

    procs: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def start(
        self, name: str, cmd: list[str], log: Path, env: Mapping[str, str] | None = None, cwd: Path | None = None
    ) -> subprocess.Popen[bytes]:
        """Start `cmd` with stdout+stderr to `log`."""
        with log.open("ab") as out:
            proc = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
            )
        self.procs.append((name, proc))
        return proc

    def stop(self, proc: subprocess.Popen[bytes], grace_s: float = 5.0) -> None:
        """SIGTERM the process group of `proc`, SIGKILL it after `grace_s`."""
        if proc.poll() is None:
            _killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                pass
        _killpg(proc.pid, signal.SIGKILL)  # leftovers of the group (e.g. workers)
        if proc.poll() is None:
            proc.wait()
        self.procs = [(n, p) for n, p in self.procs if p is not proc]

    def stop_all(self) -> None:
        """Stop every registered process, newest first."""
        for _, proc in reversed(list(self.procs)):
            self.stop(proc)


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def wait_until(
    check: Callable[[], bool],
    proc: subprocess.Popen[bytes] | None,
    log: Path | None,
    what: str,
    timeout_s: float = 30.0,
    interval_s: float = 0.005,
) -> float:
    """Poll `check` until it is true; seconds waited. Fails early if `proc` dies."""
    start = time.perf_counter()
    while True:
        try:
            if check():
                return time.perf_counter() - start
        except (OSError, http.client.HTTPException):
            pass
        if proc is not None and proc.poll() is not None:
            raise TargetError(
                f"{what} exited with {proc.returncode} before it was ready\n{log_tail(log) if log else ''}"
            )
        if time.perf_counter() - start > timeout_s:
            raise TargetError(f"{what} not ready after {timeout_s:.0f}s\n{log_tail(log) if log else ''}")
        time.sleep(interval_s)


# ----------------------------------------------------------------------------- targets


@dataclass
class Target:
    """Something wrk sends chat completions to."""

    name: str
    label: str
    port: int
    model: str
    token: str | None = None
    metadata: str | None = None
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    startup_s: float | None = None
    db_path: Path | None = None  # Relaygate's SQLite database (request log)
    sent: int = 0  # requests completed so far (probes, warm-ups and measured runs)
    serves_virtual: bool = False  # Relaygate: also runs the virtual-model (vm_*) and rate-limit (rl_*) scenarios
    scope: frozenset[str] | None = None  # the only scenario keys this target runs (None: every one)
    backend_pid: int | None = None  # the Redis server this target uses, when the benchmark started it
    redis_check_port: int | None = None  # where probes may look up the rule's Redis key (db 0, no password)

    @property
    def url(self) -> str:
        """The chat completions URL."""
        return f"http://127.0.0.1:{self.port}{CHAT_PATH}"

    @property
    def pid(self) -> int | None:
        """The root pid of the proxy's process tree (None for direct)."""
        return self.proc.pid if self.proc is not None else None

    def headers(self) -> dict[str, str]:
        """Request headers the benchmark sends to this target."""
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.metadata:
            headers["x-tfy-metadata"] = self.metadata
        return headers

    def alive(self) -> bool:
        """True unless the target's process has exited."""
        return self.proc is None or self.proc.poll() is None

    def check_200(self, body: bytes, path: str = CHAT_PATH) -> bool:
        """One proxied POST of `body` to `path` answered 200."""
        status, _ = http_request(self.port, "POST", path, body, self.headers(), timeout=2.0)
        return status == 200


@dataclass
class Mock:
    """The running mock upstream."""

    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    def set_pace(self, ms: float) -> None:
        """Switch between burst (0) and paced streams."""
        status, body = http_request(self.port, "POST", f"/__bench/pace?ms={ms:g}")
        if status != 200:
            raise TargetError(f"mock refused pace change: {status} {body!r}")


def start_mock(children: Children, tmp: Path, cpus: str | None) -> Mock:
    """Start bench/mock_upstream.py and wait until it answers."""
    port = free_port()
    log = tmp / "mock.log"
    proc = children.start(
        "mock",
        [*cpu_prefix(cpus), sys.executable, str(BENCH_DIR / "mock_upstream.py"), "--port", str(port)],
        log,
    )
    wait_until(lambda: http_request(port, "GET", "/health", timeout=1.0)[0] == 200, proc, log, "mock upstream")
    return Mock(port, proc, log)


@dataclass
class RedisServer:
    """The Redis the `relaygate-redis` target uses: one the benchmark started, or an existing one (--redis-url)."""

    url: str
    check_port: int | None  # a port to verify keys on (db 0, no password), else None
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    @property
    def pid(self) -> int | None:
        """The server's pid when the benchmark started it (its CPU is then measured)."""
        return self.proc.pid if self.proc is not None else None


def redis_ping(host: str, port: int) -> bool:
    """A Redis answers PING at host:port."""
    try:
        return redis_command(port, "PING", host=host, timeout=1.0) == b"+PONG"
    except OSError:
        return False


def start_redis(children: Children, tmp: Path, cpus: str | None, url: str | None) -> RedisServer:
    """`url` given: use that Redis (must answer PING). Otherwise start a private `redis-server` on a free
    port (no persistence, pinned like the mock), or, without the binary, use 127.0.0.1:6379 if it answers."""
    if url:
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 6379
        if parts.scheme not in ("redis", "rediss"):
            raise TargetError(f"--redis-url must be redis://HOST:PORT[/DB], got {parts.scheme}://...")
        if parts.scheme == "redis" and not parts.password and not redis_ping(host, port):
            raise TargetError(f"Redis is not reachable at {host}:{port} (--redis-url)")
        plain = parts.scheme == "redis" and not parts.password and parts.path in ("", "/", "/0")
        return RedisServer(url, port if plain and host in ("127.0.0.1", "localhost") else None)
    binary = shutil.which("redis-server")
    if binary is None:
        if redis_ping("127.0.0.1", 6379):
            return RedisServer("redis://127.0.0.1:6379/0", 6379)
        raise TargetError(
            "no `redis-server` to start and nothing answers on 127.0.0.1:6379 "
            "(install redis-server, or pass --redis-url redis://HOST:PORT)"
        )
    port = free_port()
    work = tmp / "redis"
    work.mkdir(exist_ok=True)
    log = tmp / "redis.log"
    cmd = [
        *cpu_prefix(cpus),
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(work),
        "--daemonize",
        "no",
    ]
    proc = children.start("redis", cmd, log)
    wait_until(lambda: redis_ping("127.0.0.1", port), proc, log, "redis-server", timeout_s=15)
    return RedisServer(f"redis://127.0.0.1:{port}/0", port, proc, log)


def direct_target(mock: Mock, model: str) -> Target:
    """wrk straight to the mock: the floor every proxy is compared with."""
    return Target("direct", "direct (wrk → mock, no proxy)", mock.port, model)


def nginx_modules_without(nginx_bin: str) -> set[str]:
    """Modules compiled out of this nginx (`--without-http_<name>_module` in `nginx -V`)."""
    res = subprocess.run([nginx_bin, "-V"], capture_output=True, text=True, timeout=10)
    text = res.stdout + res.stderr
    return {
        part.split("--without-http_", 1)[1].removesuffix("_module")
        for part in text.split()
        if part.startswith("--without-http_")
    }


def start_nginx(
    children: Children,
    tmp: Path,
    mock: Mock,
    cpus: str | None,
    nginx_bin: str,
    probe_body: bytes,
    model: str,
    probe_path: str = CHAT_PATH,
) -> Target:
    """Start nginx in the foreground (`daemon off`) with a generated config in `tmp`."""
    port = free_port()
    prefix = tmp / "nginx"
    prefix.mkdir(exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_config(prefix, port, mock.port, nginx_modules_without(nginx_bin)))
    log = tmp / "nginx.log"
    cmd = [
        *cpu_prefix(cpus),
        nginx_bin,
        "-p",
        str(prefix),
        "-c",
        str(conf),
        "-e",
        str(prefix / "nginx-error.log"),
        "-g",
        f"daemon off; pid {prefix / 'nginx.pid'};",
    ]
    target = Target("nginx", "nginx proxy_pass (1 worker)", port, model, log=log)
    start = time.perf_counter()
    target.proc = children.start("nginx", cmd, log)
    wait_until(lambda: target.check_200(probe_body, probe_path), target.proc, log, "nginx", timeout_s=15)
    target.startup_s = time.perf_counter() - start
    return target


def relaygate_command() -> list[str] | None:
    """How to run the relaygate CLI, or None when it is not installed."""
    exe = shutil.which("relaygate")
    if exe:
        return [exe]
    try:
        import relaygate.cli  # noqa: F401
    except Exception:  # noqa: BLE001 - any import failure means "not runnable"
        return None
    return [sys.executable, "-c", "import sys; from relaygate.cli import main; sys.exit(main())"]


def create_token(cli: list[str], db_url: str, tmp: Path) -> str:
    """`relaygate tokens create`; the token is the last line of stdout."""
    cmd = [*cli, "tokens", "create", "--user", BENCH_USER, "--database-url", db_url]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp, stdin=subprocess.DEVNULL)
    lines = [line.strip() for line in res.stdout.splitlines() if line.strip()]
    if res.returncode != 0 or not lines:
        raise TargetError(f"`{' '.join(cmd)}` failed ({res.returncode}):\n{res.stdout[-1000:]}{res.stderr[-2000:]}")
    return lines[-1]


def start_relaygate(
    children: Children,
    tmp: Path,
    mock: Mock,
    cpus: str | None,
    server: str,
    probe_body: bytes,
    name: str = "relaygate",
    probe_path: str = CHAT_PATH,
    redis: RedisServer | None = None,
    scope: frozenset[str] | None = None,
) -> Target:
    """Create a token, start Relaygate (uvicorn via `relaygate serve`, or granian) and time it to a 200.
    With `redis`, Relaygate keeps its limits (and cooldowns, revocations) there: `--redis-url`."""
    cli = relaygate_command()
    if cli is None:
        raise TargetError("relaygate is not installed: run `pip install -e /work/main` (then `relaygate --help`)")
    work = tmp / name
    work.mkdir(exist_ok=True)
    config = work / "bench.yaml"
    config.write_text(relaygate_yaml(mock.port))
    db_url = f"sqlite:///{work / 'bench.db'}"
    token = create_token(cli, db_url, work)
    port = free_port()
    log = tmp / f"{name}.log"
    env = dict(os.environ, RELAYGATE_CONFIG=str(config), RELAYGATE_DATABASE_URL=db_url)
    for inherited in ("RELAYGATE_REDIS_URL", "RELAYGATE_LIMITS_KEY_PREFIX"):  # memory target in memory; default keys
        env.pop(inherited, None)
    if redis is not None:
        env["RELAYGATE_REDIS_URL"] = redis.url  # granian reads it; `serve` also gets --redis-url
    if server == "granian":
        granian = shutil.which("granian")
        if granian is None:
            raise TargetError("granian is not installed (`pip install granian` to measure it)")
        cmd = [
            granian,
            "--interface",
            "asgi",
            "--factory",
            "relaygate.app:app_from_env",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ]
        label = "Relaygate on granian (1 worker)"
    else:
        cmd = [
            *cli,
            "serve",
            "--config",
            str(config),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--database-url",
            db_url,
        ]
        if _serve_accepts(cli, "--workers"):
            cmd += ["--workers", "1"]
        if redis is not None:
            cmd += ["--redis-url", redis.url]
        label = "Relaygate (uvicorn, 1 worker)"
    if redis is not None:
        label = label.replace("1 worker)", "1 worker, limits in Redis)")
    target = Target(
        name,
        label,
        port,
        PLAIN_MODEL,
        token=token,
        metadata=BENCH_METADATA,
        log=log,
        db_path=work / "bench.db",
        serves_virtual=True,
        scope=scope,
        backend_pid=redis.pid if redis is not None else None,
        redis_check_port=redis.check_port if redis is not None else None,
    )
    start = time.perf_counter()
    target.proc = children.start(name, [*cpu_prefix(cpus), *cmd], log, env=env, cwd=work)
    wait_until(lambda: target.check_200(probe_body, probe_path), target.proc, log, name, timeout_s=60)
    target.startup_s = time.perf_counter() - start
    target.sent = 1
    return target


def request_log_rows(db_path: Path, settle_s: float = 5.0) -> int | None:
    """Rows in Relaygate's request log once it stops growing (None if there is no such table)."""
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return None
    try:
        last, deadline = -1, time.monotonic() + settle_s
        while True:
            try:
                rows = int(conn.execute("SELECT count(*) FROM request_logs").fetchone()[0])
            except sqlite3.Error:
                return None
            if rows == last or time.monotonic() > deadline:
                return rows
            last = rows
            time.sleep(0.5)
    finally:
        conn.close()


def _serve_accepts(cli: list[str], flag: str) -> bool:
    try:
        res = subprocess.run([*cli, "serve", "--help"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return flag in res.stdout


def log_count(path: Path, needle: str) -> int:
    """Lines of a log file that contain `needle` (0 if the file is missing)."""
    try:
        return sum(1 for line in path.read_text(errors="replace").splitlines() if needle in line)
    except OSError:
        return 0
