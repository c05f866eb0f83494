"""JSON Schemas (2020-12) of the config API's bodies and answers, for its OpenAPI document."""

from __future__ import annotations

from typing import Any

_PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["path", "message"],
    "properties": {
        "path": {"type": "string", "description": "field path inside the manifest, e.g. integrations[0].base_url"},
        "message": {"type": "string"},
        "manifest": {"type": "string", "description": "e.g. `provider-account/openai openai-main`"},
        "file": {"type": "string", "description": "(request), (served), (database) or a file name"},
        "line": {"type": ["integer", "null"]},
    },
    "additionalProperties": False,
}
_CHANGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["kind", "type", "name"],
    "properties": {
        "kind": {"type": "string", "enum": ["create", "update", "delete", "unchanged"]},
        "type": {"type": "string"},
        "name": {"type": "string"},
    },
    "additionalProperties": False,
}
CONFIG_BODY: dict[str, Any] = {
    "type": "object",
    "description": "Exactly one of `yaml` (manifests as YAML text, `---`-separated) or `manifests` (objects)",
    "properties": {
        "yaml": {"type": "string"},
        "manifests": {"type": "array", "items": {"type": "object"}},
        "prune": {"type": "boolean", "description": "also delete served manifests the body leaves out"},
    },
    "additionalProperties": False,
}
CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["source", "revision", "version", "manifests", "writes_enabled"],
    "properties": {
        "source": {"type": "string", "enum": ["files", "database"]},
        "files": {"type": "array", "items": {"type": "string"}},
        "revision": {"type": "integer"},
        "version": {"type": "string", "description": "sha256 of the masked manifests shown"},
        "manifests": {"type": "array", "items": {"type": "object"}},
        "yaml": {"type": "string", "description": "the masked manifests as one YAML text"},
        "writes_enabled": {"type": "boolean"},
        "writes_disabled_reason": {"type": ["string", "null"]},
        "reloads": {"type": ["integer", "null"]},
        "warnings": {"type": "array", "items": {"type": "string"}},
    },
    "additionalProperties": False,
}
HISTORY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["source", "revision", "data"],
    "properties": {
        "source": {"type": "string", "enum": ["files", "database"]},
        "revision": {"type": "integer"},
        "reloads": {"type": ["integer", "null"], "description": "file configs: reloads the watcher applied"},
        "refusals": {"type": ["integer", "null"], "description": "changes refused as invalid"},
        "data": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["revision", "applied_at", "applied_by", "summary"],
                "properties": {
                    "revision": {"type": "integer"},
                    "applied_at": {"type": "number"},
                    "applied_by": {"type": "string", "description": "`cli` or the admin subject"},
                    "summary": {"type": "string"},
                },
                "additionalProperties": False,
            },
        },
    },
    "additionalProperties": False,
}
DIFF_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["diff", "changes", "valid", "problems"],
    "properties": {
        "diff": {"type": "string", "description": "what `relaygate diff` prints, credentials masked"},
        "changes": {"type": "array", "items": _CHANGE_SCHEMA},
        "valid": {"type": "boolean"},
        "problems": {"type": "array", "items": _PROBLEM_SCHEMA},
        "warnings": {"type": "array", "items": {"type": "string"}},
        "summary": {"type": ["string", "null"]},
    },
    "additionalProperties": False,
}
VALIDATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["valid", "problems", "yaml"],
    "properties": {
        "valid": {"type": "boolean"},
        "problems": {"type": "array", "items": _PROBLEM_SCHEMA},
        "yaml": {"type": ["string", "null"], "description": "the submitted manifests normalised, masked"},
        "warnings": {"type": "array", "items": {"type": "string"}},
        "summary": {"type": ["string", "null"]},
    },
    "additionalProperties": False,
}
APPLY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["applied", "revision", "changes", "diff"],
    "properties": {
        "applied": {"type": "boolean"},
        "revision": {"type": "integer", "description": "the stored revision after the call"},
        "served_revision": {"type": "integer", "description": "the revision this replica serves now"},
        "changes": {"type": "array", "items": _CHANGE_SCHEMA},
        "diff": {"type": "string"},
        "warnings": {"type": "array", "items": {"type": "string"}},
        "summary": {"type": ["string", "null"]},
    },
    "additionalProperties": False,
}
