"""Each tenant's rate limit (docs/architecture.md, "Security"; shared/http/ratelimit.py): past its burst a
tenant gets 429 with `Retry-After` on every authenticated route, of intake and of the status
service alike, while other tenants are not slowed at all."""
from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx

from tests.support.stack import Stack, Tenant, eventually, new_application


async def _burst(stack: Stack, tenant: Tenant, count: int) -> list[httpx.Response]:
    return await asyncio.gather(*(stack.get(tenant, "/v1/contracts") for _ in range(count)))


async def test_a_tenant_past_its_burst_waits_and_others_do_not(new_stack: Callable[..., Any]) -> None:
    stack: Stack = await new_stack(rate_limit_per_s=2.0, rate_limit_burst=10)
    await stack.start("intake", "status")
    noisy, quiet = await stack.tenant(), await stack.tenant()

    answers, others = await asyncio.gather(_burst(stack, noisy, 60), _burst(stack, quiet, 10))
    codes = Counter(r.status_code for r in answers)
    assert 10 <= codes[200] <= 13 and codes[200] + codes[429] == 60, codes  # the burst, and what refilled meanwhile
    limited = next(r for r in answers if r.status_code == 429)
    assert limited.json()["code"] == "rate_limited" and "at most 2/s, bursts of 10" in limited.json()["message"]
    assert limited.headers["retry-after"] == "1"
    assert [r.status_code for r in others] == [200] * 10  # another tenant, at the same moment

    # Intake too (its own bucket per tenant): bodies it refuses anyway, so nothing is published.
    submitted = await asyncio.gather(*(stack.submit(noisy, {"kind": "new"}) for _ in range(30)))
    codes = Counter(r.status_code for r in submitted)
    assert codes[422] >= 10 and codes[429] >= 15, codes
    assert all(r.headers["retry-after"] == "1" for r in submitted if r.status_code == 429)
    assert (await stack.submit(quiet, new_application())).status_code == 202

    async def served_again() -> bool:
        return (await stack.get(noisy, "/v1/contracts")).status_code == 200

    await eventually(served_again, "the noisy tenant to be served once its bucket refilled", timeout=5)
