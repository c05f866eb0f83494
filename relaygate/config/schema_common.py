"""Building blocks shared by every manifest: strict base models, names, subjects, URLs, auth, cost.

Models forbid unknown fields so a typo is a reported problem, not a silently ignored setting, and are
frozen because a compiled config is shared read-only by every in-flight request. Credentials are
`SecretStr` so a manifest printed in a log, a diff or a traceback shows `**********`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Literal, Self
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, model_validator

from relaygate.config.problems import Loc, RuleViolation, format_path


class StrictModel(BaseModel):
    """Unknown fields are errors; instances are immutable; NaN/inf are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ManifestBase(StrictModel):
    """A top-level manifest: `(type, name)` is its identity across all files."""

    type: str
    name: str

    @property
    def identity(self) -> tuple[str, str]:
        return (self.type, self.name)


# --- names -------------------------------------------------------------------------------------------

ACCOUNT_NAME_RE = re.compile(r"^[a-z0-9-]{3,32}$")
INTEGRATION_NAME_RE = re.compile(r"^[A-Za-z_.-][A-Za-z0-9_.-]{1,61}$")
# Model integrations may also hold '/' between segments, so a vendor's own model path is a name:
# `together/meta-llama/Meta-Llama-3.1-70B` is account `together`, integration `meta-llama/Meta-Llama-3.1-70B`
# (a model name splits at its first '/'). Custom endpoints keep INTEGRATION_NAME_RE: their name is one
# URL segment of /proxy-api/{account}/{endpoint}/...
MODEL_NAME_RE = re.compile(r"^(?=.{2,62}$)[A-Za-z_.-][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_.-]+)*$")
# What a caller may send as `model` to reach an integration by alias (bare vendor ids such as
# claude-sonnet-4-5-20250929, anthropic.claude-3-5-sonnet-20240620-v1:0 or openai/gpt-4o).
ALIAS_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@+/-]{0,127}$")
# Teams, virtual accounts, limit configs: docs/SCHEMAS.md leaves these open; kept URL- and subject-safe.
RESOURCE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
EMAIL_RE = re.compile(r"^[^@\s:]+@[^@\s]+$")


def _account_name(value: str) -> str:
    if not ACCOUNT_NAME_RE.match(value):
        raise ValueError("must be 3-32 lowercase letters, digits or hyphens (^[a-z0-9-]{3,32}$)")
    return value


def _integration_name(value: str) -> str:
    if not INTEGRATION_NAME_RE.match(value):
        raise ValueError(
            "must be 2-62 letters, digits, '_', '.' or '-', not starting with a digit "
            "(^[A-Za-z_.-][A-Za-z0-9_.-]{1,61}$)"
        )
    return value


def _model_name(value: str) -> str:
    if not MODEL_NAME_RE.match(value) or ("/" in value and any(p in (".", "..") for p in value.split("/"))):
        raise ValueError(
            "must be 2-62 letters, digits, '_', '.' or '-', not starting with a digit; '/' may separate "
            "segments (e.g. meta-llama/Meta-Llama-3.1-70B), none of them empty, '.' or '..'"
        )
    return value


def _alias(value: str) -> str:
    if not ALIAS_RE.match(value):
        raise ValueError(
            "must be 1-128 letters, digits, '_', '.', ':', '@', '+', '/' or '-', starting with a letter or digit"
        )
    return value


def _resource_name(value: str) -> str:
    if not RESOURCE_NAME_RE.match(value):
        raise ValueError("must be 1-63 letters, digits, '_', '.' or '-', starting with a letter or digit")
    return value


def _email(value: str) -> str:
    if not EMAIL_RE.match(value):
        raise ValueError("must be an email address")
    return value.lower()


AccountName = Annotated[str, AfterValidator(_account_name)]
IntegrationName = Annotated[str, AfterValidator(_integration_name)]
ModelIntegrationName = Annotated[str, AfterValidator(_model_name)]
ResourceName = Annotated[str, AfterValidator(_resource_name)]
Email = Annotated[str, AfterValidator(_email)]


