"""Dispatch under `/api/admin/v1`: find the operation, resolve the caller, check the role and the
CSRF header, parse the query and body, run the handler and send its JSON.

Admin calls are not API traffic: they write no request-log rows and no request metrics.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from relaygate.admin.identity import resolve_identity
from relaygate.admin.operation import AdminRequest, Operation, Reply
from relaygate.admin.params import Query, parse_query
from relaygate.admin.session import CSRF_HEADER, SessionSigner
from relaygate.errors import BadRequest, Forbidden, MethodNotAllowed, NotFound
from relaygate.http.body import read_body
from relaygate.http.responses import send_bytes

if TYPE_CHECKING:
    from collections.abc import Iterable

    from relaygate.admin.identity import Identity
    from relaygate.pipeline.call import Call

PREFIX = "/api/admin/v1"
_RANK = {"user": 1, "viewer": 2, "admin": 3}
_NO_STORE = (b"cache-control", b"no-store")


class AdminRouter:
    """(method, path) -> `Operation`, built once per app."""

    def __init__(self, operations: Iterable[Operation], signer: SessionSigner) -> None:
        self.operations = tuple(operations)
        self.signer = signer
        self._by_path: dict[str, dict[str, Operation]] = {}
        for op in self.operations:
            methods = self._by_path.setdefault(op.path, {})
            assert op.method not in methods, f"two operations for {op.method} {op.path}"
            methods[op.method] = op

    async def serve(self, call: Call) -> None:
        path: str = call.scope["path"][len(PREFIX) :].rstrip("/") or "/"
        methods = self._by_path.get(path)
        if methods is None:
            raise NotFound(f"no such admin endpoint: {call.scope['path']}", code="unknown_url")
        method: str = call.scope["method"]
        op = methods.get("GET" if method == "HEAD" else method)
        if op is None:
            raise MethodNotAllowed(f"{PREFIX}{path} accepts {', '.join(sorted(methods))}")
        identity = None if op.access == "none" else await resolve_identity(call, self.signer)
        if identity is not None:
            _check_role(op, identity)
            if op.writes and identity.session_cookie is not None:
                given = call.header(CSRF_HEADER)
                if given is None or not self.signer.csrf_matches(identity.session_cookie, given.decode("latin-1")):
                    raise Forbidden(
                        "a dashboard session must send its CSRF token in x-relaygate-csrf on writes",
                        code="csrf_failed",
                    )
        body = None
        if method == "POST":
            # 0: a config body, bounded by --max-config-bytes (JSON escaping may double YAML text)
            limit = op.body_limit or 2 * call.gateway.settings.max_config_bytes + 4096
            raw = await read_body(call.scope, call.receive, limit)
            if raw:
                try:
                    body = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    raise BadRequest("the request body is not valid JSON", code="invalid_json") from None
        request = AdminRequest(
            call, identity, Query(parse_query(call.scope.get("query_string", b""))), body, self.signer
        )
        result = await op.handler(request)
        if result is None:
            return  # the handler answered itself (a stream or a file)
        reply = result if isinstance(result, Reply) else Reply(result)
        payload = orjson.dumps(reply.payload, option=orjson.OPT_NON_STR_KEYS)
        call.ctx.status = reply.status
        await send_bytes(  # HEAD: the server drops the body and keeps the length
            call.send, reply.status, payload, b"application/json", [_NO_STORE, *reply.headers, *call.base_headers]
        )


def _check_role(op: Operation, identity: Identity) -> None:
    if _RANK[identity.role] < _RANK[op.access]:
        raise Forbidden(
            f"{op.method} {PREFIX}{op.path} needs the {op.access} role (this token's subject is {identity.role}); "
            "roles come from the gateway-admin-config manifest",
            code="admin_forbidden",
        )
