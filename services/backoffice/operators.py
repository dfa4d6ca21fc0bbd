"""Who calls the console (docs/architecture.md, "Fulfilment"): an operator, by the bearer key
`python -m services.tools.operators create` gave them, looked up by its HMAC under the pepper
on every request (a revoked key stops at once; operators are few). No tenant key is an
operator key. Wrong keys are throttled per source address (429 `too_many_failures`), as the
tenants' APIs throttle theirs (shared/http/failures.py)."""
from __future__ import annotations

from collections.abc import Callable

import asyncpg
from fastapi import Request

from shared.db.pool import is_transient
from shared.http import bearer
from shared.http.errors import ApiError
from shared.http.failures import BUSY, FailureThrottle
from shared.http.ratelimit import retry_after
from shared.tenancy.operators import Operator, operator_for_key


class OperatorAuth:
    def __init__(self, pool: Callable[[], asyncpg.Pool], pepper: bytes, failures: FailureThrottle):
        self._pool = pool
        self._pepper = pepper
        self._failures = failures

    async def __call__(self, request: Request) -> Operator:
        """FastAPI dependency: the operator calling; or 401, or 429 after too many wrong keys."""
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

