"""The hot-reload watcher's filter: which changes reload the config, decided with no file-system call.

The directory a config lives in often holds the SQLite request log too, and every row written there
is a change event; the filter sees each one, so it must stay a string comparison.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import watchfiles

from relaygate.config.watch import ConfigWatcher
from relaygate.runtime.snapshot import Snapshot

MODIFIED = watchfiles.Change.modified


def ignore(_snapshot: Snapshot) -> None:
    return None


def no_stat(*_args: object, **_kwargs: object) -> None:
    raise AssertionError("the filter touched the file system")


def test_a_config_file_reloads_on_its_own_name_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "relaygate.yaml"
    config.write_text("")
    relevant = ConfigWatcher(str(config), ignore)._filter()
    monkeypatch.setattr(os, "stat", no_stat)
    assert relevant(MODIFIED, str(config))
    assert not relevant(MODIFIED, str(tmp_path / "relaygate.db-wal"))
    assert not relevant(MODIFIED, str(tmp_path / "other.yaml"))


def test_a_config_directory_reloads_on_any_yaml_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    relevant = ConfigWatcher(str(tmp_path), ignore)._filter()
    monkeypatch.setattr(os, "stat", no_stat)
    assert relevant(MODIFIED, str(tmp_path / "models.yaml"))
    assert relevant(MODIFIED, str(tmp_path / "limits.yml"))
    assert not relevant(MODIFIED, str(tmp_path / "relaygate.db-wal"))
    assert not relevant(MODIFIED, str(tmp_path / "relaygate.db"))
