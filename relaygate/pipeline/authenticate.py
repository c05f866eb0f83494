"""The first step of every authenticated route: who is calling, and what they asked the log to keep."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from relaygate.http.headers import bearer_token, parse_logging_headers

if TYPE_CHECKING:
    from relaygate.auth.access import Principal
    from relaygate.pipeline.call import Call


async def authenticate(call: Call, token: str | None = None) -> Principal:
    """The caller's principal under the current config (401 for every kind of bad token); `token`
    overrides the bearer token (the Messages API also reads `x-api-key`)."""
    started = time.perf_counter()
    gateway, ctx = call.gateway, call.ctx
    if token is None:
        token = bearer_token(call.scope)
    if gateway.tracing is not None:  # the auth span shows store reads only
        ctx.auth_missed = gateway.authenticator.would_read_store(token)
    record = await gateway.authenticator.authenticate_token(token)
    principal = gateway.snapshot.principal(record)
    ctx.subject = principal.subject
    ctx.subjects = principal.subjects
    ctx.team = principal.team
    ctx.token_id = f"rg-{principal.token_id}"  # the public id `tokens list` shows, never the secret
    ctx.timings.auth = (time.perf_counter() - started) * 1000.0
    call.principal = principal
    return principal


def read_logging_headers(call: Call, bodies_allowed: bool | None = None) -> None:
    """`x-tfy-metadata` and `x-tfy-logging-config` into the context (400 when malformed); bodies are
    logged only where the route allows it (None: the gateway's `log_bodies` setting)."""
    allowed = call.gateway.settings.log_bodies if bodies_allowed is None else bodies_allowed
    call.ctx.metadata, call.ctx.log_bodies = parse_logging_headers(call.scope, allowed)
