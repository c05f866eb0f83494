"""Read manifests from YAML files into validated `Manifests`, all or nothing.

Steps per file: check its size (before reading it, `sources.py`: `max_bytes`, 1 MiB by default, for a
file or a directory's files together), parse YAML (one manifest, `---`-separated manifests, or a list), resolve
secret references in string values, validate each manifest against its `type`; then across files:
unique identities and cross-manifest references. Every problem found on the way is collected and
raised together as one `ConfigError`, so nothing is applied from a config that is partly wrong.

Secret references (`${NAME}`, `${secrets.get('group','key')}`, `tfy-secret://tenant:group:key`;
`references.py`) are resolved after YAML parsing, inside string values only, so a secret's text can
never change the document's structure. Resolved values never appear in a problem. Credentials written as literals and
a config without manifests are warnings (`Manifests.warnings`).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from relaygate.config.credentials import LITERAL_RULE, literal_credentials
from relaygate.config.crosscheck import Located, crosscheck
from relaygate.config.crosscheck_guardrails import guardrail_warnings
from relaygate.config.crosscheck_mcp import mcp_warnings
from relaygate.config.options import DEFAULT_MAX_CONFIG_BYTES
from relaygate.config.problems import ConfigError, Loc, Problem, format_path, problems_from_validation
from relaygate.config.references import MAX_VALUES_PER_MANIFEST, Interpolation, TooLarge, secret_env_name
from relaygate.config.schema import (
    MANIFEST_MODELS,
    AdminConfig,
    AiGatewayDocument,
    AiGatewayPolicy,
    BudgetConfig,
    CacheConfig,
    GuardrailConfigGroup,
    GuardrailsConfig,
    Manifests,
    McpRemoteServer,
    McpVirtualServer,
    ObservabilityConfig,
    ProviderAccountBase,
    RateLimitConfig,
    Team,
    VirtualAccount,
)
from relaygate.config.sources import PathLike, read_sources, read_stdin

__all__ = [
    "ConfigError",
    "Manifests",
    "Problem",
    "RawManifest",
    "load_path",
    "load_sources",
    "load_text",
    "read_sources",
    "read_stdin",
    "secret_env_name",
    "split_manifests",
]

NO_MANIFESTS = "holds no manifests: the gateway has nothing to serve"


def load_path(
    path: PathLike | Sequence[PathLike],
    env: Mapping[str, str] | None = None,
    *,
    max_bytes: int = DEFAULT_MAX_CONFIG_BYTES,
) -> Manifests:
    """Load a manifest file, every `*.yaml`/`*.yml` in a directory, or several of either as one config.

    A config without any manifest loads (empty) with a warning."""
    sources, problems = read_sources(path, max_bytes)
    session = _Load(os.environ if env is None else env)
    session.problems += problems
    for text, filename in sources:
        session.add_file(text, filename, Path(filename).stem)
    if not session.documents and not session.problems:
        roots = [path] if isinstance(path, str | Path) else list(path)
        session.warnings.append(Problem(", ".join(str(r) for r in roots), "-", "-", NO_MANIFESTS))
    return session.finish()


def load_text(text: str, filename: str = "<string>", env: Mapping[str, str] | None = None) -> Manifests:
    """Load manifests from YAML text (tests, `apply -f -`); `filename` names it in problems."""
    session = _Load(os.environ if env is None else env)
    session.add_file(text, filename, Path(filename).stem)
    return session.finish()


def load_sources(sources: Sequence[tuple[str, str]], env: Mapping[str, str] | None = None) -> Manifests:
    """Load several YAML texts as one config, each `(text, name)` named in its problems (`apply`
    validates the stored manifests and a new file together)."""
    session = _Load(os.environ if env is None else env)
    for text, filename in sources:
        session.add_file(text, filename, Path(filename).stem)
    return session.finish()


@dataclass(frozen=True, slots=True)
class RawManifest:
    """One manifest as written, before secret references are resolved, for storing in the database."""

    type: str
    name: str
    data: dict[str, Any]

    @property
    def identity(self) -> tuple[str, str]:
        return (self.type, self.name)


AI_GATEWAY_TYPE = "ai-gateway"  # how an `on_http_request` document (which has no type) is stored


def split_manifests(text: str, filename: str) -> list[RawManifest]:
    """The manifests of a YAML text with their identities, references unresolved; ai-gateway
    documents, which have no name, are named `<file stem>#<n>` as the loader names them. Documents
    without an identity are skipped: validating the text (`load_sources`) reports them."""
    docs, problems, _ = _parse(text, filename)
    if problems:
        raise ConfigError(problems)
    stem = Path(filename).stem
    out = []
    for n, doc in enumerate(docs, start=1):
        data = doc.data
        if not isinstance(data, dict):
            continue
        kind, name = data.get("type"), data.get("name")
        if name is None and isinstance(kind, str):
            name = _default_name(kind)  # e.g. gateway-admin-config: stored under the name it loads with
        if kind is None and "on_http_request" in data:
            out.append(RawManifest(AI_GATEWAY_TYPE, f"{stem}#{n}", data))
        elif isinstance(kind, str) and isinstance(name, str):
            out.append(RawManifest(kind, name, data))
    return out


def _default_name(kind: str) -> str | None:
    """The name a manifest type gives a manifest written without one (None: the name is required)."""
    model = MANIFEST_MODELS.get(kind)
    default = model.model_fields["name"].default if model is not None and "name" in model.model_fields else None
    return default if isinstance(default, str) else None


# --- YAML --------------------------------------------------------------------------------------------


class _YamlLoader(yaml.SafeLoader):
    """SafeLoader that records duplicate mapping keys (YAML would silently keep only the last)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicate_keys: list[tuple[int, str]] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                if key_node.value in seen:
                    self.duplicate_keys.append((key_node.start_mark.line + 1, key_node.value))
                seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


