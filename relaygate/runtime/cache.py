"""What `gateway-cache-config` decides, compiled (docs/cache.md): the rules, the backend, the caps."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from relaygate.runtime.matching import RequestMatcher

CacheType = Literal["exact-match", "semantic"]
Scope = Literal["subject", "team", "virtual_account", "global"]
CLIENT_CONTROLS = frozenset(("ttl", "namespace", "force_refresh", "no_store", "max_age"))


@dataclass(frozen=True, slots=True)
class CacheRule:
    id: str
    matcher: RequestMatcher
    type: CacheType = "exact-match"
    ttl: int = 3600
    scope: Scope = "subject"
    opt_in: bool = False  # mode opt_in: the request must send x-tfy-cache-config
    client_controls: frozenset[str] = CLIENT_CONTROLS
    key_includes_user: bool = False
    cache_truncated: bool = False
    embedding_model: str | None = None
    similarity_threshold: float = 0.9
    max_messages: int = 4


# What a request that no rule matches gets when it opts in with the header alone (TrueFoundry's way).
HEADER_RULE = CacheRule(id="x-tfy-cache-config", matcher=RequestMatcher(), ttl=86400, opt_in=True)


@dataclass(frozen=True, slots=True)
class CachePolicy:
    backend: Literal["memory", "redis"] = "memory"
    max_entry_bytes: int = 1024 * 1024
    memory_max_bytes: int = 256 * 1024 * 1024
    rules: tuple[CacheRule, ...] = ()
    header_opt_in: bool = True
    header_rule: CacheRule = HEADER_RULE

    def rule_for(self, model: str, subjects: frozenset[str], metadata: Mapping[str, str]) -> CacheRule | None:
        """The first rule the request matches (None: only the header can turn the cache on)."""
        for rule in self.rules:
            if rule.matcher.matches(model, subjects, metadata):
                return rule
        return None


DEFAULT_CACHE = CachePolicy()
