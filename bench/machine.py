"""What the machine and the benchmark's processes are doing: /proc CPU and memory, tool versions."""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import threading
import time
from pathlib import Path

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def rss_mib(root: int) -> float:
    """Resident memory of the process tree under `root`, MiB."""
    total_kib = 0
    for pid in process_tree(root):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
        except OSError:
            continue
    return total_kib / 1024.0


def _status_kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class PeakRss:
    """Peak resident memory (MiB) of the process tree under `root` between `start()` and `stop()`.

    `start()` resets each process's kernel high-water mark (`5` into `/proc/<pid>/clear_refs`) and
    `stop()` sums VmHWM: exact for one process, an upper bound for a tree. Where clear_refs cannot be
    written, a thread samples the tree's VmRSS every `interval_s` instead.
    """

    def __init__(self, root: int, interval_s: float = 0.005) -> None:
        self.root = root
        self.interval_s = interval_s
        self.method = ""
        self._pids: list[int] = []
        self._peak_kib = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Begin watching."""
        self._pids = process_tree(self.root)
        try:
            for pid in self._pids:
                Path(f"/proc/{pid}/clear_refs").write_text("5")
            self.method = "VmHWM"
        except OSError:
            self.method = f"VmRSS sampled every {self.interval_s * 1000:g} ms"
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._peak_kib = max(self._peak_kib, sum(_status_kib(pid, "VmRSS:") for pid in self._pids))
            self._stop.wait(self.interval_s)

    def stop(self) -> float:
        """Stop watching; the peak in MiB."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            return self._peak_kib / 1024.0
        return sum(_status_kib(pid, "VmHWM:") for pid in self._pids) / 1024.0


def cpu_seconds(root: int) -> float:
    """User + system CPU time of the live process tree under `root`, seconds."""
    ticks = 0
    for pid in process_tree(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / _CLK_TCK


def system_cpu_seconds() -> float:
    """CPU time all processes on the machine used so far (user + nice + system, all CPUs), seconds."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()
    return (int(fields[1]) + int(fields[2]) + int(fields[3])) / _CLK_TCK


def wait_quiet(max_wait_s: float, threshold_cpu: float = 0.15, window_s: float = 0.5) -> float | None:
    """Wait until the machine's CPU use over `window_s` is below `threshold_cpu` CPUs; seconds waited,
    or None when it never got that quiet within `max_wait_s`."""
    start = time.monotonic()
    while True:
        before = system_cpu_seconds()
        time.sleep(window_s)
        if (system_cpu_seconds() - before) / window_s < threshold_cpu:
            return time.monotonic() - start
        if time.monotonic() - start > max_wait_s:
            return None


def waited_children_cpu_seconds() -> float:
    """CPU time of this process's finished, waited-for children (e.g. wrk runs), seconds."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def tool_version(cmd: list[str]) -> str:
    """First line a tool prints about its version, '' on failure."""
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    text = (res.stdout + res.stderr).strip()
    return text.splitlines()[0] if text else ""


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
