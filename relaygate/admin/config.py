"""The served config, its history, and `diff` / `validate` / `apply` over HTTP.

- `GET /config`: the manifests the current snapshot was compiled from, as written (references
  unresolved), every credential masked by schema and by value (`config.masking`), with the source
  (files or the database), the revision and a version hash of what is shown.
- `GET /config/history`: applied revisions from the database config store (who, when, what), or,
  for file configs, how many reloads the watcher applied.
- `POST /config/diff` and `/config/validate`: the loader and compiler `relaygate diff` / `check` use,
  against the served config (database: the stored manifests, as the CLI does; files: the manifests
  served), with problems as `{path, message}` and every shown text masked.
- `POST /config/apply`: what `relaygate apply` does, only with `--admin-config-writes` on a
  database-held config; the history names the admin, and this replica reloads at once (the others
  within their watcher's poll).

Config bodies are `{"yaml": text}` or `{"manifests": [objects]}`, at most `--max-config-bytes`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from relaygate.admin.config_schemas import (
    APPLY_SCHEMA,
    CONFIG_BODY,
    CONFIG_SCHEMA,
    DIFF_SCHEMA,
    HISTORY_SCHEMA,
    VALIDATE_SCHEMA,
)
from relaygate.admin.operation import AdminRequest, Operation, param
from relaygate.admin.params import body_object
from relaygate.config.apply import ApplyPlan, commit, plan_changes
from relaygate.config.diff import manifest_yaml, render
from relaygate.config.loader import split_manifests
from relaygate.config.masking import Masker, snapshot_secrets
from relaygate.config.options import LoadOptions
from relaygate.config.problems import ConfigError
from relaygate.config.store import ConfigConflict, StoredConfig, StoredManifest
from relaygate.config.watch import ConfigWatcher, StoredConfigWatcher
from relaygate.errors import BadRequest, Conflict, Forbidden, PayloadTooLarge, ServiceUnavailable

if TYPE_CHECKING:
    from relaygate.gateway import Gateway

log = logging.getLogger("relaygate.admin")
REQUEST_SOURCE = "(request)"  # how problems name the submitted manifests
SERVED_SOURCE = "(served)"  # how problems name the file-held manifests a diff keeps
MAX_HISTORY = 500


def writes_disabled_reason(gateway: Gateway) -> str | None:
    """Why `POST /config/apply` is refused here, or None when it is allowed."""
    if gateway.config_store is None:
        return (
            "this gateway serves its config from files (--config): the files are the source of truth; edit them "
            "(they are reloaded), or serve without --config from the database and apply there"
        )
    if not gateway.settings.admin_config_writes:
        return (
            "config writes through the admin API are off; start the gateway with --admin-config-writes "
            "(RELAYGATE_ADMIN_CONFIG_WRITES=1) to allow admins to apply config"
        )
    return None


def _masker(gateway: Gateway, *extra: ApplyPlan | None) -> Masker:
    secrets = snapshot_secrets(gateway.snapshot)
    for plan in extra:
        if plan is not None:
            secrets |= snapshot_secrets(plan.snapshot)
    return Masker(secrets)


def _masked_manifests(gateway: Gateway, masker: Masker) -> list[dict[str, Any]]:
    return [masker.manifest(m.data) for m in gateway.snapshot.served.manifests]


async def get_config(request: AdminRequest) -> dict[str, Any]:
    gateway = request.call.gateway
    masker = _masker(gateway)
    manifests = _masked_manifests(gateway, masker)
    version = hashlib.sha256(orjson.dumps(manifests, option=orjson.OPT_SORT_KEYS)).hexdigest()
    watcher = gateway.watcher
    reason = writes_disabled_reason(gateway)
    return {
        "source": "database" if gateway.config_store is not None else "files",
        "files": [] if gateway.config_store is not None else list(gateway.snapshot.served.sources),
        "revision": gateway.config_revision,
        "version": f"sha256:{version}",
        "manifests": manifests,
        "yaml": "".join(f"---\n{manifest_yaml(m)}" for m in manifests),
        "writes_enabled": reason is None,
        "writes_disabled_reason": reason,
        "reloads": watcher.reloads if isinstance(watcher, ConfigWatcher) else None,
        "warnings": [masker.text(w) for w in gateway.snapshot.warnings],
    }


async def config_history(request: AdminRequest) -> dict[str, Any]:
    gateway = request.call.gateway
    limit = request.query.integer("limit", default=100, low=1, high=MAX_HISTORY)
    assert limit is not None
    watcher = gateway.watcher
    store = gateway.config_store
    if store is None:
        return {
            "source": "files",
            "revision": gateway.config_revision,
            "reloads": watcher.reloads if watcher is not None else 0,
            "refusals": watcher.refusals if watcher is not None else 0,
            "data": [],
        }
    try:
        rows = await asyncio.to_thread(store.history, limit)
    except Exception as exc:
        raise _store_down(exc) from None
    return {
        "source": "database",
        "revision": gateway.config_revision,
        "reloads": watcher.reloads if watcher is not None else None,
        "refusals": watcher.refusals if watcher is not None else None,
        "data": [
            {"revision": r.revision, "applied_at": r.applied_at, "applied_by": r.applied_by, "summary": r.summary}
            for r in rows
        ],
    }


def _body_sources(request: AdminRequest) -> tuple[list[tuple[str, str]], bool]:
    """The submitted manifests as one `(text, name)` source, and `prune`; 400/413 on a bad body."""
    body = body_object(request.body)
    unknown = set(body) - {"yaml", "manifests", "prune"}
    if unknown:
        raise BadRequest(f"unknown field '{sorted(unknown)[0]}'", param=sorted(unknown)[0], code="invalid_body")
    prune = body.get("prune", False)
    if not isinstance(prune, bool):
        raise BadRequest("'prune' must be true or false", param="prune", code="invalid_parameter")
    text = body.get("yaml")
    manifests = body.get("manifests")
    if (text is None) == (manifests is None):
        raise BadRequest("send exactly one of 'yaml' (text) or 'manifests' (a list of objects)", code="invalid_body")
    if manifests is not None:
        if not isinstance(manifests, list) or not all(isinstance(m, dict) for m in manifests):
            raise BadRequest("'manifests' must be a list of objects", param="manifests", code="invalid_parameter")
        text = "".join(f"---\n{manifest_yaml(m)}" for m in manifests)
    if not isinstance(text, str):
        raise BadRequest("'yaml' must be a string", param="yaml", code="invalid_parameter")
    limit = request.call.gateway.settings.max_config_bytes
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limit:
        raise PayloadTooLarge(f"the config is {size} bytes, more than the limit of {limit} (--max-config-bytes)")
    return [(text, REQUEST_SOURCE)], prune


def _problems(error: ConfigError, masker: Masker) -> list[dict[str, Any]]:
    return [
        {
            "path": p.field,
            "message": masker.text(p.rule),
            "manifest": masker.text(p.manifest),
            "file": p.file,
            "line": p.line,
        }
        for p in error.problems
    ]


def _changes(plan: ApplyPlan) -> list[dict[str, Any]]:
    return [{"kind": c.kind, "type": c.identity[0], "name": c.identity[1]} for c in plan.changes]


def _served_as_stored(gateway: Gateway) -> StoredConfig:
    """The manifests served from files, as the database would hold them (to diff against)."""
    manifests = tuple(
        StoredManifest(m.type, m.name, manifest_yaml(dict(m.data))) for m in gateway.snapshot.served.manifests
    )
    return StoredConfig(gateway.config_revision, manifests)


def _store_down(exc: BaseException) -> ServiceUnavailable:
    """The config database could not be read or written (the message names no URL or credential)."""
    log.warning("admin config API: the config store failed: %s", type(exc).__name__)
    return ServiceUnavailable(
        f"the config store cannot be reached ({type(exc).__name__}); retry shortly", code="config_store_unavailable"
    )


def _plan(gateway: Gateway, sources: Sequence[tuple[str, str]], prune: bool) -> ApplyPlan:
    """Blocking (store read, compile): run through `asyncio.to_thread`. `ConfigError` when invalid."""
    address = LoadOptions.for_settings(gateway.settings).gateway
    store = gateway.config_store
    if store is not None:
        try:
            stored = store.load()
        except Exception as exc:
            raise _store_down(exc) from None
        return plan_changes(stored, sources, prune=prune, gateway=address)
    return plan_changes(_served_as_stored(gateway), sources, prune=prune, gateway=address, stored_source=SERVED_SOURCE)


async def _try_plan(request: AdminRequest) -> tuple[ApplyPlan | None, list[dict[str, Any]], Masker]:
    gateway = request.call.gateway
    sources, prune = _body_sources(request)
    try:
        plan = await asyncio.to_thread(_plan, gateway, sources, prune)
    except ConfigError as exc:
        masker = _masker(gateway)
        return None, _problems(exc, masker), masker
    return plan, [], _masker(gateway, plan)


async def config_diff(request: AdminRequest) -> dict[str, Any]:
    plan, problems, masker = await _try_plan(request)
    if plan is None:
        return {"diff": "", "changes": [], "valid": False, "problems": problems, "warnings": [], "summary": None}
    return {
        "diff": masker.text(render(plan.changes, show_diff=True)),
        "changes": _changes(plan),
        "valid": True,
        "problems": [],
        "warnings": [masker.text(w) for w in plan.snapshot.warnings],
        "summary": plan.snapshot.summary(),
    }


def _normalised(sources: Sequence[tuple[str, str]], masker: Masker) -> str | None:
    try:
        raw = [m for text, name in sources for m in split_manifests(text, name)]
    except ConfigError:
        return None
    return "".join(f"---\n{manifest_yaml(masker.manifest(m.data))}" for m in raw)


async def config_validate(request: AdminRequest) -> dict[str, Any]:
    sources, _ = _body_sources(request)
    plan, problems, masker = await _try_plan(request)
    return {
        "valid": plan is not None,
        "problems": problems,
        "yaml": _normalised(sources, masker),
        "warnings": [masker.text(w) for w in plan.snapshot.warnings] if plan is not None else [],
        "summary": plan.snapshot.summary() if plan is not None else None,
    }


async def config_apply(request: AdminRequest) -> dict[str, Any]:
    gateway = request.call.gateway
    reason = writes_disabled_reason(gateway)
    store = gateway.config_store
    if reason is not None or store is None:
        raise Forbidden(reason or "config writes are disabled", code="config_writes_disabled")
    sources, prune = _body_sources(request)
    try:
        plan = await asyncio.to_thread(_plan, gateway, sources, prune)
    except ConfigError as exc:
        masker = _masker(gateway)
        listed = "; ".join(f"{p.manifest}: {p.field or '-'}: {masker.text(p.rule)}" for p in exc.problems[:10])
        more = f" (and {len(exc.problems) - 10} more)" if len(exc.problems) > 10 else ""
        raise BadRequest(
            f"the config is invalid, nothing was applied: {listed}{more} (POST /config/validate lists every problem)",
            code="invalid_config",
        ) from None
    masker = _masker(gateway, plan)
    answer: dict[str, Any] = {
        "applied": False,
        "revision": plan.base_revision,
        "changes": _changes(plan),
        "diff": masker.text(render(plan.changes, show_diff=True)),
        "warnings": [masker.text(w) for w in plan.snapshot.warnings],
        "summary": plan.snapshot.summary(),
    }
    if plan.changed:
        try:
            answer["revision"] = await asyncio.to_thread(commit, store, plan, request.caller.subject)
        except ConfigConflict as exc:
            raise Conflict(str(exc), code="config_conflict") from None
        except Exception as exc:
            raise _store_down(exc) from None
        answer["applied"] = True
        if isinstance(gateway.watcher, StoredConfigWatcher):
            await gateway.watcher.poll()  # this replica serves it now; the others within a poll
    answer["served_revision"] = gateway.config_revision
    return answer


OPERATIONS = (
    Operation(
        "GET",
        "/config",
        get_config,
        "viewer",
        "The served config: its manifests as written with every credential masked, the source (files or "
        "database), revision, a version hash, and whether admins may apply config here",
        "config",
        response=CONFIG_SCHEMA,
    ),
    Operation(
        "GET",
        "/config/history",
        config_history,
        "viewer",
        "Applied config revisions (revision, time, who, what changed); for file configs the reload count",
        "config",
        parameters=(
            param("limit", "revisions listed, newest first", {"type": "integer", "minimum": 1, "maximum": 500}),
        ),
        response=HISTORY_SCHEMA,
    ),
    Operation(
        "POST",
        "/config/diff",
        config_diff,
        "viewer",
        "What applying these manifests would change against the served config: the diff `relaygate diff` "
        "prints (credentials masked), or the problems that make it invalid",
        "config",
        request=CONFIG_BODY,
        response=DIFF_SCHEMA,
        body_limit=0,
    ),
    Operation(
        "POST",
        "/config/validate",
        config_validate,
        "viewer",
        "Validate manifests with the loader and compiler `relaygate check` uses, together with the served "
        "config; the problems (path and message) and the manifests normalised as YAML (masked)",
        "config",
        request=CONFIG_BODY,
        response=VALIDATE_SCHEMA,
        body_limit=0,
    ),
    Operation(
        "POST",
        "/config/apply",
        config_apply,
        "admin",
        "Apply manifests as `relaygate apply` does (needs --admin-config-writes and a database-held config; "
        "403 config_writes_disabled otherwise); answers the new revision",
        "config",
        request=CONFIG_BODY,
        response=APPLY_SCHEMA,
        writes=True,
        body_limit=0,
    ),
)
