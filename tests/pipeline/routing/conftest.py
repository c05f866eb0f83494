"""One gateway serving many virtual models over three mock providers, for the routing end-to-end tests.

Providers `prov-a`, `prov-b` and `prov-c` are separate `ProbeMock` upstreams (A, B, C), so each
target's traffic is counted where it lands; `prov-r` (collaborator: bob only) also points at C, and
`prov-dead` at a closed port. Health, latency and sticky state live in the gateway process for its
whole life, so every test routes over its own integrations (`prov-a/<test>`, `prov-b/<test>`, ...):
one test's failures never cool down another test's targets. Model ids are `<integration>-on-<x>`
so the upstream body shows which target was called.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from openai import OpenAI

from tests.helpers.gateway import free_port
from tests.helpers.gateway_thread import GatewayThread
from tests.pipeline.routing.probe import ProbeMock

ALICE = "alice@example.com"
BOB = "bob@example.com"
CHAT_PATH = "/chat/completions"
ACCOUNT_MOCK = {"prov-a": "a", "prov-b": "b", "prov-c": "c", "prov-r": "c"}
MESSAGES: list[Any] = [{"role": "user", "content": "route me please"}]


def t(target: str, **knobs: Any) -> dict[str, Any]:
    """One `load_balance_targets` entry."""
    return {"target": target, **knobs}


def model_id(target: str) -> str:
    """The provider model id the config gives `account/integration` (what its upstream receives)."""
    account, _, integration = target.partition("/")
    return f"{integration}-on-{account.removeprefix('prov-')}"


PRIORITY = "priority-based-routing"
WEIGHT = "weight-based-routing"
LATENCY = "latency-based-routing"


def pair(name: str, **first: Any) -> tuple[str, list[dict[str, Any]]]:
    """A priority model: `prov-a/<name>` first (with `first` knobs), `prov-b/<name>` as its backup."""
    return PRIORITY, [t(f"prov-a/{name}", priority=0, **first), t(f"prov-b/{name}", priority=1)]


RETRY_500 = {"attempts": 2, "delay": 0, "on_status_codes": ["500"]}

VIRTUAL: dict[str, tuple[str, list[dict[str, Any]]] | tuple[str, list[dict[str, Any]], dict[str, Any]]] = {
    # strategies
    "weight": (WEIGHT, [t("prov-a/weight", weight=80), t("prov-b/weight", weight=20)]),
    "priority": pair("priority"),
    "sla": pair("sla", sla_cutoff={"time_per_output_token_ms": 5}),
    "model-id": (WEIGHT, [t("prov-a/model-id", weight=50), t("prov-b/model-id", weight=50)]),
    "sticky": (
        WEIGHT,
        [t("prov-a/sticky", weight=50), t("prov-b/sticky", weight=50)],
        {
            "sticky_routing": {
                "ttl_seconds": 3600,
                "session_identifiers": [{"key": "X-Session-Id", "source": "headers"}],
            }
        },
    ),
    "sticky-meta": (
        WEIGHT,
        [t("prov-a/sticky-meta", weight=50), t("prov-b/sticky-meta", weight=50)],
        {"sticky_routing": {"session_identifiers": [{"key": "conversation", "source": "metadata"}]}},
    ),
    "latency": (LATENCY, [t("prov-a/latency"), t("prov-b/latency")]),
    "latency-stream": (LATENCY, [t("prov-a/latency-stream"), t("prov-b/latency-stream")]),
    "latency-fallback": (LATENCY, [t("prov-a/latency-fallback"), t("prov-b/latency-fallback")]),
    # fallback
    **{f"fb-{status}": pair(f"fb-{status}") for status in (429, 500, 503)},
    "fb-400": pair("fb-400"),
    "fb-network": (PRIORITY, [t("prov-dead/fb-network", priority=0), t("prov-b/fb-network", priority=1)]),
    "fb-candidate": (
        PRIORITY,
        [
            t("prov-a/fb-candidate", priority=0),
            t("prov-b/fb-candidate", priority=1, fallback_candidate=False),
            t("prov-c/fb-candidate", priority=2),
        ],
    ),
    "fb-candidate-primary": (
        WEIGHT,
        [
            t("prov-a/fb-candidate-primary", weight=100, fallback_candidate=False),
            t("prov-b/fb-candidate-primary", weight=0),
        ],
    ),
    "cooldown": pair("cooldown"),
    "cooldown-last": pair("cooldown-last"),
    # retries
    "retry": pair("retry", retry_config=RETRY_500),
    "retry-exhausted": pair("retry-exhausted", retry_config=RETRY_500),
    "retry-codes": pair("retry-codes", retry_config=RETRY_500),
    "retry-delay": pair("retry-delay", retry_config={"attempts": 1, "delay": 400, "on_status_codes": ["503"]}),
    "retry-header": pair("retry-header", retry_config={"attempts": 3, "delay": 0, "on_status_codes": ["500"]}),
    # metadata, overrides
    "metadata": pair("metadata", metadata_match={"region": "eu"}),
    "metadata-only": (PRIORITY, [t("prov-a/metadata-only", priority=0, metadata_match={"region": "eu"})]),
    "overrides": (
        PRIORITY,
        [
            t(
                "prov-a/overrides",
                priority=0,
                override_params={"temperature": 0.2, "max_tokens": 512},
                headers_override={"set": {"X-Route-Tag": "blue"}, "remove": ["X-Drop-Me"]},
            )
        ],
    ),
    "override-fallback": pair(
        "override-fallback",
        override_params={"temperature": 0.2, "user": "from-a"},
        headers_override={"set": {"X-Route-Tag": "a-only"}},
    ),
    # access
    "access": (
        PRIORITY,
        [t("prov-a/access", priority=0), t("prov-r/access", priority=1), t("prov-b/access", priority=2)],
    ),
    "vat": pair("vat"),
    # timeouts
    "req-timeout": pair("req-timeout"),
    "ttft": pair("ttft", fallback_status_codes=["500"]),
    # streaming
    "stream-fb": pair("stream-fb"),
    "stream-drop-first": pair("stream-drop-first"),
    "stream-drop-role": pair("stream-drop-role"),
    "stream-error-first": pair("stream-error-first"),
    "stream-error-429-first": pair("stream-error-429-first"),
    "stream-error": pair("stream-error"),
    "stream-drop": pair("stream-drop"),
    "disconnect-stream": pair("disconnect-stream"),
    "disconnect-wait": pair("disconnect-wait"),
    # response headers
    "hdr-resolved": pair("hdr-resolved"),
    "hdr-applied": pair("hdr-applied", retry_config={"attempts": 1, "delay": 0, "on_status_codes": ["500"]}),
    "hdr-timing": pair("hdr-timing"),
    "hdr-stream": pair("hdr-stream"),
    "log-row": pair("log-row"),
    # x-tfy-applied-configurations: model configuration and fallback entries
    "applied-config": pair(
        "applied-config",
        override_params={"temperature": 0.2, "max_tokens": 64},
        headers_override={"set": {"X-Route-Tag": "secret-tag-value"}, "remove": ["X-Drop-Me"]},
    ),
    "applied-fallback": pair("applied-fallback", override_params={"temperature": 0.2}),
    "applied-network": (
        PRIORITY,
        [
            t("prov-dead/applied-network", priority=0),
            t("prov-b/applied-network", priority=1, override_params={"top_p": 0.5}),
        ],
    ),
    "applied-stream": pair("applied-stream"),
}

PLAIN = (
    "plain-retry",
    "plain-retry-codes",
    "retry-after",
    "retry-after-ignored",
    "ttft-plain",
    "timeout-plain",
    "hdr-single",
    "disconnect-plain",
    "stream-error-plain",
)
INTEGRATION_HEADERS = {"overrides": {"X-Drop-Me": "dropped", "X-Keep-Me": "kept"}}


def _integration(account: str, name: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": name,
        "type": "integration/model/openai",
        "model_id": model_id(f"{account}/{name}"),
        "model_types": ["chat"],
    }
    if name in INTEGRATION_HEADERS:
        entry["headers"] = INTEGRATION_HEADERS[name]
    return entry


def build_config(
    ports: Mapping[str, int], virtual: Mapping[str, Any], plain: tuple[str, ...] = (), *, identities: bool = True
) -> str:
    """The YAML for the given virtual models (account `vmod`) and plain `prov-a` models."""
    integrations: dict[str, list[str]] = {}
    for spec in virtual.values():
        for target in spec[1]:
            account, _, name = target["target"].partition("/")
            integrations.setdefault(account, [])
            if name not in integrations[account]:
                integrations[account].append(name)
    integrations.setdefault("prov-a", []).extend(n for n in plain if n not in integrations.get("prov-a", []))
    manifests: list[dict[str, Any]] = []
    for account, names in sorted(integrations.items()):
        manifest: dict[str, Any] = {
            "type": "provider-account/openai",
            "name": account,
            "base_url": f"http://127.0.0.1:{ports[account]}/v1",
            "auth_data": {"type": "api-key", "api_key": f"sk-{account}-key"},
            "integrations": [_integration(account, name) for name in names],
        }
        if account == "prov-r":
            manifest["collaborators"] = [{"subject": f"user:{BOB}", "role_id": "provider-account-access"}]
        manifests.append(manifest)
    vm_integrations = []
    for name, spec in virtual.items():
        routing: dict[str, Any] = {"type": spec[0], "load_balance_targets": spec[1]}
        if len(spec) > 2:
            routing.update(spec[2])
        vm_integrations.append(
            {"name": name, "type": "integration/model/virtual", "model_types": ["chat"], "routing_config": routing}
        )
    manifests.append({"type": "provider-account/virtual-model", "name": "vmod", "integrations": vm_integrations})
    if identities:
        manifests += [
            {"type": "virtual-account", "name": "vm-bot", "allowed_models": ["vmod/vat", "prov-a/vat", "prov-b/vat"]},
            {"type": "virtual-account", "name": "targets-bot", "allowed_models": ["prov-a/vat", "prov-b/vat"]},
        ]
    return "---\n".join(yaml.safe_dump(m, sort_keys=False) for m in manifests)


@dataclass
class Rig:
    """The routing gateway, its three upstreams and ready tokens."""

    gateway: GatewayThread
    a: ProbeMock
    b: ProbeMock
    c: ProbeMock
    alice: str
    bob: str
    vm_bot: str  # virtual account listing vmod/vat and its targets
    targets_bot: str  # virtual account listing only the targets of vmod/vat
    _clients: dict[str, OpenAI] = field(default_factory=dict)

    def reset(self) -> None:
        for mock in (self.a, self.b, self.c):
            mock.reset()

    def client(self, token: str | None = None, **options: Any) -> OpenAI:
        """An SDK client (SDK retries off); one kept per token when no options are given."""
        token = token or self.alice
        if options:
            return self.gateway.client(token, **options)
        if token not in self._clients:
            self._clients[token] = self.gateway.client(token)
        return self._clients[token]

    def counts(self) -> tuple[int, int, int]:
        """Chat requests received by A, B and C."""
        return tuple(len(m.requests_to(CHAT_PATH)) for m in (self.a, self.b, self.c))  # type: ignore[return-value]

    def chat(
        self, model: str, *, token: str | None = None, headers: Mapping[str, str] | None = None, **body: Any
    ) -> Any:
        """A non-streaming chat call through the SDK; returns the raw response (headers + `.parse()`)."""
        return self.client(token).chat.completions.with_raw_response.create(
            model=model, messages=body.pop("messages", MESSAGES), extra_headers=dict(headers or {}), **body
        )


def applied(headers: Any) -> dict[str, Any]:
    """`x-tfy-applied-configurations` parsed."""
    raw = headers.get("x-tfy-applied-configurations")
    assert raw, "x-tfy-applied-configurations missing"
    value = orjson.loads(raw)
    assert isinstance(value, dict)
    return value


def start_mocks(count: int) -> list[ProbeMock]:
    return [ProbeMock().start_in_thread() for _ in range(count)]


def stop_mocks(mocks: list[ProbeMock]) -> None:
    for mock in mocks:
        mock.stop_thread()


@pytest.fixture(scope="package")
def routing_rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    mocks = start_mocks(3)
    a, b, c = mocks
    ports = {"prov-a": a.port, "prov-b": b.port, "prov-c": c.port, "prov-r": c.port, "prov-dead": free_port()}
    gateway = GatewayThread(Path(tmp_path_factory.mktemp("routing")), build_config(ports, VIRTUAL, PLAIN))
    try:
        gateway.start()
        yield Rig(
            gateway,
            a,
            b,
            c,
            alice=gateway.create_token(user=ALICE),
            bob=gateway.create_token(user=BOB),
            vm_bot=gateway.create_token(virtual_account="vm-bot"),
            targets_bot=gateway.create_token(virtual_account="targets-bot"),
        )
    finally:
        gateway.stop()
        stop_mocks(mocks)


@pytest.fixture
def rig(routing_rig: Rig) -> Rig:
    routing_rig.reset()
    return routing_rig
