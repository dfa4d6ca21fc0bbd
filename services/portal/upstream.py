"""The public HTTP API as the portal reaches it: intake for writes, status for reads. The
portal's own pages call it with the signed-in tenant's key, exactly as a tenant's script would;
`/v1` on the portal's origin is forwarded to it unchanged (forward.py). Either way the portal
vouches for the client it acts for (shared/http/vouch.py), so that intake and status count its
wrong keys by its address, not by the portal's."""
from __future__ import annotations

import logging
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import httpx

from shared.http import vouch

log = logging.getLogger(__name__)
# The address of the client the portal is answering (set per request by bootstrap.py): every
# call to the API on its behalf names it.
CLIENT: ContextVar[str | None] = ContextVar("arcserve_portal_client", default=None)


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any  # the JSON the API answered, or None
    retry_after: str | None = None  # its Retry-After, passed on to the browser with a 429

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def code(self) -> str | None:
        return self.body.get("code") if isinstance(self.body, dict) else None


UNREACHABLE = Answer(503, {"code": "unavailable", "message": "the service is not reachable; retry later"})


class Upstream:
    def __init__(self, intake_url: str, status_url: str, timeout_s: float, forwarding_secret: bytes | None = None):
        self.intake_url = intake_url
        self.status_url = status_url
        self._forwarding_secret = forwarding_secret
        # Idle connections are dropped before the services' keep-alive timeout (5 s) could
        # close one under a request.
        self.client = httpx.AsyncClient(timeout=timeout_s, limits=httpx.Limits(keepalive_expiry=2.0))

    def base_for(self, method: str, path: str) -> str:
        """Where a public API call goes: submissions to intake, everything else to status."""
        return self.intake_url if method == "POST" and path.rstrip("/") == "/v1/applications" else self.status_url

    def vouching(self) -> dict[str, str]:
        """The header naming the client this request acts for, signed; none without the secret."""
        client = CLIENT.get()
        if self._forwarding_secret is None or client is None:
            return {}
        return {vouch.HEADER: vouch.sign(self._forwarding_secret, client, time.time())}

    async def get(self, api_key: str, path: str, params: dict[str, str] | None = None) -> Answer:
        return await self._call("GET", path, api_key, params=params)

    async def submit(self, api_key: str, body: dict[str, Any], idempotency_key: str | None) -> Answer:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return await self._call("POST", "/v1/applications", api_key, json=body, headers=headers)

    async def _call(self, method: str, path: str, api_key: str, **kwargs: Any) -> Answer:
        headers = {"Authorization": f"Bearer {api_key}", **kwargs.pop("headers", {}), **self.vouching()}
        try:
            response = await self.client.request(method, self.base_for(method, path) + path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            log.warning("%s %s: %s", method, path, type(exc).__name__)
            return UNREACHABLE
        try:
            body = response.json()
        except ValueError:
            body = None
        return Answer(response.status_code, body, response.headers.get("retry-after"))

    async def ready(self) -> bool:
        """Both services answer their readiness check."""
        for base in (self.intake_url, self.status_url):
            try:
                if (await self.client.get(f"{base}/readyz", timeout=2)).status_code != 200:
                    return False
            except httpx.HTTPError:
                return False
        return True

    async def close(self) -> None:
        await self.client.aclose()
