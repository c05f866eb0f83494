"""A compiled `Snapshot` holds no pydantic object: nothing the request path reads keeps a manifest
(or a `SecretStr` of one) alive, and the snapshot does not hold the manifests themselves."""

from __future__ import annotations

import dataclasses
import gc
import json
import re
import weakref
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from pydantic import BaseModel, SecretStr

from relaygate.config.compile import compile_manifests
from relaygate.config.loader import load_path
from relaygate.routing.ngrok import plan
from relaygate.runtime.ngrok import NgrokGateway
from relaygate.runtime.proxy import ProxyAccount, ProxyEndpoint
from relaygate.runtime.snapshot import Snapshot
from relaygate.runtime.targets import Target
from relaygate.runtime.virtual import TargetOverrides, VirtualModel
from tests.upstreams.gemini_mock import service_account_key

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
_VARIABLE = re.compile(r"\$\{([A-Z][A-Z0-9_]*)")


def _service_account_json() -> str:
    """A syntactically real service-account key (a fresh RSA key; never used to call Google)."""
    return json.dumps(service_account_key("https://oauth2.googleapis.com/token", "demo-project")[0])


def _env(paths: list[Path]) -> dict[str, str]:
    """A placeholder for every `${VAR}` the files name."""
    names = {name for path in paths for name in _VARIABLE.findall(path.read_text())}
    env = {name: f"placeholder-{name.lower()}" for name in names}
    if "GCP_SERVICE_ACCOUNT_JSON" in env:
        env["GCP_SERVICE_ACCOUNT_JSON"] = _service_account_json()
    return env


def _compiled(*names: str) -> Snapshot:
    paths = [EXAMPLES / name for name in names]
    return compile_manifests(load_path(paths, env=_env(paths)))


def _reachable(root: object) -> Iterator[object]:
    """Every object reachable from `root` through dataclass fields, slots of relaygate objects and
    containers (adapters' internals and CEL values are other packages' business: not entered)."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        item = stack.pop()
        if id(item) in seen or isinstance(item, (str, bytes, int, float, bool, type(None))):
            continue
        seen.add(id(item))
        yield item
        if dataclasses.is_dataclass(item) and not isinstance(item, type):
            stack.extend(getattr(item, f.name) for f in dataclasses.fields(item))
        elif isinstance(item, Mapping):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)
        elif type(item).__module__.startswith("relaygate.") and not callable(getattr(item, "open", None)):
            for name in getattr(type(item), "__slots__", ()):
                if hasattr(item, name):
                    stack.append(getattr(item, name))
            stack.extend(getattr(item, "__dict__", {}).values())


def _pydantic(objects: list[object]) -> list[str]:
    """Pydantic objects (manifests, `SecretStr`s) and anything else of `relaygate.config`, by type name."""
    return sorted(
        {
            type(o).__qualname__
            for o in objects
            if isinstance(o, BaseModel)
            or type(o).__module__.partition(".")[0] in ("pydantic", "pydantic_core")
            or type(o).__module__.startswith("relaygate.config")
        }
    )


EXAMPLE_SETS = [
    ("providers.yaml",),
    ("quickstart.yaml", "limits.yaml"),
    ("virtual-models.yaml",),
    ("custom-endpoint-azure-speech.yaml",),
    ("custom-endpoint-pool.yaml",),
    ("ngrok-ai-gateway.yaml",),
    ("claude-code.yaml",),
]


@pytest.mark.parametrize("names", EXAMPLE_SETS, ids=lambda names: "+".join(names))
def test_no_pydantic_object_is_reachable_from_a_compiled_example(names: tuple[str, ...]) -> None:
    snapshot = _compiled(*names)
    assert snapshot.serves_anything
    objects = list(_reachable(snapshot))
    assert _pydantic(objects) == []
    assert not hasattr(snapshot, "manifests")


def test_the_check_finds_a_manifest_or_secret_where_one_is_kept() -> None:
    """A planted manifest object or `SecretStr` is found, however deep."""
    snapshot = _compiled("virtual-models.yaml")
    manifest = load_path(EXAMPLES / "quickstart.yaml").provider_accounts[0]
    target = next(iter(snapshot.models.values()))
    planted = dataclasses.replace(target, options={"kept": (manifest, SecretStr("s3cret"))})
    found = _pydantic(list(_reachable(dataclasses.replace(snapshot, models={"x": planted}))))
    assert "SecretStr" in found and type(manifest).__qualname__ in found


def test_the_manifests_are_freed_once_compiled() -> None:
    """Nothing the snapshot holds (adapter caches included) keeps a manifest alive."""
    paths = [EXAMPLES / name for name in ("providers.yaml", "virtual-models.yaml")]
    manifests = load_path(paths, env=_env(paths))
    kept = [weakref.ref(m) for m in (*manifests.provider_accounts, *manifests.virtual_accounts)]
    snapshot = compile_manifests(manifests)
    del manifests
    gc.collect()
    assert snapshot.models and [r for r in kept if r() is not None] == []


def test_the_walk_reaches_every_runtime_type() -> None:
    """The check above is not vacuous: every kind of runtime object was walked through."""
    found: set[type] = set()
    for names in EXAMPLE_SETS:
        snapshot = _compiled(*names)
        found.update(type(o) for o in _reachable(snapshot))
        if snapshot.ngrok is not None:  # a pass-through model is built per request: also plain
            routes = plan(snapshot.ngrok, "openai:some-unlisted-model", None, {})
            assert routes and _pydantic(list(_reachable(routes))) == []
    assert {Target, TargetOverrides, VirtualModel, ProxyAccount, ProxyEndpoint, NgrokGateway} <= found


def test_runtime_types_are_frozen_and_slotted() -> None:
    for cls in (Snapshot, Target, TargetOverrides, VirtualModel, ProxyAccount, ProxyEndpoint, NgrokGateway):
        assert dataclasses.is_dataclass(cls)
        assert cls.__dataclass_params__.frozen, cls  # type: ignore[attr-defined]
        assert "__slots__" in cls.__dict__, cls
