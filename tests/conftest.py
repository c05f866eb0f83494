"""Shared fixtures: mock upstreams, gateway processes, and the standard end-to-end stack.

- `free_port`: a free 127.0.0.1 port (nothing listens on it: also a "closed port").
- `openai_upstream`: a running `OpenAIMock` (OpenAI + Azure routes, keys from `tests.helpers.manifests`),
  served from a background thread so sync and async tests can both use it.
- `gateway_factory`: `gateway_factory(yaml_text, **placeholders)` starts a gateway with that config
  (`{name}` placeholders replaced); every gateway is stopped at teardown. Which kind is `gateway_kind`:
  `GatewayThread` (the app served from a thread of the test process) unless a directory's conftest
  says `GatewayProcess` (tests/e2e/: signals, exit codes, SDKs over a separate process).
- `standard_stack` (module-scoped) / `stack` (per test, mocks reset): the `STANDARD` manifests served by
  one gateway, with tokens for alice, bob and the `ci-bot` virtual account.
- `pg_database` (module-scoped): a fresh PostgreSQL database (skips when PostgreSQL is unreachable);
  `pg_url`: a fresh schema in it for one test.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.helpers import manifests
from tests.helpers.gateway import GatewayHandle, render
from tests.helpers.gateway import free_port as _free_port
from tests.helpers.gateway_thread import GatewayThread
from tests.helpers.inprocess import rig  # noqa: F401  (a fixture: the app in the test's loop, tests/helpers/inprocess.py)
from tests.helpers.postgres import fresh_database, fresh_schema
from tests.upstreams.openai_mock import OpenAIMock

GatewayFactory = Callable[..., GatewayHandle]

# The suite starts hundreds of Python processes (the CLI, gateways, their workers). Where the machine sets
# PYTHONDONTWRITEBYTECODE (this CI machine does), each of them compiled every module it imports again,
# about 0.3 s of CPU apiece; the bytecode cached in __pycache__ (git-ignored) spares that. Popped here, in
# the first conftest pytest loads, so xdist's workers and every process a test starts inherit it.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """Under `coverage run` the tests run in this process (`-n 0`): coverage does not follow xdist's workers."""
    coverage = sys.modules.get("coverage")
    if coverage is not None and coverage.Coverage.current() is not None and config.getoption("numprocesses", None):
        config.option.numprocesses = 0


GatewayKind = type[GatewayHandle]


@pytest.fixture(scope="module")
def gateway_kind() -> GatewayKind:
    """What `gateway_factory` and `standard_stack` start: overridden to `GatewayProcess` in tests/e2e/."""
    return GatewayThread


@pytest.fixture
def free_port() -> int:
    return _free_port()


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    with fresh_database() as url:
        yield url


@pytest.fixture
def pg_url(pg_database: str) -> str:
    return fresh_schema(pg_database)


@pytest.fixture
def openai_upstream() -> Iterator[OpenAIMock]:
    with OpenAIMock(manifests.OPENAI_KEY, manifests.AZURE_KEY).running() as mock:
        yield mock


@pytest.fixture
def vllm_upstream() -> Iterator[OpenAIMock]:
    """A keyless OpenAI-compatible server, as a self-hosted vLLM would be."""
    with OpenAIMock().running() as mock:
        yield mock


def _factory(base: Path, kind: GatewayKind = GatewayThread) -> tuple[GatewayFactory, list[GatewayHandle]]:
    started: list[GatewayHandle] = []

    def start(
        config_text: str, *, start: bool = True, env: dict[str, str] | None = None, **placeholders: object
    ) -> GatewayHandle:
        gateway = kind(base / f"gateway-{len(started)}", render(config_text, **placeholders), env=env)
        started.append(gateway)
        return gateway.start() if start else gateway

    return start, started


@pytest.fixture
def gateway_factory(tmp_path: Path, gateway_kind: GatewayKind) -> Iterator[GatewayFactory]:
    factory, started = _factory(tmp_path, gateway_kind)
    yield factory
    for gateway in started:
        gateway.stop()


@dataclass
class Stack:
    """The standard end-to-end setup: one gateway, its upstreams, and ready-made tokens."""

    gateway: GatewayHandle
    openai: OpenAIMock  # OpenAI + Azure routes, requires the upstream keys
    vllm: OpenAIMock  # the self-hosted (keyless) upstream
    alice: str  # personal token, member of ml-team
    bob: str  # personal token, collaborator on `restricted`
    ci_bot: str  # virtual account token, may call only openai-main/gpt-4o

    def reset(self) -> None:
        self.openai.reset()
        self.vllm.reset()


@pytest.fixture(scope="module")
def standard_stack(tmp_path_factory: pytest.TempPathFactory, gateway_kind: GatewayKind) -> Iterator[Stack]:
    openai_mock = OpenAIMock(manifests.OPENAI_KEY, manifests.AZURE_KEY).start_in_thread()
    vllm_mock = OpenAIMock().start_in_thread()
    factory, started = _factory(tmp_path_factory.mktemp("stack"), gateway_kind)
    try:
        gateway = factory(manifests.STANDARD, port=openai_mock.port, vllm_port=vllm_mock.port, closed_port=_free_port())
        yield Stack(
            gateway=gateway,
            openai=openai_mock,
            vllm=vllm_mock,
            alice=gateway.create_token(user=manifests.ALICE),
            bob=gateway.create_token(user=manifests.BOB),
            ci_bot=gateway.create_token(virtual_account="ci-bot"),
        )
    finally:
        for gateway in started:
            gateway.stop()
        openai_mock.stop_thread()
        vllm_mock.stop_thread()


@pytest.fixture
def stack(standard_stack: Stack) -> Stack:
    standard_stack.reset()
    return standard_stack


_SYNC_CLIENTS: list[httpx.Client] = []
_original_client_init = httpx.Client.__init__


def _recording_client_init(self: httpx.Client, *args: object, **kwargs: object) -> None:
    _original_client_init(self, *args, **kwargs)  # type: ignore[arg-type]
    _SYNC_CLIENTS.append(self)


httpx.Client.__init__ = _recording_client_init  # type: ignore[method-assign]


@pytest.fixture(scope="module", autouse=True)
def _collect_garbage_after_each_module() -> Iterator[None]:
    """A socket a module leaves open warns when the collector finds it: collect here, so the warning
    (an error) lands on the module that leaked it rather than on a later, unrelated test.

    Every sync httpx client (the openai and anthropic SDKs' too) is held by a list, and closed at the
    end of a module once nothing else holds it: a test-side client left unclosed cannot be collected in
    the middle of a later test and fail it at random. Leaks of the gateway's own sockets still fail."""
    yield
    gc.collect()  # SDK objects nobody holds are freed; their httpx clients stay (the list holds them)
    kept: list[httpx.Client] = []
    while _SYNC_CLIENTS:
        client = _SYNC_CLIENTS.pop()
        if sys.getrefcount(client) > 2:  # still held (a longer-lived fixture's client): keep it open
            kept.append(client)
        else:
            client.close()
        del client
    _SYNC_CLIENTS.extend(kept)
    gc.collect()
