"""Order-ID service: one Arcserve order ID per new contract (R1), cancelled with the
contract's last key (R9).

An order ID is a fulfilment, and the first one stored wins over any other result. In
simulator mode it is asked for here and the service's simulator answers it
(services/order_id/fulfilment.py); otherwise it is part of the application's fulfilment task,
which the license issuer owns, and comes from there with the task's result
(`order_id.obtained`). Its cancellation is immediate for the tenant (R9); at Arcserve it is
part of the cancellation's revocation (services/license_issuer/revocations.py)."""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from services.order_id.fulfilment import Simulator, fulfil
from services.order_id.orders import Orders, PostgresOrders, Request
from shared import metrics
from shared.config import FulfilmentSource
from shared.contracts import events
from shared.db.pool import Queryable
from shared.messaging.subscriber import Subscriber
from shared.messaging.unit_of_work import ConsumeContext
from shared.observability.tracing import current_traceparent

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Deps:
    simulator: Simulator  # answers requests in simulator mode (services/order_id/fulfilment.py)
    source: FulfilmentSource = "simulator"  # where results come from (ARCSERVE_FULFILMENT)
    orders: Callable[[Queryable], Orders] = PostgresOrders  # its tables, on the unit of work's transaction


QUEUE: Subscriber[Deps] = Subscriber("arcserve.order-id")


@QUEUE.handler(events.NewAccepted)
async def request(accepted: events.NewAccepted, ctx: ConsumeContext[Deps]) -> None:
    """Ask the simulator for the new contract's order ID and be done: its answer completes the
    request later (services/order_id/fulfilment.py), or at once, in this unit of work, when it
    is due as it is asked (a delay of 0). One obtained before is announced again;
    one asked for and still awaited is asked for once. Outside simulator mode it comes with
    the application's fulfilment task (`obtained`)."""
    orders = ctx.deps.orders(ctx.conn)
    stored = await orders.value_of(accepted.contract_id)
    if stored is not None:
        ctx.publish(events.OrderIdIssued(
            application_id=accepted.application_id, contract_id=accepted.contract_id, arcserve_order_id=stored,
        ))
        return
    if ctx.deps.source != "simulator":
        return
    asked = Request(accepted.contract_id, accepted.application_id, ctx.event.tenantid or "", ctx.now,
                    accepted.expected_completion_at, ctx.deps.simulator.answers_at(ctx.now), current_traceparent())
    if ctx.deps.simulator.due_at_once(asked, ctx.now):
        ctx.publish(await ctx.deps.simulator.answer_at_once(orders, asked, ctx.now, ctx.after_commit))
    else:
        await orders.request(asked)
        ctx.after_commit(ctx.deps.simulator.wake)


@QUEUE.handler(events.OrderIdObtained)
async def obtained(message: events.OrderIdObtained, ctx: ConsumeContext[Deps]) -> None:
    """The order ID a fulfilment task's result brought (the license issuer checked it against
    the task): kept unless the contract has one, and announced."""
    ctx.publish(await fulfil(ctx.deps.orders(ctx.conn), message.contract_id, message.application_id,
                             message.arcserve_order_id, ctx.now))
    source = ctx.deps.source

    def obtained_() -> None:
        metrics.FULFILMENTS.labels("order-id", source).inc()
        log.info("obtained the contract's Arcserve order ID (%s)", source)

    ctx.after_commit(obtained_)


@QUEUE.handler(events.CancellationAccepted)
async def cancel(accepted: events.CancellationAccepted, ctx: ConsumeContext[Deps]) -> None:
    """Cancelled for the tenant at once with the contract's last key (R9); at Arcserve it is
    part of the cancellation's revocation, which the license issuer keeps until confirmed
    (services/license_issuer/revocations.py)."""
    if not accepted.cancels_contract:
        return  # a partial cancellation keeps the order ID (R9)
    orders = ctx.deps.orders(ctx.conn)
    value = await orders.value_of(accepted.contract_id) or accepted.arcserve_order_id
    if value is None:
        return  # nothing was ever issued for this contract
    await orders.cancel(accepted.contract_id, ctx.now)
    ctx.publish(events.OrderIdCancelled(
        application_id=accepted.application_id, contract_id=accepted.contract_id, arcserve_order_id=value,
    ))
    ctx.after_commit(lambda: log.info("cancelled the contract's Arcserve order ID (R9)"))
