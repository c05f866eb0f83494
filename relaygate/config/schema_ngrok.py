"""The ngrok `ai-gateway` dialect (spec/custom-providers-ngrok.txt), accepted beside our manifests.

A document `on_http_request: [{type: ai-gateway, config: {...}}]` has no `type`/`name`; the loader
names it `<file stem>#<n>` so it has an identity like every manifest. Durations ("30s", "2m") are
parsed to seconds here so nothing downstream parses strings. Whether an `http://` base URL is an
allowed internal host depends on a server setting, so that rule is applied when compiling.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BeforeValidator, Field, JsonValue, model_validator

from relaygate.config.problems import Loc, RuleViolation, format_path
from relaygate.config.schema_common import (
    BaseUrl,
    HeaderName,
    NonEmptySecret,
    SecretHeaderValue,
    StrictModel,
)

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: Any) -> Any:
    """Go-style duration ("30s", "2m", "1m30s", "500ms") to seconds; a bare number is seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        return value
    text = value.strip()
    parts = _DURATION_PART.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise ValueError('must be a duration such as "30s", "2m" or "1m30s"')
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)


Duration = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]

PROVIDER_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _provider_id(value: str) -> str:
    if not PROVIDER_ID_RE.match(value):
        raise ValueError("must be 1-64 letters, digits, '_', '.' or '-' (no ':' or '/'), starting alphanumeric")
    return value


def _model_id(value: str) -> str:
    if not value or any(c.isspace() for c in value):
        raise ValueError("must be a non-empty model id without spaces")
    return value


ProviderId = Annotated[str, AfterValidator(_provider_id)]
ModelId = Annotated[str, AfterValidator(_model_id)]


class ApiKey(StrictModel):
    """One key; a provider's keys are tried in order (next key on failure)."""

    value: NonEmptySecret


class NgrokModel(StrictModel):
    """A model a provider serves; `metadata` is visible to selection strategies as `m.metadata`."""

    id: ModelId
    id_aliases: tuple[ModelId, ...] = ()
    metadata: dict[str, JsonValue] = Field(default_factory=dict)


class NgrokProvider(StrictModel):
    """An upstream; `base_url` may be omitted for providers the gateway knows (e.g. openai)."""

    id: ProviderId
    id_aliases: tuple[ProviderId, ...] = ()
    base_url: BaseUrl | None = None
    api_keys: tuple[ApiKey, ...] = ()
    models: tuple[NgrokModel, ...] = ()
    metadata: dict[str, JsonValue] = Field(default_factory=dict)
    disabled: bool = False
    # Relaygate extension: a base_url on a link-local/metadata address is refused unless set.
    allow_metadata_destinations: bool = False

    @model_validator(mode="after")
    def _unique_models(self) -> Self:
        violations = _duplicate_ids(self.models, "models", "model id or alias")
        if violations:
            raise RuleViolation(violations)
        return self


def _duplicate_ids(items: tuple[Any, ...], base: str, what: str) -> list[tuple[Loc, str]]:
    """Ids and aliases share one namespace: a name may appear once among all of them."""
    first: dict[str, Loc] = {}
    out: list[tuple[Loc, str]] = []
    for i, item in enumerate(items):
        named: list[tuple[Loc, str]] = [((base, i, "id"), item.id)]
        named += [((base, i, "id_aliases", j), alias) for j, alias in enumerate(item.id_aliases)]
        for loc, name in named:
            if name in first:
                out.append((loc, f"duplicate {what} (same as {format_path(first[name])})"))
            else:
                first[name] = loc
    return out


class ModelSelection(StrictModel):
    """CEL expressions over `ai.models`, tried in order; the first non-empty result wins."""

    strategy: tuple[Annotated[str, Field(min_length=1)], ...] = ()


class AiGatewayConfig(StrictModel):
    """The `config` of one `ai-gateway` action."""

    providers: tuple[NgrokProvider, ...] = ()
    headers: dict[HeaderName, SecretHeaderValue] = Field(default_factory=dict)
    per_request_timeout: Duration = 30.0
    total_timeout: Duration = 300.0
    only_allow_configured_providers: bool = False
    only_allow_configured_models: bool = False
    model_selection: ModelSelection = ModelSelection()

    @model_validator(mode="after")
    def _unique_providers(self) -> Self:
        violations = _duplicate_ids(self.providers, "providers", "provider id or alias")
        if violations:
            raise RuleViolation(violations)
        return self


class AiGatewayAction(StrictModel):
    """One `on_http_request` entry; only `ai-gateway` actions are supported."""

    type: Literal["ai-gateway"]
    config: AiGatewayConfig = AiGatewayConfig()


class AiGatewayDocument(StrictModel):
    """The document as written (no `type`, no `name`)."""

    on_http_request: tuple[AiGatewayAction, ...] = Field(min_length=1)


class AiGatewayPolicy(AiGatewayDocument):
    """A loaded document with the identity the loader gave it: ("ai-gateway", "<file stem>#<n>")."""

    type: Literal["ai-gateway"] = "ai-gateway"
    name: str

    @property
    def identity(self) -> tuple[str, str]:
        return (self.type, self.name)

    @property
    def configs(self) -> tuple[AiGatewayConfig, ...]:
        return tuple(action.config for action in self.on_http_request)
