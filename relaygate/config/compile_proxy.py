"""`provider-account/custom-endpoint` manifests -> runtime proxy accounts (`/proxy-api/...`).

Decided here, once per config: each endpoint's origin and path prefix, the headers it injects
(integration auth replaces account auth; custom headers merge, the account's under the
integration's, auth winning over both), the credential values scrubbed from what its upstream
answers, its TLS context, who may call it, and the routing targets of the account's pool.
"""

from __future__ import annotations

import base64
import binascii
import re
import ssl
from collections.abc import Iterable
from typing import Any

import orjson
from yarl import URL

from relaygate.auth.access import AccessRule
from relaygate.config.problems import Problem
from relaygate.config.schema_common import secret_value
from relaygate.http.forwarding import merge_headers
from relaygate.routing.plan import RouteTarget
from relaygate.routing.strategies import STRATEGIES
from relaygate.runtime.proxy import ProxyAccount, ProxyEndpoint
from relaygate.upstream.destinations import is_metadata_address


def _header_auth(auth: Any) -> dict[str, str]:
    if auth is None:
        return {}
    return {name: secret_value(value) for name, value in auth.headers.items()}


# A Custom Header (`headers:`, not `auth_data`) is a credential too when its name says so.
_CREDENTIAL_NAME = re.compile(r"auth|key|token|secret|passw|credential|signature|cookie", re.IGNORECASE)
# `Bearer <token>`, `Basic <base64>`, `SharedKey <account:signature>`: the part after the scheme is
# the credential an upstream is most likely to quote on its own.
_SCHEME_VALUE = re.compile(r"([A-Za-z][A-Za-z0-9_-]{0,31}) +(\S.*)")
MIN_SECRET_LENGTH = 4  # shorter values would scrub ordinary words and digits


def credential_values(auth_values: Iterable[str], headers: Iterable[tuple[str, str]]) -> tuple[bytes, ...]:
    """What must never reach a caller, longest first: every `auth_data` value, every Custom Header
    value whose name marks a credential, and the parts an upstream may echo on their own (the
    credential after an auth scheme, a Basic pair decoded and its password), each also JSON-escaped."""
    values = [*auth_values, *(value for name, value in headers if _CREDENTIAL_NAME.search(name))]
    found: set[bytes] = set()
    for value in values:
        forms = [value]
        scheme = _SCHEME_VALUE.fullmatch(value.strip())
        if scheme is not None:
            forms.append(scheme.group(2))
            if scheme.group(1).lower() == "basic":
                forms.extend(_basic_parts(scheme.group(2)))
        for form in forms:
            raw = form.encode("utf-8")
            found.update(v for v in (raw, orjson.dumps(form)[1:-1]) if len(v) >= MIN_SECRET_LENGTH)
    return tuple(sorted(found, key=len, reverse=True))


def _basic_parts(encoded: str) -> list[str]:
    try:
        pair = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return []
    return [pair, pair.partition(":")[2]] if ":" in pair else [pair]


def _tls(settings: Any) -> ssl.SSLContext | bool:
    if settings is None:
        return True
    if not settings.reject_unauthorized:
        return False
    if settings.ca_certificates:
        return ssl.create_default_context(cadata=settings.ca_certificates)
    return True


def compile_proxy_account(account: Any, file: str) -> tuple[ProxyAccount | None, list[Problem]]:
    """One account, or the problems that keep it from serving (e.g. a metadata-address base_url)."""
    problems: list[Problem] = []
    label = f"{account.type} {account.name}"
    collaborators = frozenset(c.subject for c in account.collaborators) if account.collaborators else None
    account_auth = _header_auth(account.auth_data)
    account_headers = dict(account.headers or {})
    # One scrub list for the whole account: an upstream may know (and echo) any key configured in it.
    secrets = credential_values(
        [*account_auth.values(), *(v for i in account.integrations for v in _header_auth(i.auth_data).values())],
        [*account_headers.items(), *(pair for i in account.integrations for pair in (i.headers or {}).items())],
    )
    endpoints: dict[str, ProxyEndpoint] = {}
    for index, integration in enumerate(account.integrations):
        url = URL(integration.base_url, encoded=True)
        allow_metadata = (
            integration.allow_metadata_destinations
            if integration.allow_metadata_destinations is not None
            else account.allow_metadata_destinations
        )
        if not allow_metadata and is_metadata_address(url.host or ""):
            problems.append(
                Problem(
                    file,
                    label,
                    f"integrations[{index}].base_url",
                    "points at a link-local/cloud-metadata address; set allow_metadata_destinations: true to allow it",
                )
            )
            continue
        auth = _header_auth(integration.auth_data) if integration.auth_data is not None else account_auth
        headers = merge_headers(account_headers, dict(integration.headers or {}), auth)
        lb = integration.loadbalancing_config if account.routing_type else None
        target_name = f"{account.name}/{integration.name}"
        route = RouteTarget(
            key=f"proxy:{target_name}",
            name=integration.name,
            payload=target_name,
            provider="custom-endpoint",
            weight=lb.weight if lb else None,
            priority=lb.priority if lb else None,
            fallback_status_codes=frozenset(int(code) for code in lb.fallback_status_codes) if lb else frozenset(),
            fallback_candidate=lb.fallback_candidate if lb else True,
        )
        endpoints[integration.name] = ProxyEndpoint(
            account=account.name,
            name=integration.name,
            scheme=url.scheme,
            host=url.raw_host or "",
            port=url.explicit_port,
            base_path=url.raw_path.rstrip("/"),
            headers=headers,
            header_names=frozenset(name.lower() for name, _ in headers),
            ssl=_tls(integration.tls_settings),
            authorized_subjects=frozenset(integration.authorized_subjects)
            if integration.authorized_subjects is not None
            else None,
            allow_metadata=allow_metadata,
            route=route,
        )
    if problems:
        return None, problems
    pooled = account.routing_type is not None
    return ProxyAccount(
        name=account.name,
        endpoints=endpoints,
        access=AccessRule(collaborators),
        endpoint_type=account.endpoint_type,
        secrets=secrets,
        slug=account.slug if pooled else None,
        routing_type=account.routing_type,
        strategy=STRATEGIES[account.routing_type] if pooled else None,
        pool=tuple(e.route for e in endpoints.values()) if pooled else (),
    ), []


def compile_proxy_accounts(accounts: Iterable[tuple[Any, str]]) -> tuple[dict[str, ProxyAccount], list[Problem]]:
    """Every custom-endpoint account with the file it came from."""
    compiled: dict[str, ProxyAccount] = {}
    problems: list[Problem] = []
    for account, file in accounts:
        proxy, found = compile_proxy_account(account, file)
        problems.extend(found)
        if proxy is not None:
            compiled[proxy.name] = proxy
    return compiled, problems
