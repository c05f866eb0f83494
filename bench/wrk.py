"""Run wrk with `bench/chat.lua` and parse its output into a `WrkResult`."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent / "chat.lua"

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_DIST_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.M)
_RPS_RE = re.compile(r"Requests/sec:\s+([\d.]+)")
_TOTAL_RE = re.compile(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h)")
_SOCKET_RE = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_NON2XX_RE = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_JSON_RE = re.compile(r"^BENCH_JSON (\{.*\})\s*$", re.M)
_READ_RE = re.compile(r"requests in [\d.]+\w+, ([\d.]+)([KMGT]?B) read")
_BYTE_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


@dataclass(frozen=True, slots=True)
class WrkResult:
    """One wrk run: throughput, latency percentiles (ms) and error counts."""

    requests: int
    duration_s: float
    rps: float
    percentiles_ms: dict[float, float]
    mean_ms: float = 0.0
    max_ms: float = 0.0
    non2xx: int = 0
    connect_errors: int = 0
    read_errors: int = 0
    write_errors: int = 0
    timeouts: int = 0
    bytes_read: int = 0  # response bytes wrk read (headers included), for MB/s
    raw: str = field(default="", repr=False, compare=False)

    @property
    def p50_ms(self) -> float:
        """Median latency in ms."""
        return self.percentiles_ms.get(50.0, float("nan"))

    @property
    def p99_ms(self) -> float:
        """99th percentile latency in ms."""
        return self.percentiles_ms.get(99.0, float("nan"))

    @property
    def mb_per_s(self) -> float:
        """Response bytes read per second, in MB (10^6 bytes)."""
        return self.bytes_read / max(self.duration_s, 1e-9) / 1e6

    @property
    def socket_errors(self) -> int:
        """connect + read + write + timeout errors."""
        return self.connect_errors + self.read_errors + self.write_errors + self.timeouts

    @property
    def errors(self) -> int:
        """All failed requests: non-2xx/3xx responses plus socket errors."""
        return self.non2xx + self.socket_errors

    def error_text(self) -> str:
        """A short description of the errors, '' when there are none."""
        parts = []
        if self.non2xx:
            parts.append(f"{self.non2xx} non-2xx")
        for name, count in (
            ("connect", self.connect_errors),
            ("read", self.read_errors),
            ("write", self.write_errors),
            ("timeout", self.timeouts),
        ):
            if count:
                parts.append(f"{count} {name}")
        return ", ".join(parts)


class WrkError(RuntimeError):
    """wrk failed or printed nothing we could parse."""


def _to_ms(value: str, unit: str) -> float:
    return float(value) * _UNITS_MS[unit]


def parse_output(text: str) -> WrkResult:
    """Parse wrk's text output (with `--latency`) and the BENCH_JSON line from chat.lua if present."""
    percentiles = {float(p): _to_ms(v, u) for p, v, u in _DIST_RE.findall(text)}
    rps_m = _RPS_RE.search(text)
    total_m = _TOTAL_RE.search(text)
    if rps_m is None or total_m is None:
        raise WrkError(f"cannot parse wrk output:\n{text.strip()[-2000:]}")
    requests = int(total_m.group(1))
    duration_s = _to_ms(total_m.group(2), total_m.group(3)) / 1000.0
    rps = float(rps_m.group(1))
    sock = _SOCKET_RE.search(text)
    connect, read, write, timeout = (int(x) for x in sock.groups()) if sock else (0, 0, 0, 0)
    non2xx_m = _NON2XX_RE.search(text)
    non2xx = int(non2xx_m.group(1)) if non2xx_m else 0
    read_m = _READ_RE.search(text)
    bytes_read = int(float(read_m.group(1)) * _BYTE_UNITS[read_m.group(2)]) if read_m else 0
    mean_ms = max_ms = 0.0
    json_m = _JSON_RE.search(text)
    if json_m is not None:
        # chat.lua's done() has exact microsecond percentiles (the text output rounds to 2 digits).
        data = json.loads(json_m.group(1))
        requests = int(data["requests"])
        bytes_read = int(data.get("bytes", bytes_read))
        if data["duration_us"]:
            duration_s = data["duration_us"] / 1e6
            rps = requests / duration_s
        for pct, key in ((50.0, "p50_us"), (75.0, "p75_us"), (90.0, "p90_us"), (99.0, "p99_us"), (99.9, "p999_us")):
            percentiles[pct] = data[key] / 1000.0
        mean_ms = data["mean_us"] / 1000.0
        max_ms = data["max_us"] / 1000.0
        non2xx = int(data["status_errors"])
        connect, read, write, timeout = (int(data[k]) for k in ("connect", "read", "write", "timeout"))
    return WrkResult(
        requests=requests,
        duration_s=duration_s,
        rps=rps,
        percentiles_ms=percentiles,
        mean_ms=mean_ms,
        max_ms=max_ms,
        non2xx=non2xx,
        connect_errors=connect,
        read_errors=read,
        write_errors=write,
        timeouts=timeout,
        bytes_read=bytes_read,
        raw=text,
    )


def run(
    url: str,
    connections: int,
    duration_s: int,
    body: str,
    *,
    token: str | None = None,
    metadata: str | None = None,
    prefix: list[str] | None = None,
    timeout_s: int = 10,
    wrk_bin: str = "wrk",
    method: str = "POST",
) -> WrkResult:
    """Run `wrk -t1 -c<connections> -d<duration>s --latency` with chat.lua against `url`
    (`method` with `body`; an empty body sends none)."""
    cmd = [
        *(prefix or []),
        wrk_bin,
        "-t1",
        f"-c{connections}",
        f"-d{max(1, int(duration_s))}s",
        f"--timeout={timeout_s}s",
        "--latency",
        "-s",
        str(SCRIPT),
        url,
    ]
    env = dict(os.environ, BENCH_METHOD=method, BENCH_BODY=body, BENCH_TOKEN=token or "", BENCH_METADATA=metadata or "")
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True
    )
    try:
        out, _ = proc.communicate(timeout=duration_s + timeout_s + 30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    if proc.returncode != 0:
        raise WrkError(f"wrk exited with {proc.returncode}:\n{out.strip()[-2000:]}")
    return parse_output(out)
