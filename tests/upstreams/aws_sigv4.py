"""SigV4 verification as AWS does it: the signature recomputed with botocore from the request received.

`verify_sigv4` checks the `Authorization` header's form, the credential scope (a known access key, the
date, the region, the service, `aws4_request`), that `host` and `x-amz-date` are signed and fresh (five
minutes either way), then recomputes the signature over the method, raw path, signed headers and body
with the known secret. A failure raises `SignatureRejected` naming the AWS error type to answer with.

`expected_signature` is that recomputation on its own; `sdk_request_path` is the raw path botocore's own
bedrock-runtime client sends for a model id (captured before it leaves the process), so tests can check
that the gateway escapes and signs model ids exactly as the AWS SDKs do.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web


class SignatureRejected(Exception):
    """The request is not validly signed; `error_type` is the AWS error (its default message when None)."""

    def __init__(self, error_type: str, message: str | None = None) -> None:
        super().__init__(message or error_type)
        self.error_type = error_type
        self.message = message


def verify_sigv4(
    request: web.Request,
    body: bytes,
    secrets: dict[str, str],
    region: str,
    service: str = "bedrock",
    now: datetime | None = None,
) -> None:
    """Raise `SignatureRejected` unless the request carries a valid SigV4 signature for `service` in `region`."""
    auth = request.headers.get("Authorization", "")
    if not auth:
        raise SignatureRejected("MissingAuthenticationTokenException")
    algorithm, _, rest = auth.partition(" ")
    fields = dict(part.strip().partition("=")[::2] for part in rest.split(","))
    credential = fields.get("Credential", "").split("/")
    if algorithm != "AWS4-HMAC-SHA256" or len(credential) != 5 or not fields.get("Signature"):
        raise SignatureRejected(
            "InvalidSignatureException",
            "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters.",
        )
    access_key, day, scope_region, scope_service, terminal = credential
    secret = secrets.get(access_key)
    if secret is None:
        raise SignatureRejected("UnrecognizedClientException")
    if scope_region != region:
        raise SignatureRejected(
            "InvalidSignatureException", f"Credential should be scoped to a valid region, not '{scope_region}'."
        )
    if scope_service != service or terminal != "aws4_request":
        raise SignatureRejected(
            "InvalidSignatureException", f"Credential should be scoped to correct service: '{service}'."
        )
    amz_date = request.headers.get("X-Amz-Date", "")
    signed = fields.get("SignedHeaders", "").split(";")
    if "host" not in signed or "x-amz-date" not in signed or not amz_date.startswith(day):
        raise SignatureRejected("InvalidSignatureException", "The host and x-amz-date headers must be signed.")
    when = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    if abs(((now or datetime.now(UTC)) - when).total_seconds()) > 300:
        raise SignatureRejected(
            "InvalidSignatureException",
            f"Signature expired: {amz_date} is now earlier or later than 5 minutes from the current time.",
        )
    missing = [name for name in signed if name not in request.headers]
    if missing:
        raise SignatureRejected("InvalidSignatureException", f"Signed header {missing[0]} is missing.")
    expected = expected_signature(
        request.method,
        f"http://{request.headers['Host']}{request.raw_path}",
        body,
        {name: request.headers[name] for name in signed},
        secret,
        region,
        service,
    )
    if not hmac.compare_digest(expected, fields["Signature"]):
        raise SignatureRejected("InvalidSignatureException")


def expected_signature(
    method: str,
    url: str,
    body: bytes,
    signed_headers: Mapping[str, str],
    secret: str,
    region: str,
    service: str = "bedrock",
) -> str:
    """The SigV4 signature botocore computes for a request to `url` (as sent, escapes kept: the canonical
    path encodes it once more, as AWS does for every service but S3) with these signed headers."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    aws_request = AWSRequest(method=method, url=url, data=body, headers=dict(signed_headers))
    aws_request.context["timestamp"] = signed_headers.get("X-Amz-Date") or signed_headers["x-amz-date"]
    access_key = "unused"  # the access key is not part of the signature, only of the credential scope
    signer = SigV4Auth(Credentials(access_key, secret), service, region)
    return str(signer.signature(signer.string_to_sign(aws_request, signer.canonical_request(aws_request)), aws_request))


class _Captured(Exception):
    def __init__(self, request: Any) -> None:
        super().__init__("captured")
        self.request = request


def sdk_request_path(model_id: str, action: str = "converse", region: str = "us-west-2") -> str:
    """The raw path botocore's own bedrock-runtime client sends for `model_id` (nothing leaves the process)."""
    import botocore.session

    client = botocore.session.get_session().create_client(
        "bedrock-runtime",
        region_name=region,
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="AKIDSDKPATH",
        aws_secret_access_key="sdk-path-secret",
    )

    def capture(request: Any, **_: Any) -> None:
        raise _Captured(request)

    client.meta.events.register_first("before-send.bedrock-runtime.*", capture)
    messages = [{"role": "user", "content": [{"text": "x"}]}]
    try:
        if action == "converse":
            client.converse(modelId=model_id, messages=messages)
        elif action == "converse-stream":
            client.converse_stream(modelId=model_id, messages=messages)
        elif action == "count-tokens":
            client.count_tokens(modelId=model_id, input={"converse": {"messages": messages}})
        else:
            client.invoke_model(modelId=model_id, body=b"{}")
    except _Captured as captured:
        return str(urlsplit(captured.request.url).path)
    raise AssertionError("botocore sent no request")
