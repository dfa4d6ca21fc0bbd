"""How a new contract's order ID is obtained (docs/architecture.md, "Fulfilment"): the
acceptance records a request (services/order_id/handlers.py) and is done; a result completes
the request later, recorded idempotently (the first order ID stored wins, a second result
changes nothing) and announced as `order_id.issued`.

Results come from the simulator here (`ARCSERVE_SIM_NEW_DELAY_S` after the request): it
stands in for Arcserve in local runs and tests, through the same durable path. Its times are
stored, not slept: a restart in the middle still answers every request, and nothing waits
meanwhile (no delivery, connection, transaction or sleeping task per request).
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Protocol

from services.order_id.orders import Orders, Request
from shared import metrics
from shared.backoff import Backoff
from shared.contracts import events
from shared.db.pool import Connection
from shared.issuance import simulated_order_id

log = logging.getLogger(__name__)
BATCH = 100  # requests answered per transaction
POLL_S = 5.0  # the longest the simulator sleeps: requests another replica recorded are seen within it


async def fulfil(orders: Orders, request: Request, value: str, now: datetime) -> events.OrderIdIssued:
    """Complete `request` with `value`: the order ID stored first stays, and is what is announced."""
    stored = await orders.keep(request.contract_id, request.application_id, value, now)
    await orders.fulfilled(request.contract_id, now)
    return events.OrderIdIssued(application_id=request.application_id, contract_id=request.contract_id,
                                arcserve_order_id=stored)


class Work(Protocol):
    """A unit of work of the service's own (shared/runtime.py's Transaction)."""

    conn: Connection

    def publish(self, message: events.OrderIdIssued, *, tenant_id: str, subject: str | None = None) -> None: ...


class Simulator:
    """Arcserve, simulated: each request answered `delay_s` after it was made, with a
    well-formed random order ID."""

    def __init__(self, delay_s: float = 0.0):
        self.delay = timedelta(seconds=delay_s)
        self._wake = asyncio.Event()

    def answers_at(self, requested_at: datetime) -> datetime:
        return requested_at + self.delay

    def wake(self) -> None:
        """A request was committed: look again now (it may be due at once)."""
        self._wake.set()

    async def answer_due(self, orders: Orders, now: datetime, publish: Callable[[events.OrderIdIssued, Request], None]) -> int:
        """Answer the requests due by `now` (one batch); how many."""
        due = await orders.to_simulate(now, BATCH)
        for request in due:
            publish(await fulfil(orders, request, simulated_order_id(now), now), request)
        return len(due)

    async def run(self, transaction: Callable[[], AbstractAsyncContextManager[Work]], orders_of: Callable[[Connection], Orders],
                  clock: Callable[[], datetime]) -> None:
        """Answer due requests until cancelled: at once when woken, else when the next one is due."""
        backoff = Backoff()
        while True:
            next_at: datetime | None = None
            try:
                async with transaction() as work:
                    orders = orders_of(work.conn)
                    answered = await self.answer_due(
                        orders, clock(),
                        lambda issued, request: work.publish(issued, tenant_id=request.tenant_id,
                                                             subject=str(request.contract_id)))
                    if answered < BATCH:
                        next_at = await orders.next_simulation()
                backoff.reset()
            except Exception as exc:  # an outage: the requests wait in their table
                delay = backoff.next()
                log.warning("the fulfilment simulator paused (%r); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                continue
            if answered:
                metrics.FULFILMENTS.labels("order-id", "simulator").inc(answered)
            if answered == BATCH:
                continue
            wait = POLL_S if next_at is None else min(POLL_S, max(0.0, (next_at - clock()).total_seconds()))
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=wait)
            except TimeoutError:
                pass
            self._wake.clear()
