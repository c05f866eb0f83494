"""Vertex AI access tokens from a service-account key, cached per provider account (shared by its models).

`google.oauth2.service_account.Credentials` signs a JWT with the key and trades it at the key's
`token_uri` for an access token (scope cloud-platform). That exchange is blocking HTTP, so it runs in
a worker thread; one refresh at a time (an asyncio.Lock, checked again inside), and the token is
reused until shortly before it expires (5 minutes, or half its lifetime when that is shorter; an
answer without `expires_in` is taken to last Google's usual hour). A token Vertex refuses with a 401
is dropped (`invalidate`), so the adapter's single retry gets a fresh one, as google-auth's
`AuthorizedSession` does. Failures become 502s that name the model, never the key.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import time
from typing import Any

from relaygate.errors import BadGateway

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
REFRESH_MARGIN = 300.0
DEFAULT_LIFETIME = 3600.0  # what Google's token endpoint grants; assumed when expires_in is missing


class ServiceAccountTokens:
    """An access-token source for one account; lives in its targets' `Target.options`."""

    __slots__ = ("project_id", "_credentials", "_lock", "_token", "_refresh_at", "refreshes")

    def __init__(self, credentials: Any, project_id: str | None) -> None:
        self.project_id = project_id
        self._credentials = credentials
        self._lock = asyncio.Lock()
        self._token: str | None = None
        self._refresh_at = 0.0  # time.monotonic() after which the token is refreshed first
        self.refreshes = 0

    @classmethod
    def from_key_json(cls, key_json: str) -> ServiceAccountTokens:
        """Parse a service-account key file's JSON text (ValueError with a key-free message)."""
        try:
            info = json.loads(key_json)
        except ValueError:
            raise ValueError("key_json is not JSON") from None
        if not isinstance(info, dict) or info.get("type", "service_account") != "service_account":
            raise ValueError("key_json must be a service-account key (type service_account)")
        missing = [name for name in ("client_email", "private_key", "token_uri") if not info.get(name)]
        if missing:
            raise ValueError(f"key_json lacks {', '.join(missing)}")
        from google.oauth2 import service_account  # imported on first use: ~0.1 s, only Vertex needs it

        try:
            credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                info, scopes=[SCOPE]
            )
        except (ValueError, TypeError, IndexError) as exc:
            raise ValueError(f"key_json holds an unusable private key ({type(exc).__name__})") from None
        project = info.get("project_id")
        return cls(credentials, project if isinstance(project, str) and project else None)

    async def token(self, model: str) -> str:
        """A valid access token, refreshed first when it is missing or about to expire."""
        if self._token is not None and time.monotonic() < self._refresh_at:
            return self._token
        async with self._lock:
            if self._token is None or time.monotonic() >= self._refresh_at:
                await self._refresh(model)
        assert self._token is not None
        return self._token

    def invalidate(self, token: str) -> None:
        """Forget `token` (Google refused it) so the next `token()` call fetches a new one."""
        if self._token == token:
            self._token = None
            self._refresh_at = 0.0

    async def _refresh(self, model: str) -> None:
        import google.auth.exceptions
        import google.auth.transport.requests

        try:
            await asyncio.to_thread(self._credentials.refresh, google.auth.transport.requests.Request())
        except google.auth.exceptions.RefreshError as exc:
            detail = exc.args[0] if exc.args and isinstance(exc.args[0], str) else type(exc).__name__
            raise BadGateway(f"Google refused the service-account token for model {model}: {detail[:200]}")
        except google.auth.exceptions.TransportError as exc:
            raise BadGateway(f"could not reach Google's token endpoint for model {model} ({type(exc).__name__})")
        token = self._credentials.token
        if not isinstance(token, str) or not token:
            raise BadGateway(f"Google's token endpoint gave no access token for model {model}")
        self._token = token
        self.refreshes += 1
        self._refresh_at = time.monotonic() + _reuse_seconds(self._credentials.expiry)


def _reuse_seconds(expiry: object) -> float:
    """How long to reuse a token expiring at `expiry` (google-auth: naive UTC datetime; None when the
    token endpoint gave no expires_in)."""
    if expiry is None:
        lifetime = DEFAULT_LIFETIME
    elif not isinstance(expiry, datetime.datetime):
        return 0.0
    else:
        now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        lifetime = (expiry - now).total_seconds()
    if lifetime <= 0:
        return 0.0
    return lifetime - min(REFRESH_MARGIN, lifetime / 2)
