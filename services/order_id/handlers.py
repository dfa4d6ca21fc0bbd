"""Order-ID service: one Arcserve order ID per new contract (R1), cancelled with the
contract's last key (R9).

The issuance backend is called the way every worker calls it (shared/messaging/subscriber.py):
outside any transaction, in the handler's `outside` step, then recorded idempotently in the
unit of work: one row per contract, and the stored order ID wins over one the backend handed
out again."""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from services.order_id.orders import Orders, PostgresOrders
from shared.contracts import events
from shared.db.pool import Queryable
from shared.issuance import IssuanceBackend
from shared.messaging.delivery import Delivery
from shared.messaging.subscriber import Subscriber
from shared.messaging.unit_of_work import ConsumeContext

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Deps:
    backend: IssuanceBackend
    orders: Callable[[Queryable], Orders] = PostgresOrders  # its table, on the unit of work's transaction


QUEUE: Subscriber[Deps] = Subscriber("arcserve.order-id")


async def obtain_order_id(accepted: events.NewAccepted, delivery: Delivery[Deps]) -> str:
    stored = await delivery.deps.orders(delivery.pool).value_of(accepted.contract_id)
    return stored or await delivery.deps.backend.issue_order_id(accepted.contract_id)


@QUEUE.handler(events.NewAccepted, outside=obtain_order_id)
async def issue(accepted: events.NewAccepted, ctx: ConsumeContext[Deps, str]) -> None:
    stored = await ctx.deps.orders(ctx.conn).keep(accepted.contract_id, accepted.application_id, ctx.obtained, ctx.now)
    ctx.publish(events.OrderIdIssued(
        application_id=accepted.application_id, contract_id=accepted.contract_id, arcserve_order_id=stored,
    ))
    ctx.after_commit(lambda: log.info("issued the contract's Arcserve order ID"))


async def cancel_at_vendor(accepted: events.CancellationAccepted, delivery: Delivery[Deps]) -> str | None:
    """The order ID to cancel, cancelled at the vendor (at once, R9; twice is harmless)."""
    if not accepted.cancels_contract:
        return None  # a partial cancellation keeps the order ID (R9)
    value = await delivery.deps.orders(delivery.pool).value_of(accepted.contract_id) or accepted.arcserve_order_id
    if value is not None:
        await delivery.deps.backend.cancel_order_id(value)
    return value


@QUEUE.handler(events.CancellationAccepted, outside=cancel_at_vendor)
async def cancel(accepted: events.CancellationAccepted, ctx: ConsumeContext[Deps, str | None]) -> None:
    value = ctx.obtained
    if value is None:
        return  # nothing was ever issued for this contract, or it keeps its order ID
    await ctx.deps.orders(ctx.conn).cancel(accepted.contract_id, ctx.now)
    ctx.publish(events.OrderIdCancelled(
        application_id=accepted.application_id, contract_id=accepted.contract_id, arcserve_order_id=value,
    ))
    ctx.after_commit(lambda: log.info("cancelled the contract's Arcserve order ID (R9)"))