def model_ref(value: str, *, allow_wildcard: bool = False) -> str:
    """Check an `account/integration` reference (or `account/*`); returns it unchanged."""
    account, sep, integration = value.partition("/")  # a model name splits at its first '/'
    try:
        ok_integration = (allow_wildcard and integration == "*") or bool(_model_name(integration))
    except ValueError:
        ok_integration = False
    if not sep or not ACCOUNT_NAME_RE.match(account) or not ok_integration:
        form = "account/integration or account/*" if allow_wildcard else "account/integration"
        raise ValueError(f"must be {form} (e.g. openai-main/gpt-4o)")
    return value


ModelRef = Annotated[str, AfterValidator(model_ref)]
ModelPattern = Annotated[str, AfterValidator(lambda v: model_ref(v, allow_wildcard=True))]


# --- subjects ----------------------------------------------------------------------------------------


def normalise_subject(value: str) -> str:
    """`user:<email>` | `team:<name>` | `virtualaccount:<name>` (`virtual-account:` accepted, rewritten)."""
    kind, sep, rest = value.partition(":")
    if kind == "virtual-account":
        kind = "virtualaccount"
    if sep and kind == "user" and EMAIL_RE.match(rest):
        return f"user:{rest.lower()}"
    if sep and kind in ("team", "virtualaccount") and RESOURCE_NAME_RE.match(rest):
        return f"{kind}:{rest}"
    raise ValueError("must be user:<email>, team:<name> or virtualaccount:<name>")


Subject = Annotated[str, AfterValidator(normalise_subject)]


class Collaborator(StrictModel):
    """Who may use (access) or administer (manager) a provider account."""

    subject: Subject
    role_id: Literal["provider-account-access", "provider-account-manager"]


# --- URLs, headers, status codes ---------------------------------------------------------------------


def check_http_url(value: str, *, trailing_slash: Literal["strip", "refuse"] = "strip") -> str:
    """An absolute http(s) URL without credentials, query or fragment; used as a prefix for paths."""
    if any(c.isspace() for c in value):
        raise ValueError("must be an http(s) URL without spaces")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ValueError("must be a valid http(s) URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not contain credentials; put them in auth_data")
    if parts.query or parts.fragment or value.endswith(("?", "#")):
        raise ValueError("must not have a query string or fragment")
    if value.endswith("/"):
        if trailing_slash == "refuse":
            raise ValueError("must not end with a trailing slash")
        return value.rstrip("/")
    return value


BaseUrl = Annotated[str, AfterValidator(check_http_url)]

_TOKEN_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def _header_name(value: str) -> str:
    if not _TOKEN_RE.match(value):
        raise ValueError("header names must be HTTP tokens (letters, digits, '-', ...)")
    return value


def _header_value(value: str) -> str:
    if any(c in value for c in "\r\n\0"):
        raise ValueError("header values must not contain line breaks or NUL")
    return value


def _secret_header_value(value: SecretStr) -> SecretStr:
    _header_value(value.get_secret_value())
    return value


HeaderName = Annotated[str, AfterValidator(_header_name)]
HeaderValue = Annotated[str, AfterValidator(_header_value)]
SecretHeaderValue = Annotated[SecretStr, AfterValidator(_secret_header_value)]
Headers = dict[HeaderName, HeaderValue]


def _status_code(value: Any) -> Any:
    """Status codes are strings in manifests; YAML ints (429) are accepted and normalised."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str) and not re.fullmatch(r"[1-5][0-9][0-9]", value):
        raise ValueError("must be an HTTP status code between 100 and 599")
    return value


StatusCode = Annotated[str, BeforeValidator(_status_code)]
DEFAULT_FALLBACK_CODES = ("401", "403", "404", "408", "429", "500", "502", "503")


def no_duplicates(items: Sequence[Any], what: str, base: Loc = (), suffix: Loc = ()) -> list[tuple[Loc, str]]:
    """One violation per repeated item, at `base[i].suffix` of the repeat."""
    seen: dict[Any, int] = {}
    out: list[tuple[Loc, str]] = []
    for i, item in enumerate(items):
        if item in seen:
            first = format_path((*base, seen[item], *suffix))
            out.append(((*base, i, *suffix), f"duplicate {what} (same as {first})"))
        else:
            seen[item] = i
    return out


def _unique(values: tuple[Any, ...]) -> tuple[Any, ...]:
    violations = no_duplicates(values, "value")
    if violations:
        raise RuleViolation(violations)
    return values


StatusCodes = Annotated[tuple[StatusCode, ...], AfterValidator(_unique)]
# Other names callers may send as `model` for an integration; unique across the config (crosscheck).
ModelAliases = Annotated[tuple[Annotated[str, AfterValidator(_alias)], ...], AfterValidator(_unique)]


class IntegrationBase(StrictModel):
    """Anything listed under a provider account's `integrations`; called as `{account}/{name}`."""

    name: IntegrationName
    type: str


