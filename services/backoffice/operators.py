"""Who calls the console (docs/architecture.md, "Fulfilment"): an operator, by the bearer key
`python -m services.tools.operators create` gave them, looked up by its HMAC under the pepper
on every request (a revoked key stops at once; operators are few). No tenant key is an
operator key. Wrong keys are throttled per source address (429 `too_many_failures`), as the
tenants' APIs throttle theirs (shared/http/failures.py).

Behind an authenticating proxy, the console can take the operator from the proxy's user header
instead (`BACKOFFICE_TRUSTED_USER_HEADER`, off by default): the operator of that name, as the
proxy authenticated them. Only where nothing reaches the console but through that proxy, which
sets the header itself and drops any a client sent (docs/operations.md, "Fulfilment")."""
from __future__ import annotations

from collections.abc import Callable

import asyncpg
from fastapi import Request

from shared.db.pool import is_transient
from shared.http import bearer
from shared.http.errors import ApiError
from shared.http.failures import BUSY, FailureThrottle
from shared.http.ratelimit import retry_after
from shared.tenancy.operators import Operator, operator_for_key, operator_named


class OperatorAuth:
    def __init__(self, pool: Callable[[], asyncpg.Pool], pepper: bytes, failures: FailureThrottle,
                 trusted_user_header: str = ""):
        self._pool = pool
        self._pepper = pepper
        self._failures = failures
        self._trusted_user_header = trusted_user_header.lower()

    async def proxied(self, request: Request) -> Operator | None:
        """The operator the trusted proxy names, where one is configured and the request has
        the header; ApiError 401 when it names no one operator."""
        if not self._trusted_user_header or self._trusted_user_header not in request.headers:
            return None
        name = request.headers[self._trusted_user_header].strip()
        try:
            operator = await operator_named(self._pool(), name) if name else None
        except Exception as exc:
            if not is_transient(exc):
                raise
            raise ApiError(503, "unavailable", "the database is not reachable; retry later") from None
        if operator is None:
            raise ApiError(401, "unauthorized", "the authenticating proxy names no operator of the console")
        return operator

    async def __call__(self, request: Request) -> Operator:
        """FastAPI dependency: the operator calling; or 401, or 429 after too many wrong keys."""
        if (proxied := await self.proxied(request)) is not None:
            request.state.operator_id = proxied.operator_id
            return proxied
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not bearer.well_formed(key):
            raise ApiError(401, "unauthorized", "missing or malformed bearer operator key")
        operator = await self.operator(key, request.client.host if request.client else "-")
        request.state.operator_id = operator.operator_id
        return operator

    async def operator(self, key: str, address: str) -> Operator:
        """The operator of `key` (sent from `address`); ApiError 401, 429 or 503 otherwise."""
        if not bearer.well_formed(key):
            raise ApiError(401, "unauthorized", "not a valid operator key (or it was revoked)")
        source = [f"address {address}"]
        wait = self._failures.take(source)
        if wait > 0 or wait == BUSY:
            raise ApiError(429, "too_many_failures", "too many wrong operator keys from this address; retry later",
                           headers={"Retry-After": retry_after(max(wait, 1.0))})
        try:
            operator = await operator_for_key(self._pool(), self._pepper, key)
        except Exception as exc:
            self._failures.give_back(source)
            if not is_transient(exc):
                raise
            raise ApiError(503, "unavailable", "the database is not reachable; retry later") from None
        if operator is None:
            self._failures.failed(source)
            raise ApiError(401, "unauthorized", "not a valid operator key (or it was revoked)")
        self._failures.give_back(source)
        return operator

