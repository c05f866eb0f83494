"""Provider accounts whose integrations are models: the hosted vendors, Azure, self-hosted, mock.

One small class pair per kind (account + integration) so the integration `type` must match its account
(`integration/model/groq` only under `provider-account/groq`) and pydantic reports a mismatch at the
exact field. Only Azure, Bedrock, Vertex, self-hosted and mock add fields and are written out here;
every other kind in `providers.registry` gets a generated `CloudAccount` / `ModelIntegration` pair
(`KeylessCloudAccount` when its row needs no key), so a new vendor is its registry row alone.
"""

from __future__ import annotations

import datetime
from typing import Annotated, Any, ClassVar, Literal, Self, cast, get_args

from pydantic import BeforeValidator, Field, create_model, model_validator

from relaygate.config.problems import Loc, RuleViolation
from relaygate.config.schema_common import (
    AuthData,
    BaseUrl,
    Cost,
    Headers,
    IntegrationBase,
    ModelAliases,
    ModelIntegrationName,
    ModelTypes,
    ProviderAccountBase,
    auth_kind_violation,
    check_http_url,
)
from relaygate.providers.registry import PROVIDERS, ProviderSpec


class ModelIntegration(IntegrationBase):
    """A vendor model: `model_id` is what the vendor's API calls it; `aliases` are other names callers
    may send as `model` for it (e.g. the bare vendor id a tool hard-codes)."""

    name: ModelIntegrationName
    aliases: ModelAliases = ()
    model_id: str = Field(min_length=1)
    model_types: ModelTypes
    cost: Cost | None = None
    headers: Headers = Field(default_factory=dict)


class CloudAccount(ProviderAccountBase):
    """A hosted vendor reached with credentials; `base_url` overrides the vendor's default API base."""

    auth_data: AuthData
    base_url: BaseUrl | None = None
    allow_metadata_destinations: bool = False  # a base_url on a link-local/metadata address is refused unless set
    integrations: tuple[ModelIntegration, ...] = ()


class KeylessCloudAccount(ProviderAccountBase):
    """A vendor that can run without credentials (a local Ollama): `auth_data` is optional."""

    auth_data: AuthData | None = None
    base_url: BaseUrl | None = None
    allow_metadata_destinations: bool = False  # a base_url on a link-local/metadata address is refused unless set
    integrations: tuple[ModelIntegration, ...] = ()


# --- vendors with extra account fields ---------------------------------------------------------------


class AwsBedrockIntegration(ModelIntegration):
    type: Literal["integration/model/aws-bedrock"]


class AwsBedrockAccount(CloudAccount):
    """Bedrock signs with `aws` credentials or uses a Bedrock API key; the region is the account's `region`,
    else the one in `aws` credentials."""

    ALLOWED_AUTH: ClassVar[tuple[str, ...]] = ("aws", "api-key", "bearer-auth")

    type: Literal["provider-account/aws-bedrock"]
    region: str | None = Field(default=None, min_length=1)
    integrations: tuple[AwsBedrockIntegration, ...] = ()

    def account_violations(self) -> list[tuple[Loc, str]]:
        if self.region is None and self.auth_data.type != "aws":
            return [(("region",), "is required unless auth_data is type aws")]
        if self.region is None and getattr(self.auth_data, "region", None) is None:
            return [(("auth_data", "region"), "is required unless the account sets region")]
        return []


class GoogleVertexIntegration(ModelIntegration):
    type: Literal["integration/model/google-vertex"]


class GoogleVertexAccount(CloudAccount):
    """Vertex URLs need a project and region; the project defaults to the service-account key's."""

    ALLOWED_AUTH: ClassVar[tuple[str, ...]] = ("gcp-service-account", "bearer-auth")

    type: Literal["provider-account/google-vertex"]
    project_id: str | None = Field(default=None, min_length=1)
    region: str = Field(default="us-central1", min_length=1)
    integrations: tuple[GoogleVertexIntegration, ...] = ()

    def account_violations(self) -> list[tuple[Loc, str]]:
        if self.project_id is None and self.auth_data.type != "gcp-service-account":
            return [(("project_id",), "is required unless auth_data is type gcp-service-account")]
        return []


def _date_to_str(value: Any) -> Any:
    """`api_version: 2024-10-21` unquoted is a YAML date; it means the string."""
    return value.isoformat() if isinstance(value, datetime.date) else value


ApiVersion = Annotated[str, BeforeValidator(_date_to_str), Field(min_length=1)]
AZURE_API_VERSION = "2024-10-21"


class AzureOpenAIIntegration(ModelIntegration):
    """`model_id` is the Azure deployment name; `api_version` overrides the account's."""

    type: Literal["integration/model/azure-openai"]
    api_version: ApiVersion | None = None


class AzureOpenAIAccount(CloudAccount):
    """`base_url` is the resource endpoint, e.g. https://my-resource.openai.azure.com."""

    ALLOWED_AUTH: ClassVar[tuple[str, ...]] = ("api-key",)

    type: Literal["provider-account/azure-openai"]
    base_url: BaseUrl
    api_version: ApiVersion = AZURE_API_VERSION
    integrations: tuple[AzureOpenAIIntegration, ...] = ()


