"""Rate-limit and budget rules compiled once per config load, and matched per request.

Compiling (`config/compile_limits.py`) turns the validated pydantic manifests into frozen slotted
`Rule`s, indexed by model name, so that matching a request is a dict lookup plus a few set tests per
candidate rule, and a config without rules costs one attribute read. Pydantic is never touched on
the hot path.

Matching (docs/SCHEMAS.md "Rate limits" / "Budgets"): `when.subjects` matches if any of the caller's
subjects (itself, its teams, `team:everyone`) is listed; `when.models` matches the model name the
caller asked for (`{account}/{integration}`, or `{account}/{endpoint-or-slug}` for custom-endpoint
traffic); `when.metadata` needs every key present with an equal value. Fields AND together; a
missing field matches everything. Every matching rule applies, rate limits first then budgets,
each in config order: that order decides which rule answers when several are exceeded.

Bucket keys (`rate_limit_applies_per` / `budget_applies_per`, up to two dimensions):
- `user`: the caller's subject (`user:<email>`; a virtual-account token is its own caller, so it
  gets its own bucket `virtualaccount:<name>` rather than sharing one with every other account).
- `virtualaccount`: `virtualaccount:<name>` for virtual-account tokens; personal tokens all share
  the "(none)" bucket.
- `model`: the requested model name.
- `metadata.<key>`: the request's value; a request without the key shares the "(none)" bucket of
  that rule (it is limited, not exempt: dropping a header must not lift a limit).
Each part is length-prefixed (`<len>=<value>`), "(none)" is written `-`, so no two different
requests can collide on a key whatever characters their metadata values contain.

MCP tool calls (`when.mcp_servers`, schema_governance's docstring): a rule listing `mcp_servers`
applies to MCP `tools/call` requests only, and one without applies to model calls only, so the model
index above holds no MCP rule and model calls cost what they did. MCP rules are indexed by server
name; `match_mcp` matches an entry `*`, the remote server's name, `server:tool` (the upstream tool
name), or the virtual server the call came through, then `when.subjects` and `when.metadata` as for
models. The `model` bucket dimension of an MCP call is `{server}/{tool}` (the log row's model name).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from relaygate.auth.access import Principal

Kind = Literal["rate_limit", "budget"]
Measure = Literal["requests", "tokens", "cost"]
OnBackendError = Literal["allow", "deny"]

NONE_PART = "-"  # the "(none)" bucket part: a request without the user/virtual account/metadata key
SLOTS = 60  # sliding windows are counted in SLOTS sub-windows (see backend.py for the accuracy bound)


@dataclass(frozen=True, slots=True)
class Rule:
    """One compiled rule: what it matches, what it counts, how much, over which window."""

    id: str
    kind: Kind
    unit: str  # as configured, e.g. "tokens_per_minute" or "cost_per_month"
    measure: Measure
    limit: float  # requests, tokens or USD
    period: str  # minute | hour | day (sliding) or day | week | month (calendar, UTC)
    audit: bool  # budget audit_mode: counted, never refuses
    applies_per: tuple[str, ...]
    subjects: frozenset[str] | None
    models: frozenset[str] | None
    metadata: tuple[tuple[str, str], ...]
    stem: str  # counter name without bucket: "rl:<id>:<unit>" or "bg:<id>:<unit>"
    window_ms: int  # sliding window length; 0 for calendar windows
    slot_ms: int  # sliding sub-window length; 0 for calendar windows
    on_backend_error: OnBackendError | None = None  # its manifest's setting; None: the process's
    config: str = ""  # the name of the manifest that holds it (the admin API lists rules by it)
    mcp_servers: frozenset[str] | None = None  # set: an MCP rule (`*`, `server`, `server:tool`)

    @property
    def sliding(self) -> bool:
        """Rate limits slide; budgets reset on calendar boundaries."""
        return self.window_ms > 0

    def matches(self, subjects: frozenset[str], metadata: Mapping[str, str]) -> bool:
        """`when.subjects` and `when.metadata` (the model was matched by the index)."""
        if self.subjects is not None and self.subjects.isdisjoint(subjects):
            return False
        for key, value in self.metadata:
            if metadata.get(key) != value:
                return False
        return True

    def matches_tool(self, server: str, tool: str, virtual: str | None) -> bool:
        """`when.mcp_servers` for a call of `tool` on remote `server` (through virtual server `virtual`)."""
        targets = self.mcp_servers
        if targets is None:
            return False
        return (
            "*" in targets
            or server in targets
            or f"{server}:{tool}" in targets
            or (virtual is not None and virtual in targets)
        )

    def bucket(self, principal: Principal, model: str, metadata: Mapping[str, str]) -> str:
        """The counter this request uses under this rule (see the module docstring)."""
        if not self.applies_per:
            return self.stem
        parts = [self.stem]
        for dimension in self.applies_per:
            if dimension == "user":
                value: str | None = principal.subject
            elif dimension == "model":
                value = model
            elif dimension == "virtualaccount":
                value = principal.subject if principal.is_virtual_account else None
            else:  # metadata.<key>, checked by the schema
                value = metadata.get(dimension[9:])
            parts.append(NONE_PART if value is None else f"{len(value)}={value}")
        return ":".join(parts)


@dataclass(frozen=True, slots=True)
class Hit:
    """A matched rule and the bucket this request counts against."""

    rule: Rule
    key: str


@dataclass(frozen=True, slots=True)
class Plan:
    """Every rule a request matched, in decision order; falsy when none did."""

    hits: tuple[Hit, ...] = ()
    needs_tokens: bool = False  # a tokens_per_* rule matched: estimate tokens before reserving
    needs_cost: bool = False  # a budget matched: estimate cost before reserving
    # While the backend is unreachable: "deny" if any matched rule's manifest says deny, else "allow"
    # if one says allow, else None (the backend's own setting).
    on_backend_error: OnBackendError | None = None

    def __bool__(self) -> bool:
        return bool(self.hits)

    @property
    def rate_limit_ids(self) -> tuple[str, ...]:
        """Rule ids of the rate limits applied (for `x-tfy-applied-configurations`)."""
        return tuple(h.rule.id for h in self.hits if h.rule.kind == "rate_limit")

    @property
    def budget_ids(self) -> tuple[str, ...]:
        """Rule ids of the enforced budgets."""
        return tuple(h.rule.id for h in self.hits if h.rule.kind == "budget" and not h.rule.audit)

    @property
    def audit_ids(self) -> tuple[str, ...]:
        """Rule ids of audit-mode budgets: recorded only, reported as "audit"."""
        return tuple(h.rule.id for h in self.hits if h.rule.audit)


EMPTY_PLAN = Plan()


class LimitRules:
    """All rules of one config snapshot, model rules indexed by model name and MCP rules by server
    name. Immutable after construction."""

    __slots__ = ("rules", "_by_model", "_by_account", "_any_model", "_mcp_rules", "_by_server", "_any_server")

    def __init__(self, rules: Iterable[Rule] = ()) -> None:
        self.rules: tuple[Rule, ...] = tuple(rules)
        model_rules = tuple(r for r in self.rules if r.mcp_servers is None)
        # Each listed model gets its own rules plus the model-agnostic ones, in decision order, so a
        # request looks up exactly one tuple; unlisted models fall back to their account's tuple
        # (rules listing `account/*`) or the model-agnostic one.
        self._any_model = tuple(r for r in model_rules if r.models is None)
        listed = {m for r in model_rules if r.models is not None for m in r.models}
        accounts = {m[:-2] for m in listed if m.endswith("/*")}
        self._by_model: dict[str, tuple[Rule, ...]] = {
            m: tuple(r for r in model_rules if _applies(r, m)) for m in listed if not m.endswith("/*")
        }
        self._by_account: dict[str, tuple[Rule, ...]] = {
            a: tuple(r for r in model_rules if r.models is None or f"{a}/*" in r.models) for a in accounts
        }
        # Each server an MCP rule names gets the rules naming it (bare or `server:tool`) plus the `*`
        # ones, in decision order; other servers get the `*` ones.
        self._mcp_rules = tuple(r for r in self.rules if r.mcp_servers is not None)
        self._any_server = tuple(r for r in self._mcp_rules if r.mcp_servers is not None and "*" in r.mcp_servers)
        servers = {t.partition(":")[0] for r in self._mcp_rules for t in r.mcp_servers or () if t != "*"}
        self._by_server: dict[str, tuple[Rule, ...]] = {
            s: tuple(r for r in self._mcp_rules if _names_server(r, s)) for s in servers
        }

    def __bool__(self) -> bool:
        return bool(self.rules)

    def match(self, principal: Principal, model: str, metadata: Mapping[str, str]) -> Plan:
        """The rules this request falls under and its bucket in each; EMPTY_PLAN when none."""
        candidates = self._by_model.get(model)
        if candidates is None:
            candidates = (
                self._by_account.get(model.partition("/")[0], self._any_model) if self._by_account else self._any_model
            )
        if not candidates:
            return EMPTY_PLAN
        return _plan(candidates, principal, model, metadata)

    def match_mcp(
        self,
        server: str,
        tool: str,
        principal: Principal,
        metadata: Mapping[str, str],
        *,
        virtual: str | None = None,
    ) -> Plan:
        """The rules an MCP `tools/call` of `tool` (the upstream name) on remote `server`, reached through
        virtual server `virtual` if any, falls under; the same `Plan` a model call gets (EMPTY_PLAN: none)."""
        if not self._mcp_rules:
            return EMPTY_PLAN
        candidates = self._by_server.get(server, self._any_server)
        if virtual is not None and virtual in self._by_server:
            named = {id(r) for r in candidates} | {id(r) for r in self._by_server[virtual]}
            candidates = tuple(r for r in self._mcp_rules if id(r) in named)  # decision order kept
        matching = tuple(r for r in candidates if r.matches_tool(server, tool, virtual))
        if not matching:
            return EMPTY_PLAN
        return _plan(matching, principal, f"{server}/{tool}", metadata)


def _plan(candidates: tuple[Rule, ...], principal: Principal, model: str, metadata: Mapping[str, str]) -> Plan:
    """The hits among `candidates` (already matched on model or server) by subjects and metadata."""
    subjects = principal.subjects
    hits: list[Hit] = []
    tokens = cost = False
    on_error: OnBackendError | None = None
    for rule in candidates:
        if rule.matches(subjects, metadata):
            hits.append(Hit(rule, rule.bucket(principal, model, metadata)))
            tokens = tokens or rule.measure == "tokens"
            cost = cost or rule.measure == "cost"
            if rule.on_backend_error is not None and on_error != "deny":
                on_error = rule.on_backend_error
    if not hits:
        return EMPTY_PLAN
    return Plan(tuple(hits), tokens, cost, on_error)


def bucket_parts(rule: Rule, key: str) -> dict[str, str | None]:
    """A bucket key of `rule` read back: `{dimension: value}` per `applies_per` (None: the "(none)" bucket)."""
    rest = key[len(rule.stem) + 1 :] if key.startswith(rule.stem + ":") else ""
    out: dict[str, str | None] = {}
    for dimension in rule.applies_per:
        if rest.startswith(NONE_PART):
            out[dimension] = None
            rest = rest[len(NONE_PART) + 1 :]
            continue
        length, sep, tail = rest.partition("=")
        if not sep or not length.isdigit():
            break
        size = int(length)
        out[dimension] = tail[:size]
        rest = tail[size + 1 :]
    return out


def _names_server(rule: Rule, server: str) -> bool:
    """An MCP rule is a candidate for a server it names (bare or `server:tool`) or names with `*`."""
    targets = rule.mcp_servers or frozenset()
    return "*" in targets or any(t == server or t.startswith(f"{server}:") for t in targets)


def _applies(rule: Rule, model: str) -> bool:
    """A rule covers a model when it lists no models, lists the model, or lists `account/*` for it."""
    models = rule.models
    return models is None or model in models or f"{model.partition('/')[0]}/*" in models


NO_RULES = LimitRules()