# --- model integrations ------------------------------------------------------------------------------

ModelType = Literal[
    "chat",
    "completion",
    "embedding",
    "rerank",
    "image",
    "audio_transcription",
    "audio_translation",
    "text_to_speech",
    "moderation",
    "responses",
]
ModelTypes = Annotated[tuple[ModelType, ...], Field(min_length=1), AfterValidator(_unique)]


class Cost(StrictModel):
    """USD per million tokens; overrides the bundled price table for this integration."""

    input_per_million_tokens: float = Field(ge=0)
    output_per_million_tokens: float = Field(ge=0)


# --- auth --------------------------------------------------------------------------------------------

NonEmptySecret = Annotated[SecretStr, Field(min_length=1)]


class ApiKeyAuth(StrictModel):
    type: Literal["api-key"]
    api_key: NonEmptySecret


class BearerAuth(StrictModel):
    type: Literal["bearer-auth"]
    bearer_token: NonEmptySecret


class HeaderAuth(StrictModel):
    """Credentials as literal headers (custom endpoints, Basic auth, vendor key headers)."""

    type: Literal["header"]
    headers: Annotated[dict[HeaderName, SecretHeaderValue], Field(min_length=1)]


class AwsAuth(StrictModel):
    type: Literal["aws"]
    access_key_id: str = Field(min_length=1)
    secret_access_key: NonEmptySecret
    region: str | None = Field(default=None, min_length=1)  # may be on the account instead (Bedrock)
    session_token: SecretStr | None = None


def _service_account_json(value: SecretStr) -> SecretStr:
    try:
        parsed = json.loads(value.get_secret_value())
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise ValueError("must be the JSON text of a service-account key file")
    return value


def _key_json_text(value: Any) -> Any:
    # The key file may be written inline as a YAML/JSON mapping as well as its JSON text.
    return json.dumps(value) if isinstance(value, dict) else value


class GcpServiceAccountAuth(StrictModel):
    type: Literal["gcp-service-account"]
    key_json: Annotated[SecretStr, BeforeValidator(_key_json_text), AfterValidator(_service_account_json)]


AuthData = Annotated[
    ApiKeyAuth | BearerAuth | HeaderAuth | AwsAuth | GcpServiceAccountAuth, Field(discriminator="type")
]


def auth_kind_violation(auth: Any, allowed: Sequence[str], owner: str) -> list[tuple[Loc, str]]:
    """A provider accepts only some auth kinds (Azure: api-key, custom endpoints: header)."""
    if auth is None or auth.type in allowed:
        return []
    kinds = ", ".join(allowed)
    return [(("auth_data", "type"), f"must be {'one of ' if len(allowed) > 1 else ''}{kinds} for {owner}")]


class ProviderAccountBase(ManifestBase):
    """Fields and checks every `provider-account/<kind>` shares; subclasses narrow `type`/`integrations`."""

    ALLOWED_AUTH: ClassVar[tuple[str, ...]] = ("api-key", "bearer-auth", "header")

    name: AccountName
    collaborators: tuple[Collaborator, ...] = ()
    integrations: tuple[IntegrationBase, ...] = ()

    @property
    def kind(self) -> str:
        """`openai` for `provider-account/openai`."""
        return self.type.removeprefix("provider-account/")

    @model_validator(mode="after")
    def _check_account(self) -> Self:
        names = [i.name for i in self.integrations]
        violations = no_duplicates(names, "integration name", ("integrations",), ("name",))
        subjects = [c.subject for c in self.collaborators]
        violations += no_duplicates(subjects, "subject", ("collaborators",), ("subject",))
        violations += auth_kind_violation(getattr(self, "auth_data", None), self.ALLOWED_AUTH, self.type)
        violations += self.account_violations()
        if violations:
            raise RuleViolation(violations)
        return self

    def account_violations(self) -> list[tuple[Loc, str]]:
        """Kind-specific cross-field rules; paths relative to the manifest."""
        return []


def secret_value(value: Any) -> str:
    """The plain text of a credential field (`SecretStr` or an already plain string), for compiling."""
    return value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)
