"""Building an `NgrokGateway` from YAML text, as the loader and compiler would."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from relaygate.config.compile_ngrok import compile_ai_gateway
from relaygate.config.loader import load_text
from relaygate.config.problems import Problem
from relaygate.routing.plan import RouteTarget
from relaygate.runtime.ngrok import NgrokGateway


def no_internal_hosts(host: str) -> bool:
    return False


def compile_text(
    text: str, internal_host: Callable[[str], bool] = no_internal_hosts, env: dict[str, str] | None = None
) -> tuple[NgrokGateway | None, list[Problem]]:
    manifests = load_text(text, filename="policy.yaml", env=env or {})
    return compile_ai_gateway(manifests.ai_gateway_policies, lambda policy: "policy.yaml", internal_host)


def gateway(
    text: str, internal_host: Callable[[str], bool] = no_internal_hosts, env: dict[str, str] | None = None
) -> NgrokGateway:
    compiled, problems = compile_text(text, internal_host, env)
    assert not problems, problems
    assert compiled is not None
    return compiled


def route_keys(routes: Sequence[RouteTarget]) -> list[str]:
    return [r.key for r in routes]
