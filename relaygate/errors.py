"""The gateway's error tree, mapped to OpenAI-shaped JSON in one place.

    GatewayError (500, internal_error)
      BadRequest (400, invalid_request_error)
        UnsupportedModelType (400)
      Unauthorized (401, authentication_error)     -- one body for every bad token
      Forbidden (403, permission_denied)
      NotFound (404, not_found_error)
      RequestTimeout (408)                         -- no first token within x-tfy-ttft-timeout-ms
      PayloadTooLarge (413)
      RateLimited (429, rate_limit_exceeded)       -- carries retry-after
        BudgetExceeded (429, budget_exceeded)      -- a budget rule refused (docs/SCHEMAS.md "Budgets")
      UpstreamError (status of the upstream)       -- upstream body relayed, secrets scrubbed
      BadGateway (502)                             -- connect failures, broken upstream answers
      ServiceUnavailable (503)
      GatewayTimeout (504)
      LoopDetected (508)                           -- the request already passed this gateway (`Via`)

Messages never contain a secret: callers build them from names and ids only.

`DatabaseError` stands apart (not an HTTP answer): a token, config or log database that cannot be
reached or used, raised by `database.py`, the stores and the migrations.
"""

from __future__ import annotations

import orjson


class GatewayError(Exception):
    """Base of every error the gateway answers with itself."""

    status = 500
    type = "internal_error"
    code: str | None = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self) -> bytes:
        """The OpenAI error JSON for this error."""
        return orjson.dumps(
            {"error": {"message": self.message, "type": self.type, "code": self.code, "param": self.param}}
        )


class BadRequest(GatewayError):
    status = 400
    type = "invalid_request_error"
    code = "bad_request"


class UnsupportedModelType(BadRequest):
    code = "unsupported_model_type"


class Unauthorized(GatewayError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"

    def __init__(self) -> None:
        # Deliberately one message for missing, malformed, unknown, expired and revoked tokens.
        super().__init__(
            "Invalid or missing API key. Pass a Relaygate token as 'Authorization: Bearer <token>' "
            "or 'x-api-key: <token>'."
        )


class Forbidden(GatewayError):
    status = 403
    type = "permission_denied"
    code = "access_denied"


class NotFound(GatewayError):
    status = 404
    type = "not_found_error"
    code = "not_found"


class MethodNotAllowed(GatewayError):
    status = 405
    type = "invalid_request_error"
    code = "method_not_allowed"


class RequestTimeout(GatewayError):
    """No first streamed token within `x-tfy-ttft-timeout-ms` (always eligible for fallback)."""

    status = 408
    type = "request_timeout"
    code = "ttft_timeout"


class PayloadTooLarge(GatewayError):
    status = 413
    type = "invalid_request_error"
    code = "payload_too_large"


class Conflict(GatewayError):
    """The state changed under the request (another config apply committed first); retry."""

    status = 409
    type = "conflict"
    code = "conflict"


class RateLimited(GatewayError):
    status = 429
    type = "rate_limit_exceeded"
    code = "rate_limit_exceeded"


class BudgetExceeded(RateLimited):
    type = "budget_exceeded"
    code = "budget_exceeded"


class BadGateway(GatewayError):
    status = 502
    type = "upstream_error"
    code = "bad_gateway"


class ServiceUnavailable(GatewayError):
    status = 503
    type = "service_unavailable"
    code = "service_unavailable"


class GatewayTimeout(GatewayError):
    status = 504
    type = "upstream_timeout"
    code = "gateway_timeout"


class LoopDetected(GatewayError):
    """The request's `Via` chain names this gateway: a base URL leads back here (upstream/hops.py)."""

    status = 508
    type = "loop_detected"
    code = "loop_detected"


class UpstreamError(GatewayError):
    """An upstream answered with an error status: its status and (scrubbed) message go to the caller."""

    type = "upstream_error"
    code = "upstream_error"

    def __init__(self, status: int, raw_body: bytes, content_type: str = "application/json") -> None:
        self.status = status
        self.raw_body = raw_body
        self.content_type = content_type
        super().__init__(_message_of(raw_body, status))

    def body(self) -> bytes:
        """The upstream's own OpenAI-shaped body when it has one, else the message wrapped."""
        try:
            parsed = orjson.loads(self.raw_body)
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
            err = parsed["error"]
            err.setdefault("type", self.type)
            err.setdefault("code", None)
            err.setdefault("param", None)
            if "message" not in err:
                err["message"] = self.message
            return orjson.dumps({"error": err})
        return super().body()


def _message_of(raw: bytes, status: int) -> str:
    """Best human message found in an upstream error body."""
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        text = raw.decode("utf-8", "replace").strip()
        return text[:2000] or f"Upstream returned HTTP {status}"
    if isinstance(parsed, dict):
        err = parsed.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return str(err["message"])
        if isinstance(err, str):
            return err
        for key in ("message", "detail"):
            if isinstance(parsed.get(key), str):
                return str(parsed[key])
    return f"Upstream returned HTTP {status}"


def scrub(data: bytes, secrets: tuple[bytes, ...]) -> bytes:
    """Remove every known secret from bytes that will leave the gateway (error bodies, logs)."""
    for secret in secrets:
        if secret and secret in data:
            data = data.replace(secret, b"***")
    return data


class DatabaseError(RuntimeError):
    """A database cannot be reached or used. The message is safe to show: it never holds a password."""
