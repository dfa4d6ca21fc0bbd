"""The per-tenant token bucket (shared/http/ratelimit.py), on a clock of the test's own."""
from __future__ import annotations

import pytest

from shared.http.ratelimit import RateLimiter, retry_after


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_passes_then_the_rate_holds_and_the_wait_is_said() -> None:
    clock = Clock()
    limiter = RateLimiter(per_second=50, burst=100, clock=clock)
    assert [limiter.take("acme") for _ in range(100)] == [0.0] * 100
    assert limiter.take("acme") == pytest.approx(1 / 50)  # the 101st: wait for one token
    clock.now += 0.1  # five tokens later
    assert [limiter.take("acme") == 0.0 for _ in range(6)] == [True] * 5 + [False]
    assert retry_after(limiter.take("acme")) == "1"  # never "0"


def test_one_tenant_spending_its_bucket_leaves_every_other_tenant_untouched() -> None:
    limiter = RateLimiter(per_second=1, burst=3, clock=Clock())
    for _ in range(10):
        limiter.take("noisy")
    assert limiter.take("noisy") > 0
    assert [limiter.take("quiet") for _ in range(3)] == [0.0] * 3


def test_an_idle_bucket_refills_to_its_burst_and_no_further() -> None:
    clock = Clock()
    limiter = RateLimiter(per_second=10, burst=5, clock=clock)
    for _ in range(5):
        limiter.take("acme")
    clock.now += 3600
    assert sum(limiter.take("acme") == 0.0 for _ in range(8)) == 5


def test_a_limit_without_rate_or_burst_is_refused() -> None:
    with pytest.raises(ValueError):
        RateLimiter(per_second=0, burst=10)
