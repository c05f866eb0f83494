"""Hot reload: watch the config files (or the stored config's revision), validate a change off the
loop, swap it in or refuse it. A change is held to the same rules as at start-up: the size cap
(`--max-config-bytes`), the gateway's own address, and its warnings are logged."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path

import watchfiles

from relaygate.config.apply import load_stored
from relaygate.config.compile import load_snapshot
from relaygate.config.options import LoadOptions
from relaygate.config.store import ConfigStore
from relaygate.runtime.snapshot import Snapshot

log = logging.getLogger("relaygate.config")


def log_warnings(snapshot: Snapshot) -> None:
    """A loaded config's warnings (literal credentials, no manifests), one log line each; never values."""
    for warning in snapshot.warnings:
        log.warning("config warning: %s", warning)


async def cancel_and_wait(task: asyncio.Task[None] | None) -> None:
    """Stop a watcher's task; whatever it was doing (or failed with) no longer matters."""
    if task is not None:
        task.cancel()
        try:
            await task
        except (asyncio.CancelledError, Exception):
            pass


class ConfigWatcher:
    """Rebuilds the snapshot when files under `path` change; an invalid change keeps the old one."""

    def __init__(
        self, path: str, apply: Callable[[Snapshot], None], debounce_ms: int = 200, options: LoadOptions | None = None
    ) -> None:
        self._path = Path(path)
        self._apply = apply
        self._options = options or LoadOptions()
        self._debounce_ms = debounce_ms
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.reloads = 0
        self.refusals = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="relaygate-config-watch")

    async def stop(self) -> None:
        self._stop.set()
        await cancel_and_wait(self._task)

    def _filter(self) -> Callable[[watchfiles.Change, str], bool]:
        """Which changes matter: the config file's own name, or any YAML file of a config directory.

        Decided once, with no file-system call per change: the directory watched may also hold the
        SQLite log, whose every write is a change event the filter sees.
        """
        if self._path.is_dir():
            return lambda _change, path: path.endswith((".yaml", ".yml"))
        name = self._path.name
        return lambda _change, path: os.path.basename(path) == name

    async def _run(self) -> None:
        # Watch the directory so editors that replace files (write to temp + rename) are seen.
        root = self._path if self._path.is_dir() else self._path.parent
        async for _changes in watchfiles.awatch(
            root,
            stop_event=self._stop,
            debounce=self._debounce_ms,
            watch_filter=self._filter(),
            recursive=False,
        ):
            await self.reload()

    async def reload(self) -> bool:
        """Validate and compile the files now; True when the new snapshot was swapped in."""
        try:
            snapshot = await asyncio.to_thread(load_snapshot, str(self._path), self._options)
        except Exception as exc:  # ConfigError lists every problem; anything else is reported too
            self.refusals += 1
            log.error("config change refused, still serving the previous config:\n%s", exc)
            return False
        log_warnings(snapshot)
        self._apply(snapshot)
        self.reloads += 1
        log.info("config reloaded from %s: %d models", self._path, len(snapshot.models))
        return True


class StoredConfigWatcher:
    """Without --config: polls the stored config's revision and reloads when an apply moved it.

    One integer read per `interval` per process; a change is loaded and compiled off the loop. An
    invalid stored config (a secret reference this replica's environment lacks, say) is refused and
    logged, and the previous snapshot keeps serving; the store being down only delays the reload.
    """

    def __init__(
        self,
        store: ConfigStore,
        revision: int,
        apply: Callable[[Snapshot], None],
        interval: float = 1.0,
        options: LoadOptions | None = None,
    ) -> None:
        self._store = store
        self._options = options or LoadOptions()
        self.revision = revision
        self._apply = apply
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self._store_down = False
        self.reloads = 0
        self.refusals = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="relaygate-stored-config-watch")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.poll()

    async def poll(self) -> bool:
        """Reload if the stored revision moved; True when a new snapshot was swapped in."""
        try:
            revision = await asyncio.to_thread(self._store.revision)
            if revision == self.revision:
                self._store_down = False
                return False
            stored = await asyncio.to_thread(self._store.load)
        except Exception as exc:  # the database being down must not stop the watcher
            if not self._store_down:
                log.warning("cannot read the stored config (will retry): %s", exc)
            self._store_down = True
            return False
        self._store_down = False
        self.revision = stored.revision
        try:
            snapshot = await asyncio.to_thread(load_stored, stored, None, self._options.gateway)
        except Exception as exc:
            self.refusals += 1
            log.error("stored config revision %d refused, still serving the previous config:\n%s", stored.revision, exc)
            return False
        log_warnings(snapshot)
        self._apply(snapshot)
        self.reloads += 1
        log.info("config reloaded from the database (revision %d): %d models", stored.revision, len(snapshot.models))
        return True
