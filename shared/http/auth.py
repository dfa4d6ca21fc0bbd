"""Bearer API keys per tenant (docs/architecture.md, "Security"). Keys are looked up by their hash; a short
cache keeps the database off the hot path."""
from __future__ import annotations

import time
from collections.abc import Callable

import asyncpg
from fastapi import Request

from shared import tenancy
from shared.db.pool import is_transient
from shared.http.errors import ApiError

CACHE_TTL_S = 30.0
MAX_KEY_LENGTH = 256


class Authenticator:
    def __init__(self, pool: Callable[[], asyncpg.Pool]):
        self._pool = pool
        self._cache: dict[bytes, tuple[str | None, float]] = {}

    async def tenant_for(self, key: str) -> str | None:
        digest = tenancy.hash_api_key(key)
        hit = self._cache.get(digest)
        now = time.monotonic()
        if hit is not None and hit[1] > now:
            return hit[0]
        try:
            tenant = await tenancy.tenant_for_key(self._pool(), key)
        except Exception as exc:
            if not is_transient(exc):
                raise
            raise ApiError(503, "unavailable", "the database is not reachable; retry later") from None
        if len(self._cache) > 10_000:
            self._cache.clear()  # bounded: unknown keys must not grow it without limit
        self._cache[digest] = (tenant, now + CACHE_TTL_S)
        return tenant

    async def __call__(self, request: Request) -> str:
        """FastAPI dependency: the caller's tenant, or 401."""
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key or len(key) > MAX_KEY_LENGTH:
            raise ApiError(401, "unauthorized", "missing or malformed bearer API key")
        tenant = await self.tenant_for(key.strip())
        if tenant is None:
            raise ApiError(401, "unauthorized", "unknown API key")
        return tenant
