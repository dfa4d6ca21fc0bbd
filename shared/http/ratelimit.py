"""Per-tenant rate limit (docs/architecture.md, "Security"): a token bucket per tenant, on every
authenticated route; past it, 429 with `Retry-After`.

Per replica, on purpose: a limit shared across replicas needs a shared counter touched by
every request (a database write, or another store), which would make the limiter the
bottleneck it is there to prevent. With N replicas behind a balancer a tenant gets at most
N times the configured rate; configure `ARCSERVE_RATE_LIMIT_PER_S` as the whole budget
divided by the replicas. Other tenants are never touched by one tenant's bucket.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_TENANTS = 100_000  # buckets kept; a full bucket is forgotten first (it is as good as new)


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    def __init__(self, per_second: float, burst: int, clock: Callable[[], float] = time.monotonic):
        if per_second <= 0 or burst < 1:
            raise ValueError("a rate limit needs a rate above 0 and a burst of at least 1")
        self.per_second = per_second
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, tenant: str) -> float:
        """Take one request from the tenant's bucket: 0 if allowed, else the seconds until
        the next one would be."""
        now = self._clock()
        bucket = self._buckets.get(tenant)
        if bucket is None:
            if len(self._buckets) >= MAX_TENANTS:
                self._forget_full(now)
            bucket = self._buckets[tenant] = _Bucket(float(self.burst), now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * self.per_second)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.per_second

    def _forget_full(self, now: float) -> None:
        full = [t for t, b in self._buckets.items() if b.tokens + (now - b.at) * self.per_second >= self.burst]
        for tenant in full or list(self._buckets)[: len(self._buckets) // 2]:
            del self._buckets[tenant]


def limiter_for(per_second: float, burst: int) -> RateLimiter | None:
    """The configured limit (ARCSERVE_RATE_LIMIT_PER_S, ARCSERVE_RATE_LIMIT_BURST); None when
    the rate is 0 (off); exit naming the setting that cannot be."""
    if per_second == 0:
        return None
    try:
        return RateLimiter(per_second, burst)
    except ValueError:
        raise SystemExit("ARCSERVE_RATE_LIMIT_PER_S must be above 0 (or 0: no limit), and "
                         "ARCSERVE_RATE_LIMIT_BURST at least 1") from None


def retry_after(seconds: float) -> str:
    """`Retry-After` in whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))
