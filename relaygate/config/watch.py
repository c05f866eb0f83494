"""Hot reload: watch the config files, validate a change off the loop, swap it in or refuse it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import watchfiles

from relaygate.config.compile import Snapshot, load_snapshot

log = logging.getLogger("relaygate.config")


class ConfigWatcher:
    """Rebuilds the snapshot when files under `path` change; an invalid change keeps the old one."""

    def __init__(self, path: str, apply: Callable[[Snapshot], None], debounce_ms: int = 200) -> None:
        self._path = Path(path)
        self._apply = apply
        self._debounce_ms = debounce_ms
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.reloads = 0
        self.refusals = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="relaygate-config-watch")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass

    def _relevant(self, change: watchfiles.Change, path: str) -> bool:
        if self._path.is_file() or not self._path.exists():
            return Path(path).name == self._path.name
        return path.endswith((".yaml", ".yml"))

    async def _run(self) -> None:
        # Watch the directory so editors that replace files (write to temp + rename) are seen.
        root = self._path if self._path.is_dir() else self._path.parent
        async for _changes in watchfiles.awatch(
            root, stop_event=self._stop, debounce=self._debounce_ms, watch_filter=self._relevant,
            recursive=False,
        ):
            await self.reload()

    async def reload(self) -> bool:
        """Validate and compile the files now; True when the new snapshot was swapped in."""
        try:
            snapshot = await asyncio.to_thread(load_snapshot, str(self._path))
        except Exception as exc:  # ConfigError lists every problem; anything else is reported too
            self.refusals += 1
            log.error("config change refused, still serving the previous config:\n%s", exc)
            return False
        self._apply(snapshot)
        self.reloads += 1
        log.info("config reloaded from %s: %d models", self._path, len(snapshot.models))
        return True
