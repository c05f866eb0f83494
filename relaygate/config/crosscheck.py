"""Rules that span manifests: references resolve, and names that share a namespace are unique.

Each manifest is valid on its own by the time it gets here; these checks need the whole set (a
virtual model's target lives in another manifest, possibly another file). A reference to a manifest
that failed its own validation is not reported again: that manifest already has its problems.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from relaygate.config.crosscheck_guardrails import guardrail_problems
from relaygate.config.crosscheck_mcp import McpNames, mcp_names, mcp_problems
from relaygate.config.problems import Loc, Problem, format_path
from relaygate.config.schema import (
    EVERYONE_TEAM,
    AiGatewayPolicy,
    BudgetConfig,
    CustomEndpointAccount,
    Manifest,
    McpRemoteServer,
    McpVirtualServer,
    ProviderAccountBase,
    RateLimitConfig,
    Team,
    VirtualAccount,
    VirtualModelAccount,
    When,
)


@dataclass(frozen=True, slots=True)
class Located:
    """A validated manifest and where it came from, for problem messages."""

    file: str
    label: str  # e.g. "provider-account/openai openai-main"
    manifest: Manifest | AiGatewayPolicy


@dataclass(frozen=True, slots=True)
class _Index:
    accounts: dict[str, ProviderAccountBase]
    teams: frozenset[str]
    virtual_accounts: frozenset[str]
    broken: frozenset[tuple[str, str]]  # identities of manifests that failed validation
    has_ai_gateway: bool
    mcp: McpNames

    def broken_account(self, name: str) -> bool:
        return any(t.startswith("provider-account/") and n == name for t, n in self.broken)


def crosscheck(entries: Sequence[Located], broken: Iterable[tuple[str, str]] = ()) -> list[Problem]:
    """All cross-manifest problems of a load; `broken` are (type, name) of manifests already refused."""
    problems: list[Problem] = []
    broken = frozenset(broken)
    accounts: dict[str, ProviderAccountBase] = {}
    first_file: dict[str, Located] = {}
    for entry in entries:
        m = entry.manifest
        if isinstance(m, ProviderAccountBase):
            seen = first_file.get(m.name)
            if seen is None:
                accounts[m.name] = m
                first_file[m.name] = entry
            elif seen.manifest.type != m.type:
                rule = (
                    f"provider account name already used by {seen.manifest.type} in {seen.file} "
                    "(account names share one namespace)"
                )
                problems.append(Problem(entry.file, entry.label, "name", rule))
    index = _Index(
        accounts=accounts,
        teams=frozenset(e.manifest.name for e in entries if isinstance(e.manifest, Team)),
        virtual_accounts=frozenset(e.manifest.name for e in entries if isinstance(e.manifest, VirtualAccount)),
        broken=broken,
        has_ai_gateway=any(isinstance(e.manifest, AiGatewayPolicy) for e in entries),
        mcp=mcp_names(entries, broken),
    )
    for entry in entries:
        problems += [Problem(entry.file, entry.label, format_path(loc), rule) for loc, rule in _check(entry, index)]
    problems += _rule_ids_across_configs(entries)
    problems += _aliases(entries)
    problems += _at_most_one(entries, "gateway-observability-config")
    problems += _at_most_one(entries, "gateway-admin-config")
    problems += _at_most_one(entries, "gateway-guardrails-config")
    problems += _at_most_one(entries, "gateway-cache-config")
    problems += guardrail_problems(entries, index.broken)
    problems += mcp_problems(entries, index.mcp)
    return problems


def _at_most_one(entries: Sequence[Located], manifest_type: str) -> list[Problem]:
    """Metric labels and admin roles are one decision per gateway: a second such config is refused."""
    found = [e for e in entries if e.manifest.type == manifest_type]
    return [
        Problem(
            extra.file,
            extra.label,
            "type",
            f"only one {manifest_type} may be applied (the first is {found[0].label} in {found[0].file})",
        )
        for extra in found[1:]
    ]


def _check(entry: Located, index: _Index) -> list[tuple[Loc, str]]:
    m = entry.manifest
    out: list[tuple[Loc, str]] = []
    if isinstance(m, ProviderAccountBase):
        for i, collaborator in enumerate(m.collaborators):
            out += _subject(collaborator.subject, ("collaborators", i, "subject"), index)
    if isinstance(m, VirtualModelAccount):
        out += _virtual_targets(m, index)
    if isinstance(m, CustomEndpointAccount):
        for i, endpoint in enumerate(m.integrations):
            for j, subject in enumerate(endpoint.authorized_subjects or ()):
                out += _subject(subject, ("integrations", i, "authorized_subjects", j), index)
    if isinstance(m, VirtualAccount):
        for i, ref in enumerate(m.allowed_models):
            out += _allowed(ref, ("allowed_models", i), index, endpoints=False)
        for i, ref in enumerate(m.allowed_endpoints):
            out += _allowed(ref, ("allowed_endpoints", i), index, endpoints=True)
        for i, name in enumerate(m.allowed_mcp_servers):
            out += index.mcp.server_reference(name, ("allowed_mcp_servers", i))
    if isinstance(m, McpRemoteServer | McpVirtualServer):
        for i, mcp_collaborator in enumerate(m.collaborators):
            out += _subject(mcp_collaborator.subject, ("collaborators", i, "subject"), index)
        for i, access in enumerate(m.access_rules):
            if access.subjects is None:
                continue
            for key, listed in (("in", access.subjects.in_ or ()), ("not_in", access.subjects.not_in)):
                for j, subject in enumerate(listed):
                    out += _subject(subject, ("access_rules", i, "subjects", key, j), index)
    if isinstance(m, RateLimitConfig | BudgetConfig):
        for i, rule in enumerate(m.rules):
            out += _when(rule.when, ("rules", i, "when"), index)
    return out


def _subject(subject: str, loc: Loc, index: _Index) -> list[tuple[Loc, str]]:
    kind, _, name = subject.partition(":")
    if kind == "team" and name != EVERYONE_TEAM and name not in index.teams and ("team", name) not in index.broken:
        return [(loc, f"team {name!r} is not declared (add a `type: team` manifest)")]
    if (
        kind == "virtualaccount"
        and name not in index.virtual_accounts
        and ("virtual-account", name) not in index.broken
    ):
        return [(loc, f"virtual account {name!r} is not declared (add a `type: virtual-account` manifest)")]
    return []


def _virtual_targets(account: VirtualModelAccount, index: _Index) -> list[tuple[Loc, str]]:
    out: list[tuple[Loc, str]] = []
    for i, model in enumerate(account.integrations):
        for j, target in enumerate(model.routing_config.load_balance_targets):
            loc: Loc = ("integrations", i, "routing_config", "load_balance_targets", j, "target")
            name, _, integration_name = target.target.partition("/")
            owner = index.accounts.get(name)
            if owner is None:
                if not index.broken_account(name):
                    out.append((loc, f"provider account {name!r} does not exist"))
                continue
            if isinstance(owner, VirtualModelAccount):
                out.append((loc, "must be a real model, not another virtual model"))
                continue
            if isinstance(owner, CustomEndpointAccount):
                out.append((loc, f"{name!r} is a custom-endpoint account, not a model"))
                continue
            found = next((x for x in owner.integrations if x.name == integration_name), None)
            if found is None:
                out.append((loc, f"provider account {name!r} has no integration {integration_name!r}"))
                continue
            served = set(getattr(found, "model_types", ()))
            missing = [t for t in model.model_types if t not in served]
            if missing:
                out.append((loc, f"does not serve {', '.join(missing)} (its model_types: {', '.join(sorted(served))})"))
    return out


def _allowed(ref: str, loc: Loc, index: _Index, *, endpoints: bool) -> list[tuple[Loc, str]]:
    name, _, item = ref.partition("/")
    owner = index.accounts.get(name)
    if owner is None:
        return [] if index.broken_account(name) else [(loc, f"provider account {name!r} does not exist")]
    is_endpoint_account = isinstance(owner, CustomEndpointAccount)
    if endpoints and not is_endpoint_account:
        return [(loc, f"{name!r} is not a custom-endpoint account; list it under allowed_models")]
    if not endpoints and is_endpoint_account:
        return [(loc, f"{name!r} is a custom-endpoint account; list it under allowed_endpoints")]
    names = {x.name for x in owner.integrations}
    if isinstance(owner, CustomEndpointAccount) and owner.slug and owner.pooled:
        names.add(owner.slug)
    if item != "*" and item not in names:
        return [(loc, f"provider account {name!r} has no {'endpoint' if endpoints else 'integration'} {item!r}")]
    return []


def _when(when: When, loc: Loc, index: _Index) -> list[tuple[Loc, str]]:
    """Rule filters that can never match are typos that silently disable a limit: report them."""
    out: list[tuple[Loc, str]] = []
    for i, subject in enumerate(when.subjects or ()):
        out += _subject(subject, (*loc, "subjects", i), index)
    for i, target in enumerate(when.mcp_servers or ()):
        out += index.mcp.limit_target(target, (*loc, "mcp_servers", i))
    for i, model in enumerate(when.models or ()):
        name, sep, item = model.partition("/")
        owner = index.accounts.get(name) if sep else None
        if owner is None:
            if sep and not index.has_ai_gateway and not index.broken_account(name):
                out.append(((*loc, "models", i), f"provider account {name!r} does not exist"))
            continue
        names = {x.name for x in owner.integrations}
        if isinstance(owner, CustomEndpointAccount) and owner.slug and owner.pooled:
            names.add(owner.slug)
        if item != "*" and item not in names:
            out.append(((*loc, "models", i), f"provider account {name!r} has no integration {item!r}"))
    return out


def _rule_ids_across_configs(entries: Sequence[Located]) -> list[Problem]:
    """Rule ids are reported in 429s and `x-tfy-applied-configurations`, so they must be unambiguous."""
    out: list[Problem] = []
    seen: dict[tuple[str, str], Located] = {}
    for entry in entries:
        m = entry.manifest
        if not isinstance(m, RateLimitConfig | BudgetConfig):
            continue
        for i, rule in enumerate(m.rules):
            first = seen.setdefault((m.type, rule.id), entry)
            if first is not entry:
                where = f"{first.label} in {first.file}"
                out.append(Problem(entry.file, entry.label, f"rules[{i}].id", f"rule id already used by {where}"))
    return out


def _model_names(entries: Sequence[Located]) -> dict[str, str]:
    """Every name a caller may already send as `model` -> what it is, for alias clashes."""
    names: dict[str, str] = {}
    for entry in entries:
        m = entry.manifest
        if isinstance(m, AiGatewayPolicy):
            where = f"a model of {entry.label} in {entry.file}"
            for config in m.configs:
                for provider in config.providers:
                    for model in provider.models:
                        for model_name in (model.id, *model.id_aliases):
                            names.setdefault(model_name, where)
                            for provider_name in (provider.id, *provider.id_aliases):
                                names.setdefault(f"{provider_name}:{model_name}", where)
        elif isinstance(m, ProviderAccountBase) and not isinstance(m, CustomEndpointAccount):
            for integration in m.integrations:
                names.setdefault(f"{m.name}/{integration.name}", f"the model of {entry.label} in {entry.file}")
    return names


def _aliases(entries: Sequence[Located]) -> list[Problem]:
    """Aliases are unique across the config and never shadow a model name: a name means one model."""
    out: list[Problem] = []
    models = _model_names(entries)
    seen: dict[str, str] = {}
    for entry in entries:
        m = entry.manifest
        if not isinstance(m, ProviderAccountBase):
            continue
        for i, integration in enumerate(m.integrations):
            owner = f"{m.name}/{integration.name}"
            for j, alias in enumerate(getattr(integration, "aliases", ())):
                where = f"integrations[{i}].aliases[{j}]"
                if alias in models:
                    out.append(
                        Problem(
                            entry.file,
                            entry.label,
                            where,
                            f"alias {alias!r} of {owner} is already the name of {models[alias]}",
                        )
                    )
                elif alias in seen:
                    out.append(
                        Problem(
                            entry.file,
                            entry.label,
                            where,
                            f"alias {alias!r} of {owner} is already an alias of {seen[alias]}",
                        )
                    )
                else:
                    seen[alias] = f"{owner} ({entry.label} in {entry.file})"
    return out
