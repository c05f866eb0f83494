"""Guardrail manifests, accepted as TrueFoundry writes them (docs/guardrails.md).

- `provider-account/guardrail-config-group`: named integrations (`group/integration` is a guardrail's
  reference), each a built-in check or a call-out (`webhook`, `llm_judge`) with its operation
  (`validate` | `mutate`), enforcing strategy, priority and timeout. A check's own `config` is compiled
  here, at load, so a bad pattern or schema is a problem `relaygate check` reports, not a request error.
- `gateway-guardrails-config`: rules saying which guardrails apply to which requests (`when` on
  target models, subjects and metadata), with `match: first | all` deciding whether the first matching
  rule or every matching rule applies.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr, model_validator

from relaygate.config.problems import RuleViolation
from relaygate.config.schema_common import ManifestBase, ResourceName, StrictModel, no_duplicates
from relaygate.config.schema_governance import RuleId

INTEGRATION_PREFIX = "integration/guardrail-config/"
BUILT_IN_TYPES = ("regex", "keywords", "pii", "secrets", "json_schema", "length", "required_metadata")
CALL_OUT_TYPES = ("webhook", "llm_judge")
GUARDRAIL_TYPES = BUILT_IN_TYPES + CALL_OUT_TYPES
# Checks that see text span by span, so they can run on a stream through a sliding window.
WINDOW_TYPES = ("regex", "keywords", "pii", "secrets")


def _guardrail_type(value: str) -> str:
    """`integration/guardrail-config/<type>` (TrueFoundry's spelling) or the bare type."""
    name = value.removeprefix(INTEGRATION_PREFIX)
    if name not in GUARDRAIL_TYPES:
        raise ValueError(f"unknown guardrail type {value!r}; built in: {', '.join(GUARDRAIL_TYPES)}")
    return name


GuardrailType = Annotated[str, AfterValidator(_guardrail_type)]
IntegrationName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")]


class GuardrailIntegration(StrictModel):
    """One guardrail: what it checks (`type`, `config`) and what a violation or an error does."""

    name: IntegrationName
    type: GuardrailType
    description: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    # Headers sent with a webhook call (secret values; `${VAR}` interpolated like every credential).
    auth_data: dict[str, SecretStr] | None = None
    operation: Literal["validate", "mutate"] = "validate"
    enforcing_strategy: Literal["enforce", "enforce_but_ignore_on_error", "audit"] = "enforce"
    priority: int = 0  # mutators run by priority (lower first), then in declaration order
    timeout_ms: int | None = Field(default=None, gt=0, le=120_000)
    logging_only: bool = False  # a mutate that masks only the stored copy (log row, spans)

    @model_validator(mode="after")
    def _compile_config(self) -> Self:
        from relaygate.guardrails.compile import compile_check  # the checks live outside config/

        try:
            compile_check(self.type, self.config)
        except ValueError as exc:
            raise RuleViolation([(("config",), str(exc))]) from None
        if self.logging_only and self.operation != "mutate":
            raise RuleViolation([(("logging_only",), "applies to operation: mutate only")])
        return self


def _unique_integrations(values: tuple[GuardrailIntegration, ...]) -> tuple[GuardrailIntegration, ...]:
    violations = no_duplicates([i.name for i in values], "integration name", (), ("name",))
    if violations:
        raise RuleViolation(violations)
    return values


class GuardrailConfigGroup(ManifestBase):
    """A named set of guardrail integrations; rules name one as `<group>/<integration>`."""

    type: Literal["provider-account/guardrail-config-group"]
    name: ResourceName
    integrations: Annotated[tuple[GuardrailIntegration, ...], AfterValidator(_unique_integrations)] = ()
    collaborators: list[dict[str, Any]] | None = None  # TrueFoundry's access list: accepted, not used


# --- rules -------------------------------------------------------------------------------------------


def _values_of(value: Any) -> Any:
    """`{values: [...], condition: in}` (TrueFoundry) or a plain list."""
    if isinstance(value, dict) and "values" in value:
        condition = value.get("condition", "in")
        if condition != "in":
            raise ValueError("condition must be 'in'")
        extra = set(value) - {"values", "condition"}
        if extra:
            raise ValueError(f"unknown field {sorted(extra)[0]!r}")
        return value["values"]
    return value


Patterns = Annotated[tuple[Annotated[str, Field(min_length=1)], ...], BeforeValidator(_values_of)]


class TargetConditions(StrictModel):
    model: Patterns | None = None  # model names, `*` globs allowed
    mcpServers: Patterns | None = None  # noqa: N815 (TrueFoundry's field name): `server` or `server:tool`


class TargetWhen(StrictModel):
    operator: Literal["or", "and"] = "or"
    conditions: TargetConditions = TargetConditions()


class SubjectConditions(StrictModel):
    in_: tuple[str, ...] | None = Field(default=None, alias="in")
    not_in: tuple[str, ...] | None = None


class SubjectWhen(StrictModel):
    operator: Literal["and", "or"] = "and"
    conditions: SubjectConditions = SubjectConditions()


def _subjects_shape(value: Any) -> Any:
    """A plain list of subjects means `{conditions: {in: [...]}}`."""
    if isinstance(value, list | tuple):
        return {"conditions": {"in": list(value)}}
    return value


class GuardrailWhen(StrictModel):
    """Which requests a rule matches; parts AND together and a missing part matches everything."""

    target: TargetWhen | None = None
    models: Patterns | None = None  # shorthand for target.conditions.model
    subjects: Annotated[SubjectWhen | None, BeforeValidator(_subjects_shape)] = None
    metadata: dict[str, str | tuple[str, ...]] | None = None


Reference = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}/[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")]


class GuardrailRule(StrictModel):
    id: RuleId
    when: GuardrailWhen = GuardrailWhen()
    llm_input_guardrails: tuple[Reference, ...] = ()
    llm_output_guardrails: tuple[Reference, ...] = ()
    mcp_tool_pre_invoke_guardrails: tuple[Reference, ...] = ()
    mcp_tool_post_invoke_guardrails: tuple[Reference, ...] = ()
    # How output guardrails see a stream: hold it whole (buffer), a sliding window, or after the fact.
    stream_mode: Literal["buffer", "window", "post_hoc"] = "buffer"
    window_chars: int = Field(default=512, ge=16, le=65_536)
    overlap_chars: int = Field(default=256, ge=0, le=65_536)
    # Which input text is checked: the last user message, every user message, or every message.
    scope: Literal["last_user", "user", "all"] = "user"
    include_system: bool = False
    include_tool_results: bool = False
    include_reasoning: bool = True  # output checks also read reasoning text


def _unique_rule_ids(values: tuple[GuardrailRule, ...]) -> tuple[GuardrailRule, ...]:
    violations = no_duplicates([r.id for r in values], "rule id", (), ("id",))
    if violations:
        raise RuleViolation(violations)
    return values


class GuardrailsConfig(ManifestBase):
    """At most one per config: which guardrails apply to which requests."""

    type: Literal["gateway-guardrails-config"]
    name: ResourceName = "guardrails"
    match: Literal["first", "all"] = "first"
    rules: Annotated[tuple[GuardrailRule, ...], AfterValidator(_unique_rule_ids)] = ()
    # Start the model call while input validators run (cancelled if one blocks).
    parallel_with_model: bool = False
    # A request may add guardrails (never remove them) with the `x-tfy-guardrails` header.
    allow_request_guardrails: bool = False
    # Bytes a buffered stream may hold before it is refused (it is checked whole, so it is kept whole).
    max_buffer_bytes: int = Field(default=8 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024)