# --- self-hosted and mock ----------------------------------------------------------------------------

SELF_HOSTED_AUTH = ("api-key", "bearer-auth", "header")


class SelfHostedIntegration(IntegrationBase):
    """An OpenAI-compatible server: `hosted_model_name` is the model name it expects, at `url`."""

    type: Literal["integration/model/self-hosted-model"]
    name: ModelIntegrationName
    aliases: ModelAliases = ()
    hosted_model_name: str = Field(min_length=1)
    url: BaseUrl  # when omitted, the account's base_url is filled in before validation
    model_server: Literal["openai-compatible"] = "openai-compatible"
    model_types: ModelTypes
    cost: Cost | None = None
    headers: Headers = Field(default_factory=dict)
    auth_data: AuthData | None = None  # replaces the account's auth_data for this model
    allow_metadata_destinations: bool | None = None  # None: the account's setting

    @model_validator(mode="after")
    def _check_auth(self) -> Self:
        violations = auth_kind_violation(self.auth_data, SELF_HOSTED_AUTH, "a self-hosted model")
        if violations:
            raise RuleViolation(violations)
        return self


class SelfHostedAccount(ProviderAccountBase):
    """Models on servers we run (vLLM, TGI, ...); credentials are optional."""

    ALLOWED_AUTH: ClassVar[tuple[str, ...]] = SELF_HOSTED_AUTH

    type: Literal["provider-account/self-hosted-model"]
    auth_data: AuthData | None = None
    base_url: BaseUrl | None = None
    allow_metadata_destinations: bool = False  # a url on a link-local/metadata address is refused unless set
    integrations: tuple[SelfHostedIntegration, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _default_urls(cls, data: Any) -> Any:
        """Integrations without `url` use the account's `base_url`, so `integration.url` is always set."""
        if not isinstance(data, dict) or not isinstance(data.get("integrations"), list):
            return data
        try:
            check_http_url(data["base_url"])
        except (KeyError, TypeError, ValueError):
            return data  # no usable base_url: missing integration urls are reported as missing
        integrations = [
            {**item, "url": data["base_url"]} if isinstance(item, dict) and "url" not in item else item
            for item in data["integrations"]
        ]
        return {**data, "integrations": integrations}


class MockIntegration(ModelIntegration):
    """A built-in local model; `latency_ms` delays the answer and each stream chunk."""

    type: Literal["integration/model/mock"]
    latency_ms: int = Field(default=0, ge=0)


class MockAccount(ProviderAccountBase):
    """Relaygate's own fake provider, for tests, demos and benchmarks; never leaves the process."""

    ALLOWED_AUTH: ClassVar[tuple[str, ...]] = SELF_HOSTED_AUTH

    type: Literal["provider-account/mock"]
    auth_data: AuthData | None = None
    base_url: BaseUrl | None = None
    integrations: tuple[MockIntegration, ...] = ()


# --- generated from the registry -----------------------------------------------------------------------

_WRITTEN_OUT: tuple[type[ProviderAccountBase], ...] = (
    AzureOpenAIAccount,
    AwsBedrockAccount,
    GoogleVertexAccount,
    SelfHostedAccount,
    MockAccount,
)


def manifest_type(model: type[ProviderAccountBase]) -> str:
    """The `type` a manifest model accepts (its `Literal`)."""
    return str(get_args(model.model_fields["type"].annotation)[0])


def _vendor_account(spec: ProviderSpec) -> type[ProviderAccountBase]:
    """`provider-account/<kind>` and `integration/model/<kind>` for a vendor with no fields of its own."""
    stem = "".join(c for c in spec.title if c.isalnum())
    literal = cast(Any, Literal)  # the kind is data here, not a type checker's literal
    integration_type, account_type = f"integration/model/{spec.kind}", f"provider-account/{spec.kind}"
    integration = create_model(
        f"{stem}Integration",
        __base__=ModelIntegration,
        __module__=__name__,
        type=(literal[integration_type], ...),
    )
    return create_model(
        f"{stem}Account",
        __base__=CloudAccount if spec.key_required else KeylessCloudAccount,
        __module__=__name__,
        type=(literal[account_type], ...),
        integrations=(cast(Any, tuple)[integration, ...], ()),
    )


_WRITTEN_BY_TYPE = {manifest_type(model): model for model in _WRITTEN_OUT}
# Every registry kind, in registry order: the written-out class where there is one, else a generated pair.
MODEL_ACCOUNTS_BY_KIND: dict[str, type[ProviderAccountBase]] = {
    kind: _WRITTEN_BY_TYPE.get(f"provider-account/{kind}") or _vendor_account(spec) for kind, spec in PROVIDERS.items()
}
MODEL_ACCOUNTS: tuple[type[ProviderAccountBase], ...] = tuple(MODEL_ACCOUNTS_BY_KIND.values())
ModelAccount = (
    CloudAccount
    | KeylessCloudAccount
    | AzureOpenAIAccount
    | AwsBedrockAccount
    | GoogleVertexAccount
    | SelfHostedAccount
    | MockAccount
)
