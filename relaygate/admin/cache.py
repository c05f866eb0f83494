"""The response cache in the admin API: `DELETE /cache` drops entries (a namespace, one request's
entry, or all), `POST /cache/explain` says how a request would use the cache (cache_explain.py).

Entries live where the served config's backend keeps them: Redis (shared by every replica and worker,
so one call drops them everywhere) or this process's memory. With the memory backend and `--workers
> 1` each worker holds its own cache and a DELETE reaches only the worker that took it; the answer
says so rather than pretending the cache is empty.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from relaygate.admin.cache_explain import EXPLAIN_REQUEST, EXPLAIN_RESPONSE, explain
from relaygate.admin.operation import Operation, param
from relaygate.cache.errors import CacheBackendError
from relaygate.cache.invalidate import Purge, backend_of, purge
from relaygate.errors import BadRequest, ServiceUnavailable

if TYPE_CHECKING:
    from relaygate.admin.operation import AdminRequest
    from relaygate.gateway import Gateway

MAX_NAMESPACE = 128  # as x-tfy-cache-config.namespace

PER_WORKER_NOTE = (
    "the memory backend keeps one cache per worker process (--workers > 1): this call emptied only the "
    "worker that answered it; repeat it, restart the gateway, or use backend: redis for a shared cache"
)


def shared_by_workers(gateway: Gateway) -> bool:
    """Whether this process is one of several `--workers` (each worker's settings name the metrics
    directory they share; a single process has none)."""
    return gateway.settings.metrics_instance_dir is not None


def purge_request(request: AdminRequest) -> Purge:
    """`?namespace=N` (present but empty: the default namespace), `?request_id=ID`, or neither: all."""
    values = request.query.values
    namespace = values["namespace"][-1] if "namespace" in values else None
    if namespace is not None and len(namespace) > MAX_NAMESPACE:
        raise BadRequest(
            f"namespace is longer than {MAX_NAMESPACE} characters", param="namespace", code="invalid_parameter"
        )
    request_id = request.query.text("request_id")
    if "request_id" in values and request_id is None:
        raise BadRequest("request_id must not be empty", param="request_id", code="invalid_parameter")
    if namespace is not None and request_id is not None:
        raise BadRequest("give namespace or request_id, not both", param="request_id", code="invalid_parameter")
    return Purge(namespace, request_id)


async def delete_entries(request: AdminRequest) -> dict[str, Any]:
    """Drop the entries the query names from the live store; how many, and where they lived."""
    what = purge_request(request)
    gateway = request.call.gateway
    store = gateway.cache.store_for(gateway.snapshot.cache)
    try:
        deleted = await purge(store, what)
    except CacheBackendError:
        raise ServiceUnavailable("the cache's Redis could not be reached; nothing was deleted") from None
    backend = backend_of(store)
    per_worker = backend == "memory" and shared_by_workers(gateway)
    return {
        "deleted": deleted,
        "backend": backend,
        "scope": "worker" if per_worker else ("process" if backend == "memory" else "shared"),
        "note": PER_WORKER_NOTE if per_worker else None,
    }


DELETE_RESPONSE: dict[str, Any] = {
    "type": "object",
    "required": ["deleted", "backend", "scope", "note"],
    "properties": {
        "deleted": {"type": "integer", "minimum": 0, "description": "entries dropped (request-index keys not counted)"},
        "backend": {"type": "string", "enum": ["memory", "redis"]},
        "scope": {
            "type": "string",
            "enum": ["shared", "process", "worker"],
            "description": "shared: Redis, every replica; process: this gateway's memory; worker: one of "
            "several --workers, each with its own memory cache",
        },
        "note": {"type": ["string", "null"], "description": "set when the call did not reach every entry"},
    },
    "additionalProperties": False,
}

OPERATIONS = (
    Operation(
        "DELETE",
        "/cache",
        delete_entries,
        "admin",
        "Drop response-cache entries: one namespace, the entry one request produced, or every entry "
        "(memory: this process's; redis: every replica's)",
        "cache",
        parameters=(
            param(
                "namespace",
                "drop this namespace's entries (x-tfy-cache-config.namespace; present but empty: the default "
                "namespace)",
                {"type": "string", "maxLength": MAX_NAMESPACE},
            ),
            param("request_id", "drop the entry this request produced (its x-request-id)", {"type": "string"}),
        ),
        response=DELETE_RESPONSE,
        writes=True,
    ),
    Operation(
        "POST",
        "/cache/explain",
        explain,
        "viewer",
        "How a request would use the response cache: the rule, whether it is eligible, the scope, the key "
        "object and digest, the storage key and whether an entry exists now (runs the pipeline's own decision)",
        "cache",
        request=EXPLAIN_REQUEST,
        response=EXPLAIN_RESPONSE,
    ),
)
