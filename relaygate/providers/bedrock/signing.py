"""Bedrock credentials: SigV4 signing (service `bedrock`) with botocore, or a Bedrock API key (bearer).

The botocore objects are built once per account at config compile and live in the target's options;
signing per request is CPU only (an HMAC chain and a SHA-256 of the exact body bytes sent). botocore's
import costs ~80 ms, so it is imported here lazily, only when a Bedrock account with `aws` credentials
is compiled.
"""

from __future__ import annotations

from typing import Any

SERVICE = "bedrock"


class SigV4Signer:
    """Signs one request at a time for a region; holds botocore's SigV4Auth and request class."""

    __slots__ = ("region", "_auth", "_request_class")

    def __init__(self, access_key_id: str, secret_access_key: str, session_token: str | None, region: str) -> None:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        self.region = region
        self._auth = SigV4Auth(Credentials(access_key_id, secret_access_key, session_token), SERVICE, region)
        self._request_class = AWSRequest

    def sign(self, url: str, body: bytes, headers: dict[str, str]) -> dict[str, str]:
        """`headers` plus X-Amz-Date, Authorization (and X-Amz-Security-Token) for a POST of `body` to `url`.

        `url` must be exactly what goes on the wire: the host (and port) and the path as sent are signed.
        """
        request = self._request_class(method="POST", url=url, data=body, headers=headers)
        self._auth.add_auth(request)
        return dict(request.headers.items())

    def __repr__(self) -> str:  # never show credentials in logs or tracebacks
        return f"SigV4Signer(region={self.region!r})"


def _secret(value: Any) -> str:
    """The text of a credential field (`SecretStr` from the config, or plain text)."""
    return str(value.get_secret_value() if hasattr(value, "get_secret_value") else value)


def account_region(account: Any, auth: Any) -> str | None:
    """The Bedrock region: the account's `region`, else the one inside `aws` credentials."""
    region = getattr(account, "region", None) or getattr(auth, "region", None)
    return str(region) if region else None


def configure_auth(account: Any, auth: Any) -> tuple[dict[str, str], dict[str, Any]]:
    """(static auth headers, adapter options) for an aws-bedrock account; ValueError when unusable."""
    region = account_region(account, auth)
    if not region:
        raise ValueError("a Bedrock account needs a region (account `region` or auth_data.region)")
    kind = getattr(auth, "type", None)
    if kind == "aws":
        token = _secret(auth.session_token) if auth.session_token is not None else None
        signer = SigV4Signer(auth.access_key_id, _secret(auth.secret_access_key), token or None, region)
        return {}, {"region": region, "signer": signer}
    if kind == "api-key":
        return {"Authorization": f"Bearer {_secret(auth.api_key)}"}, {"region": region}
    if kind == "bearer-auth":
        return {"Authorization": f"Bearer {_secret(auth.bearer_token)}"}, {"region": region}
    raise ValueError(
        "Bedrock needs auth_data of type aws (SigV4 credentials) or api-key / bearer-auth (a Bedrock API key)"
    )
