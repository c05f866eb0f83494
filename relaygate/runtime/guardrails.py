"""What the guardrail manifests decide, compiled (docs/guardrails.md): integrations by reference, and
the rules that say which of them apply to a request.

Check objects are built by `relaygate.guardrails.compile` and held here as opaque values, so this
module (below the request path's feature layers) needs no import of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from relaygate.runtime.matching import RequestMatcher

Operation = Literal["validate", "mutate"]
Strategy = Literal["enforce", "enforce_but_ignore_on_error", "audit"]
StreamMode = Literal["buffer", "window", "post_hoc"]
Stage = Literal["input", "output", "mcp_pre", "mcp_post"]
DEFAULT_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class Guardrail:
    """One integration (`group/name`) ready to run."""

    ref: str
    type: str
    operation: Operation
    strategy: Strategy
    priority: int
    order: int  # declaration order across the config, the tie-break after priority
    timeout_s: float
    check: object  # the compiled check (relaygate.guardrails.compile)
    logging_only: bool = False
    headers: tuple[tuple[str, str], ...] = ()  # a webhook's auth_data, resolved

    @property
    def audit(self) -> bool:
        return self.strategy == "audit"


@dataclass(frozen=True, slots=True)
class GuardrailRule:
    id: str
    matcher: RequestMatcher
    input: tuple[str, ...]
    output: tuple[str, ...]
    mcp_pre: tuple[str, ...]
    mcp_post: tuple[str, ...]
    stream_mode: StreamMode
    window_chars: int
    overlap_chars: int
    scope: Literal["last_user", "user", "all"]
    include_system: bool
    include_tool_results: bool
    include_reasoning: bool


@dataclass(frozen=True, slots=True)
class Selection:
    """The guardrails one request runs: the matched rule(s) merged, references resolved."""

    rule_ids: tuple[str, ...]
    input: tuple[Guardrail, ...]
    output: tuple[Guardrail, ...]
    stream_mode: StreamMode
    window_chars: int
    overlap_chars: int
    scope: Literal["last_user", "user", "all"]
    include_system: bool
    include_tool_results: bool
    include_reasoning: bool

    def __bool__(self) -> bool:
        return bool(self.input or self.output)


@dataclass(frozen=True, slots=True)
class GuardrailPolicy:
    match: Literal["first", "all"] = "first"
    rules: tuple[GuardrailRule, ...] = ()
    guardrails: Mapping[str, Guardrail] = field(default_factory=dict)
    parallel_with_model: bool = False
    allow_request_guardrails: bool = False
    max_buffer_bytes: int = 8 * 1024 * 1024

    def __bool__(self) -> bool:
        return bool(self.rules) or (self.allow_request_guardrails and bool(self.guardrails))

    def select(
        self, model: str, subjects: frozenset[str], metadata: Mapping[str, str], extra: Mapping[str, tuple[str, ...]]
    ) -> Selection | None:
        """The guardrails of the rule(s) `model`, `subjects` and `metadata` match, plus those the request
        added (`extra`, by stage, already checked to be allowed); None when nothing applies."""
        matched: list[GuardrailRule] = []
        for rule in self.rules:
            if rule.matcher.matches(model, subjects, metadata):
                matched.append(rule)
                if self.match == "first":
                    break
        added_in, added_out = extra.get("llm_input_guardrails", ()), extra.get("llm_output_guardrails", ())
        if not matched and not added_in and not added_out:
            return None
        first = matched[0] if matched else None
        selection = Selection(
            rule_ids=tuple(r.id for r in matched),
            input=self._resolve([*(ref for r in matched for ref in r.input), *added_in]),
            output=self._resolve([*(ref for r in matched for ref in r.output), *added_out]),
            stream_mode=_strictest(r.stream_mode for r in matched) if matched else "buffer",
            window_chars=first.window_chars if first else 512,
            overlap_chars=max((r.overlap_chars for r in matched), default=256),
            scope=_widest(r.scope for r in matched) if matched else "user",
            include_system=any(r.include_system for r in matched),
            include_tool_results=any(r.include_tool_results for r in matched),
            include_reasoning=any(r.include_reasoning for r in matched) if matched else True,
        )
        return selection or None

    def _resolve(self, refs: list[str]) -> tuple[Guardrail, ...]:
        """Guardrails by reference, each once (the first mention keeps its place)."""
        seen: dict[str, Guardrail] = {}
        for ref in refs:
            if ref not in seen and ref in self.guardrails:
                seen[ref] = self.guardrails[ref]
        return tuple(seen.values())


def _strictest(modes: Iterable[StreamMode]) -> StreamMode:
    """Several matched rules: the safest stream mode any of them asks for (buffer > window > post_hoc)."""
    chosen: StreamMode = "post_hoc"
    for mode in modes:
        if mode == "buffer":
            return "buffer"
        if mode == "window":
            chosen = "window"
    return chosen


def _widest(scopes: Iterable[Literal["last_user", "user", "all"]]) -> Literal["last_user", "user", "all"]:
    """Several matched rules: the scope that checks the most text."""
    order = {"last_user": 0, "user": 1, "all": 2}
    return max(scopes, key=order.__getitem__)


NO_GUARDRAILS = GuardrailPolicy()