@dataclass(slots=True)
class _Doc:
    line: int  # 1-based line the manifest starts at
    data: Any


def _parse(text: str, file: str) -> tuple[list[_Doc], list[Problem], list[tuple[int, str]]]:
    """Manifests in file order (a list document contributes each item), YAML problems, duplicate keys."""
    try:
        loader = _YamlLoader(text)  # checks every character first: control characters are refused here
    except yaml.reader.ReaderError as exc:
        position = exc.position if isinstance(exc.position, int) else 0
        line = text.count("\n", 0, position) + 1
        rule = "invalid YAML: special characters (control characters other than tab and line breaks) are not allowed"
        return [], [Problem(file, "-", f"line {line}", rule, line=line)], []
    docs: list[_Doc] = []
    problems: list[Problem] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:  # check_node() said a document follows; be safe anyway
                break
            data = loader.construct_document(node)
            if data is None:
                continue
            if isinstance(node, yaml.SequenceNode) and isinstance(data, list):
                docs.extend(_Doc(child.start_mark.line + 1, item) for child, item in zip(node.value, data, strict=True))
            else:
                docs.append(_Doc(node.start_mark.line + 1, data))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        reason = getattr(exc, "problem", None) or type(exc).__name__
        context = getattr(exc, "context", None)
        rule = f"invalid YAML: {reason}" + (f" ({context})" if context else "")
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "-"
        problems.append(Problem(file, "-", where, rule, line=mark.line + 1 if mark else None))
    finally:
        loader.dispose()
    return docs, problems, loader.duplicate_keys


# --- one load ----------------------------------------------------------------------------------------


def _label(raw: Any, n: int, stem: str) -> str:
    """How problems name a manifest: "provider-account/openai openai-main", or by position."""
    if isinstance(raw, dict):
        kind, name = raw.get("type"), raw.get("name")
        if isinstance(kind, str) and isinstance(name, str):
            return f"{kind} {name}"
        if kind is None and "on_http_request" in raw:
            return f"ai-gateway {stem}#{n}"
        if isinstance(kind, str):
            return f"{kind} (document #{n})"
    return f"document #{n}"


def _unknown_type(kind: Any) -> str:
    if not isinstance(kind, str):
        return "must be a string naming the manifest type"
    if kind == "ai-gateway":
        return "ai-gateway documents have no type: write on_http_request: [{type: ai-gateway, config: ...}]"
    close = difflib.get_close_matches(kind, list(MANIFEST_MODELS), n=1)
    if close:
        return f"is not a known manifest type (did you mean {close[0]}?)"
    return f"is not a known manifest type; must be one of {', '.join(MANIFEST_MODELS)}"


