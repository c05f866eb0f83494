"""`relaygate.runtime` stands alone: importing it loads neither `relaygate.config` nor pydantic, nor
any layer above it (the request path reads runtime types without dragging the config compiler in)."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import relaygate.runtime

RUNTIME_MODULES = sorted(f"relaygate.runtime.{m.name}" for m in pkgutil.iter_modules(relaygate.runtime.__path__))
ALLOWED = ("relaygate", "relaygate.runtime", "relaygate.errors", "relaygate.context")


def _loaded_after_importing(modules: list[str]) -> list[str]:
    """Every module a fresh interpreter has loaded after importing `modules`."""
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    loaded: list[str] = json.loads(result.stdout)
    return loaded


def test_the_package_has_the_runtime_modules() -> None:
    assert {"relaygate.runtime.snapshot", "relaygate.runtime.targets", "relaygate.runtime.virtual"} <= set(
        RUNTIME_MODULES
    )
    assert {"relaygate.runtime.proxy", "relaygate.runtime.ngrok"} <= set(RUNTIME_MODULES)


def test_importing_runtime_loads_no_config_and_no_pydantic() -> None:
    loaded = _loaded_after_importing(["relaygate.runtime", *RUNTIME_MODULES])
    assert "relaygate.runtime.snapshot" in loaded  # the probe did import the package
    assert [m for m in loaded if m == "relaygate.config" or m.startswith("relaygate.config.")] == []
    assert [m for m in loaded if m == "pydantic" or m.startswith(("pydantic.", "pydantic_core"))] == []


def test_runtime_imports_only_errors_context_and_itself() -> None:
    loaded = _loaded_after_importing(RUNTIME_MODULES)
    outside = [
        m
        for m in loaded
        if (m == "relaygate" or m.startswith("relaygate."))
        and m not in ALLOWED
        and not m.startswith("relaygate.runtime.")
    ]
    assert outside == []
