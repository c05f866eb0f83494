"""Golden files: a translator's output against the expected file in tests/fixtures/golden/<pair>/.

`GoldenDir("openai-to-anthropic")` is one translation pair's folder. Its `check_*` methods assert that
the output equals the expected file, or, when `RELAYGATE_REGENERATE_GOLDEN=1`, rewrite the expected
file from the current code instead (review the diff before keeping it):

- `check_bytes(name, actual)`: the whole file, byte for byte (SSE, event-stream frames, canonical JSON);
- `check_text(name, actual)`: the same for text;
- `check_json(name, actual)`: the whole file as a JSON value (written indented);
- `check_case(name, key, actual)`: one expected value, `key`, of a JSON case file that also holds the
  inputs (written indented, non-ASCII kept); `check_case_file(name, actual)`: a whole file in that form.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import orjson

REGENERATE = os.environ.get("RELAYGATE_REGENERATE_GOLDEN") == "1"
GOLDEN_ROOT = Path(__file__).resolve().parents[1] / "fixtures" / "golden"
CREATED = 1_700_000_000  # the `created` timestamp translations run with, so golden outputs are stable
_HINT = "regenerate with RELAYGATE_REGENERATE_GOLDEN=1"


def _case_text(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


class GoldenDir:
    """The golden files of one translation pair (names are relative to its folder)."""

    def __init__(self, pair: str) -> None:
        self.root = GOLDEN_ROOT / pair

    def path(self, name: str) -> Path:
        return self.root / name

    def names(self, pattern: str) -> list[str]:
        """The names matching a glob `pattern`, sorted."""
        return sorted(str(p.relative_to(self.root)) for p in self.root.glob(pattern))

    def read_bytes(self, name: str) -> bytes:
        return self.path(name).read_bytes()

    def read_json(self, name: str) -> Any:
        return orjson.loads(self.path(name).read_bytes())

    def case(self, name: str) -> dict[str, Any]:
        """A JSON case file (inputs and expected outputs)."""
        data: dict[str, Any] = json.loads(self.path(name).read_text("utf-8"))
        return data

    def check_bytes(self, name: str, actual: bytes) -> None:
        target = self.path(name)
        if REGENERATE:
            target.write_bytes(actual)
            return
        assert target.exists(), f"missing golden file {target}; {_HINT}"
        expected = target.read_bytes()
        assert actual == expected, f"{name} differs from its golden file:\n{actual.decode('utf-8', 'replace')}"

    def check_text(self, name: str, actual: str) -> None:
        target = self.path(name)
        if REGENERATE:
            target.write_text(actual, "utf-8")
            return
        assert target.exists(), f"missing golden file {target}; {_HINT}"
        assert actual == target.read_text("utf-8"), f"{name} differs from its golden file"

    def check_json(self, name: str, actual: Any) -> None:
        target = self.path(name)
        if REGENERATE:
            target.write_bytes(orjson.dumps(actual, option=orjson.OPT_INDENT_2) + b"\n")
            return
        assert target.exists(), f"missing golden file {target}; {_HINT}"
        assert actual == orjson.loads(target.read_bytes()), f"{name} differs from its golden file"

    def check_case(self, name: str, key: str, actual: Any) -> None:
        data = self.case(name)
        actual = json.loads(json.dumps(actual))  # the form it takes in the file (tuples -> lists)
        if REGENERATE:
            data[key] = actual
            self.path(name).write_text(_case_text(data), "utf-8")
            return
        assert data.get(key) is not None, f"{name} has no expected '{key}'; {_HINT}"
        assert actual == data[key], f"{name}: {key} differs from the golden file"

    def check_case_file(self, name: str, actual: Any) -> None:
        """The whole file is one expected JSON value, written as case files are."""
        target = self.path(name)
        actual = json.loads(json.dumps(actual))
        if REGENERATE:
            target.write_text(_case_text(actual), "utf-8")
            return
        assert target.exists(), f"no {name}; {_HINT}"
        assert actual == json.loads(target.read_text("utf-8")), f"{name} differs from its golden file"
