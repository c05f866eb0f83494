"""Finding and reading config files, with the size cap applied before anything is read or parsed.

Kept apart from the loader (and free of pydantic schemas) so the CLI can refuse an oversized config
before importing the loader and compiler: `check`, `serve` and `apply` answer in well under a second.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from relaygate.config.options import DEFAULT_MAX_CONFIG_BYTES
from relaygate.config.problems import ConfigError, ConfigNotFound, Problem

YAML_SUFFIXES = (".yaml", ".yml")
LIMIT_HINT = "raise it with --max-config-bytes or RELAYGATE_MAX_CONFIG_BYTES"

PathLike = str | Path


def _yaml_files(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.suffix in YAML_SUFFIXES and p.is_file() and not p.name.startswith("."))


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB" if n >= 1024 * 1024 else f"{n / 1024:.1f} KiB" if n >= 1024 else f"{n} bytes"


def too_large(what: str, size: int, limit: int) -> Problem:
    """The problem of a config over the size cap (`--max-config-bytes`)."""
    return Problem(
        what,
        "-",
        "-",
        f"is {_size(size)} ({size} bytes), over the {_size(limit)} ({limit} bytes) limit "
        f"for a config file (a directory: all its files together); {LIMIT_HINT}",
    )


def _roots(paths: PathLike | Sequence[PathLike]) -> list[Path]:
    return [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]


def check_sizes(
    paths: PathLike | Sequence[PathLike], max_bytes: int = DEFAULT_MAX_CONFIG_BYTES
) -> list[tuple[Path, list[Path]]]:
    """Each path with its manifest files, after checking that every path exists (`ConfigNotFound`) and
    that no file, nor a directory's files together, exceed `max_bytes` (`ConfigError`). Only stats."""
    roots = _roots(paths)
    missing = [
        Problem(str(root), "-", "-", "no such file or directory")
        for root in roots
        if not root.is_dir() and not root.is_file()
    ]
    if missing:
        raise ConfigNotFound(missing)
    groups = [(root, _yaml_files(root) if root.is_dir() else [root]) for root in roots]
    oversized = [
        too_large(str(root), total, max_bytes)
        for root, files in groups
        if (total := sum(f.stat().st_size for f in files)) > max_bytes
    ]
    if oversized:
        raise ConfigError(oversized)
    return groups


def _read_capped(file: Path, budget: int) -> bytes | None:
    """At most `budget` bytes of the file; None when it holds more (it grew after it was measured)."""
    with file.open("rb") as handle:
        data = handle.read(budget + 1)
    return None if len(data) > budget else data


def read_sources(
    paths: PathLike | Sequence[PathLike], max_bytes: int = DEFAULT_MAX_CONFIG_BYTES
) -> tuple[list[tuple[str, str]], list[Problem]]:
    """`(text, file name)` of each manifest file under `paths` (a file, or every `*.yaml`/`*.yml` of a
    directory, sorted by name, dotfiles skipped), and the problems of files that could not be read.

    Sizes are checked first (`check_sizes`), and no read goes past the cap, so an oversized config is
    refused at once. A file named twice is read once.
    """
    sources: list[tuple[str, str]] = []
    problems: list[Problem] = []
    seen: set[Path] = set()
    for root, files in check_sizes(paths, max_bytes):
        budget = max_bytes
        for file in files:
            if file.resolve() in seen:
                continue
            seen.add(file.resolve())
            try:
                data = _read_capped(file, budget)
                if data is None:
                    raise ConfigError(
                        [
                            Problem(
                                str(root),
                                "-",
                                "-",
                                f"grew past the {_size(max_bytes)} "
                                f"({max_bytes} bytes) limit for a config file while being read; "
                                f"{LIMIT_HINT}",
                            )
                        ]
                    )
                budget -= len(data)
                sources.append((data.decode("utf-8-sig"), str(file)))
            except (OSError, UnicodeDecodeError) as exc:
                reason = (
                    "is not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else f"cannot be read ({exc.strerror})"
                )
                problems.append(Problem(str(file), "-", "-", reason))
    return sources, problems


def read_stdin(stream: Any, max_bytes: int = DEFAULT_MAX_CONFIG_BYTES, name: str = "<stdin>") -> str:
    """A config piped in (`apply -f -`), read only up to the size cap."""
    data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:  # the rest is never read: its real size is unknown
        raise ConfigError(
            [
                Problem(
                    name,
                    "-",
                    "-",
                    f"holds more than {_size(max_bytes)} ({max_bytes} bytes), the "
                    f"limit for a config file; {LIMIT_HINT}",
                )
            ]
        )
    try:
        return bytes(data).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError([Problem(name, "-", "-", "is not UTF-8 text")]) from None