@dataclass(slots=True)
class _Load:
    """Accumulates manifests and problems over the files of one load."""

    env: Mapping[str, str]
    problems: list[Problem] = field(default_factory=list)
    entries: list[Located] = field(default_factory=list)
    broken: set[tuple[str, str]] = field(default_factory=set)
    secrets: set[str] = field(default_factory=set)
    sources: list[str] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    documents: int = 0  # manifests seen (valid or not)
    raw: list[tuple[str, str, str, dict[str, Any]]] = field(default_factory=list)

    def add_file(self, text: str, file: str, stem: str) -> None:
        self.sources.append(file)
        docs, yaml_problems, duplicates = _parse(text, file)
        labels: list[tuple[int, str]] = []
        self.documents += len(docs)
        for n, doc in enumerate(docs, start=1):
            label = _label(doc.data, n, stem)
            labels.append((doc.line, label))
            self._add_manifest(doc, n, file, stem, label)
        for line, key in duplicates:
            label = next((lb for start, lb in reversed(labels) if start <= line), "-")
            rule = f"duplicate key {key!r} (YAML would keep only the last one)"
            self.problems.append(Problem(file, label, f"line {line}", rule, line=line))
        self.problems += yaml_problems  # parsing stopped there: it follows everything read before it

    def _add_manifest(self, doc: _Doc, n: int, file: str, stem: str, label: str) -> None:
        def problem(loc: Loc | str, rule: str) -> None:
            where = loc if isinstance(loc, str) else format_path(loc)
            self.problems.append(Problem(file, label, where, rule, line=doc.line))

        raw = doc.data
        if not isinstance(raw, dict):
            problem("-", "must be a manifest (a mapping with type and name)")
            return
        interpolation = Interpolation(self.env)
        try:
            data = interpolation.walk(raw, ())
        except TooLarge:
            problem("-", f"has more than {MAX_VALUES_PER_MANIFEST} values (expanded YAML aliases?)")
            return
        # After the walk: it bounds the tree's size (an alias bomb never gets here).
        self.warnings += [
            Problem(file, label, format_path(loc), LITERAL_RULE, line=doc.line) for loc in literal_credentials(raw)
        ]
        self.secrets |= interpolation.resolved
        for loc, rule in interpolation.problems:
            problem(loc, rule)
        kind = data.get("type")
        if isinstance(kind, str) and isinstance(data.get("name"), str):
            identity = (kind, data["name"])
        else:
            identity = None
        model: type[Any] = AiGatewayDocument
        try:
            if kind is None and "on_http_request" in data:
                document = AiGatewayDocument.model_validate(data)
                manifest: Any = AiGatewayPolicy(name=f"{stem}#{n}", on_http_request=document.on_http_request)
            elif kind is None:
                problem("type", "is required")
                return
            elif not isinstance(kind, str) or kind not in MANIFEST_MODELS:
                problem("type", _unknown_type(kind))
                return
            else:
                model = MANIFEST_MODELS[kind]
                manifest = model.model_validate(data)
        except ValidationError as err:
            skipped = {format_path(loc) for loc, _ in interpolation.problems}
            for p in problems_from_validation(err, data, file=file, manifest=label, model=model):
                if p.field not in skipped:
                    problem(p.field, p.rule)
            if identity is not None:
                self.broken.add(identity)
            return
        if interpolation.problems:
            if identity is not None:
                self.broken.add(identity)
            return
        self.entries.append(Located(file, label, manifest))
        self.raw.append((file, manifest.type, manifest.name, raw))

    def finish(self) -> Manifests:
        """The manifests, or `ConfigError` with every problem of every file."""
        self.problems += self._duplicate_identities()
        self.problems += crosscheck(self.entries, self.broken)
        if self.problems:
            raise ConfigError(self._scrubbed(self.problems))
        manifests = [e.manifest for e in self.entries]
        return Manifests(
            provider_accounts=tuple(m for m in manifests if isinstance(m, ProviderAccountBase)),
            teams=tuple(m for m in manifests if isinstance(m, Team)),
            virtual_accounts=tuple(m for m in manifests if isinstance(m, VirtualAccount)),
            rate_limit_configs=tuple(m for m in manifests if isinstance(m, RateLimitConfig)),
            budget_configs=tuple(m for m in manifests if isinstance(m, BudgetConfig)),
            ai_gateway_policies=tuple(m for m in manifests if isinstance(m, AiGatewayPolicy)),
            observability_configs=tuple(m for m in manifests if isinstance(m, ObservabilityConfig)),
            admin_configs=tuple(m for m in manifests if isinstance(m, AdminConfig)),
            guardrail_groups=tuple(m for m in manifests if isinstance(m, GuardrailConfigGroup)),
            guardrails_configs=tuple(m for m in manifests if isinstance(m, GuardrailsConfig)),
            cache_configs=tuple(m for m in manifests if isinstance(m, CacheConfig)),
            mcp_servers=tuple(m for m in manifests if isinstance(m, McpRemoteServer)),
            virtual_mcp_servers=tuple(m for m in manifests if isinstance(m, McpVirtualServer)),
            sources=tuple(self.sources),
            origins={e.manifest.identity: e.file for e in self.entries},
            warnings=(*self.warnings, *guardrail_warnings(self.entries), *mcp_warnings(self.entries)),
            raw=tuple(self.raw),
            resolved=frozenset(self.secrets),
        )

    def _duplicate_identities(self) -> Iterator[Problem]:
        first: dict[tuple[str, str], Located] = {}
        for entry in self.entries:
            seen = first.setdefault(entry.manifest.identity, entry)
            if seen is not entry:
                yield Problem(
                    entry.file,
                    entry.label,
                    "name",
                    f"duplicate {entry.manifest.type} name (first defined in {seen.file})",
                )

    def _scrubbed(self, problems: list[Problem]) -> list[Problem]:
        """Belt and braces: no rule text carries a value read from the environment."""
        secrets = sorted((s for s in self.secrets if len(s) >= 4), key=len, reverse=True)
        out = []
        for p in problems:
            rule = p.rule
            for secret in secrets:
                rule = rule.replace(secret, "***")
            out.append(Problem(p.file, p.manifest, p.field, rule, p.line) if rule != p.rule else p)
        return out
