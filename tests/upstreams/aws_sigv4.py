"""SigV4 verification as AWS does it: the signature recomputed with botocore from the request received.

`verify_sigv4` checks the `Authorization` header's form, the credential scope (a known access key, the
date, the region, the service, `aws4_request`), that `host` and `x-amz-date` are signed and fresh (five
minutes either way), then recomputes the signature over the method, raw path, signed headers and body
with the known secret. A failure raises `SignatureRejected` naming the AWS error type to answer with.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime

from aiohttp import web


class SignatureRejected(Exception):
    """The request is not validly signed; `error_type` is the AWS error (its default message when None)."""

    def __init__(self, error_type: str, message: str | None = None) -> None:
        super().__init__(message or error_type)
        self.error_type = error_type
        self.message = message


def verify_sigv4(request: web.Request, body: bytes, secrets: dict[str, str], region: str,
                 service: str = "bedrock", now: datetime | None = None) -> None:
    """Raise `SignatureRejected` unless the request carries a valid SigV4 signature for `service` in `region`."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    auth = request.headers.get("Authorization", "")
    if not auth:
        raise SignatureRejected("MissingAuthenticationTokenException")
    algorithm, _, rest = auth.partition(" ")
    fields = dict(part.strip().partition("=")[::2] for part in rest.split(","))
    credential = fields.get("Credential", "").split("/")
    if algorithm != "AWS4-HMAC-SHA256" or len(credential) != 5 or not fields.get("Signature"):
        raise SignatureRejected("InvalidSignatureException", "Authorization header requires 'Credential', "
                                                             "'Signature' and 'SignedHeaders' parameters.")
    access_key, day, scope_region, scope_service, terminal = credential
    secret = secrets.get(access_key)
    if secret is None:
        raise SignatureRejected("UnrecognizedClientException")
    if scope_region != region:
        raise SignatureRejected("InvalidSignatureException",
                                f"Credential should be scoped to a valid region, not '{scope_region}'.")
    if scope_service != service or terminal != "aws4_request":
        raise SignatureRejected("InvalidSignatureException",
                                f"Credential should be scoped to correct service: '{service}'.")
    amz_date = request.headers.get("X-Amz-Date", "")
    signed = fields.get("SignedHeaders", "").split(";")
    if "host" not in signed or "x-amz-date" not in signed or not amz_date.startswith(day):
        raise SignatureRejected("InvalidSignatureException", "The host and x-amz-date headers must be signed.")
    when = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    if abs(((now or datetime.now(UTC)) - when).total_seconds()) > 300:
        raise SignatureRejected("InvalidSignatureException", f"Signature expired: {amz_date} is now earlier or "
                                                             "later than 5 minutes from the current time.")
    missing = [name for name in signed if name not in request.headers]
    if missing:
        raise SignatureRejected("InvalidSignatureException", f"Signed header {missing[0]} is missing.")
    aws_request = AWSRequest(method=request.method, url=f"http://{request.headers['Host']}{request.raw_path}",
                             data=body, headers={name: request.headers[name] for name in signed})
    aws_request.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(access_key, secret), service, region)
    expected = signer.signature(signer.string_to_sign(aws_request, signer.canonical_request(aws_request)),
                                aws_request)
    if not hmac.compare_digest(expected, fields["Signature"]):
        raise SignatureRejected("InvalidSignatureException")
