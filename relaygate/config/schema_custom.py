"""`provider-account/custom-endpoint`: arbitrary HTTP services behind `/proxy-api/{account}/...`.

Exactly the shape of spec/custom-endpoints.txt. Setting `routing_type` turns the account into a pool
called through its `slug`; the pool rules (slug, >= 2 endpoints, every weight summing to 100 or every
priority set) are checked here so a broken pool never reaches the router. Without `routing_type`,
`slug` and `loadbalancing_config` are accepted (shape-checked) and ignored.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BeforeValidator, Field

from relaygate.config.problems import Loc, RuleViolation
from relaygate.config.schema_common import (
    DEFAULT_FALLBACK_CODES,
    HeaderAuth,
    Headers,
    IntegrationBase,
    IntegrationName,
    ProviderAccountBase,
    StatusCodes,
    StrictModel,
    Subject,
    check_http_url,
)


def _pem(value: str | None) -> str | None:
    if value is not None and "-----BEGIN CERTIFICATE-----" not in value:
        raise ValueError("must be PEM text containing at least one -----BEGIN CERTIFICATE----- block")
    return value


class TlsSettings(StrictModel):
    """Upstream TLS verification: off for self-signed test servers, or a private CA bundle."""

    reject_unauthorized: bool = True
    ca_certificates: Annotated[str | None, AfterValidator(_pem)] = None


class LoadBalancingConfig(StrictModel):
    """This endpoint's place in the account's pool (weight mode or priority mode)."""

    weight: int | None = Field(default=None, ge=0, le=100)
    priority: int | None = Field(default=None, ge=0)
    fallback_status_codes: StatusCodes = DEFAULT_FALLBACK_CODES
    fallback_candidate: bool = True


EndpointUrl = Annotated[str, AfterValidator(lambda v: check_http_url(v, trailing_slash="refuse"))]


def _header_auth_only(value: Any) -> Any:
    """Custom endpoints take credentials as literal headers only; say so instead of three field errors."""
    if isinstance(value, dict) and "type" in value and value["type"] != "header":
        raise RuleViolation([(("type",), "must be header (custom endpoints take credentials as headers)")])
    return value


EndpointAuth = Annotated[HeaderAuth, BeforeValidator(_header_auth_only)]


class CustomEndpointIntegration(IntegrationBase):
    """One upstream HTTP service, called at `/proxy-api/{account}/{name}/{path}`."""

    type: Literal["integration/model/custom-endpoint"]
    base_url: EndpointUrl
    headers: Headers = Field(default_factory=dict)
    auth_data: EndpointAuth | None = None  # replaces the account's auth_data for this endpoint
    tls_settings: TlsSettings = TlsSettings()
    loadbalancing_config: LoadBalancingConfig | None = None
    authorized_subjects: tuple[Subject, ...] | None = None  # not consulted for the slug URL
    # Link-local / cloud-metadata destinations (169.254.0.0/16, fd00:ec2::254) are refused unless set.
    allow_metadata_destinations: bool | None = None  # None: the account's setting


class CustomEndpointAccount(ProviderAccountBase):
    """A set of endpoints, optionally pooled behind `slug` with weight or priority routing."""

    ALLOWED_AUTH: ClassVar[tuple[str, ...]] = ("header",)

    type: Literal["provider-account/custom-endpoint"]
    endpoint_type: Literal["azure-speech-service", "other"] | None = None  # recorded in log rows
    headers: Headers = Field(default_factory=dict)  # every endpoint's Custom Headers; an endpoint's own win
    routing_type: Literal["weight", "priority"] | None = None
    slug: IntegrationName | None = None
    auth_data: EndpointAuth | None = None
    allow_metadata_destinations: bool = False
    integrations: tuple[CustomEndpointIntegration, ...] = ()

    @property
    def pooled(self) -> bool:
        """True when the slug URL is live (routing_type set)."""
        return self.routing_type is not None

    def account_violations(self) -> list[tuple[Loc, str]]:
        if self.routing_type is None:
            return []
        mode = self.routing_type
        out: list[tuple[Loc, str]] = []
        if self.slug is None:
            out.append((("slug",), "is required when routing_type is set"))
        elif any(i.name == self.slug for i in self.integrations):
            out.append((("slug",), "must differ from every endpoint name (both are URL segment 2)"))
        if len(self.integrations) < 2:
            out.append((("integrations",), f"routing_type {mode} needs at least 2 endpoints"))
        for i, integration in enumerate(self.integrations):
            lb = integration.loadbalancing_config
            if lb is None:
                out.append((("integrations", i, "loadbalancing_config"), f"is required when routing_type is {mode}"))
            elif getattr(lb, mode) is None:
                loc: Loc = ("integrations", i, "loadbalancing_config", mode)
                out.append((loc, f"is required when routing_type is {mode}"))
        weights = [i.loadbalancing_config.weight if i.loadbalancing_config else None for i in self.integrations]
        if mode == "weight" and weights and None not in weights:
            total = sum(w or 0 for w in weights)
            if total != 100:
                out.append((("integrations",), f"weights must sum to 100 (they sum to {total})"))
        return out
