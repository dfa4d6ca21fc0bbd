"""How a new contract's order ID is obtained (docs/architecture.md, "Fulfilment"): the
acceptance records a request (services/order_id/handlers.py) and is done; a result completes
the request later, recorded idempotently (the first order ID stored wins, a second result
changes nothing) and announced as `order_id.issued`.

In simulator mode the simulator answers (`ARCSERVE_SIM_NEW_DELAY_S` after the request): it
stands in for Arcserve in local runs and tests, as a job of the service that answers each
request when its stored time comes (shared/due.py). Otherwise the order ID is part of the
application's fulfilment task (services/license_issuer/fulfilment.py) and arrives with its
result, through the same `fulfil`.
"""
from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from services.order_id.orders import Orders, Request
from shared import metrics
from shared.contracts import events
from shared.db.pool import Connection, Queryable
from shared.due import Due, Pass, about
from shared.issuance import simulated_order_id

log = logging.getLogger(__name__)
BATCH = 100  # requests answered per transaction


async def fulfil(orders: Orders, contract_id: UUID, application_id: UUID, value: str,
                 now: datetime) -> events.OrderIdIssued:
    """Complete the contract's request with `value`: the order ID stored first stays, and is
    what is announced."""
    issued = await _kept(orders, contract_id, application_id, value, now)
    await orders.fulfilled(contract_id, now)
    return issued


async def _kept(orders: Orders, contract_id: UUID, application_id: UUID, value: str,
                now: datetime) -> events.OrderIdIssued:
    stored = await orders.keep(contract_id, application_id, value, now)
    return events.OrderIdIssued(application_id=application_id, contract_id=contract_id, arcserve_order_id=stored)


class Work(Protocol):
    """A unit of work of the service's own (shared/runtime.py's Transaction)."""

    conn: Connection

    def publish(self, message: events.OrderIdIssued, *, tenant_id: str, subject: str | None = None) -> None: ...

    def after_commit(self, effect: Callable[[], None]) -> None: ...


class Simulator:
    """Arcserve, simulated: each request answered `delay_s` after it was made, with a
    well-formed random order ID."""

    def __init__(self, delay_s: float = 0.0, orders: Callable[[Queryable], Orders] | None = None):
        self.delay = timedelta(seconds=delay_s)
        self.orders = orders
        self.job: Due[Work] = Due("the order-ID simulator", self._pass)

    def answers_at(self, requested_at: datetime) -> datetime:
        return requested_at + self.delay

    def wake(self) -> None:
        self.job.wake()

    def due_at_once(self, request: Request, now: datetime) -> bool:
        """Whether the request is due as it is made (a delay of 0): answered in the unit of
        work that asks, with no pass of the job."""
        return request.simulate_at is not None and request.simulate_at <= now

    async def answer(self, orders: Orders, request: Request, now: datetime,
                     after_commit: Callable[[Callable[[], None]], None]) -> events.OrderIdIssued:
        """Answer one recorded request with a well-formed random order ID: what to announce."""
        issued = await fulfil(orders, request.contract_id, request.application_id, simulated_order_id(now), now)
        after_commit(functools.partial(_obtained, request, _fields(request)))
        return issued

    async def answer_at_once(self, orders: Orders, request: Request, now: datetime,
                             after_commit: Callable[[Callable[[], None]], None]) -> events.OrderIdIssued:
        """Record a request due as it is made, and answer it: written answered, not written
        open and then closed (a round trip fewer on the way of every new contract)."""
        await orders.request(request, answered_at=now)
        issued = await _kept(orders, request.contract_id, request.application_id, simulated_order_id(now), now)
        after_commit(functools.partial(_obtained, request, _fields(request)))
        return issued

    async def answer_due(self, orders: Orders, now: datetime, work: Work) -> Pass:
        """Answer the requests due by `now` (one batch), each in the trace of its acceptance."""
        due = await orders.to_simulate(now, BATCH)
        for request in due:
            with about(request.traceparent, **_fields(request)):
                work.publish(await self.answer(orders, request, now, work.after_commit),
                             tenant_id=request.tenant_id, subject=str(request.contract_id))
        full = len(due) == BATCH
        return Pass(len(due), None if full else await orders.next_simulation(), full)

    async def _pass(self, work: Work, now: datetime) -> Pass:
        assert self.orders is not None, "the simulator runs as a job with the service's tables"
        return await self.answer_due(self.orders(work.conn), now, work)


def _fields(request: Request) -> dict[str, Any]:
    return {"tenant_id": request.tenant_id, "contract_id": str(request.contract_id),
            "application_id": str(request.application_id)}


def _obtained(request: Request, fields: dict[str, Any]) -> None:
    metrics.FULFILMENTS.labels("order-id", "simulator").inc()
    with about(request.traceparent, **fields):
        log.info("obtained the contract's Arcserve order ID (simulator)")
