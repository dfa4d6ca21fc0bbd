"""Order-ID service: one Arcserve order ID per new contract (R1), cancelled with the
contract's last key (R9).

The issuance backend is called the way every worker calls it (shared/messaging/subscriber.py):
outside any transaction, in the handler's `outside` step, then recorded idempotently in the
unit of work: one row per contract, and the stored order ID wins over one the backend handed
out again."""
from __future__ import annotations

import logging
from dataclasses import dataclass

from shared.contracts import events
from shared.issuance import IssuanceBackend
from shared.messaging.subscriber import Subscriber
from shared.messaging.unit_of_work import ConsumeContext, OutsideContext

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Deps:
    backend: IssuanceBackend


QUEUE: Subscriber[Deps] = Subscriber("arcserve.order-id")


async def obtain_order_id(accepted: events.NewAccepted, ctx: OutsideContext[Deps]) -> str:
    stored = await ctx.pool.fetchval("SELECT value FROM order_id.orders WHERE contract_id = $1", accepted.contract_id)
    return stored or await ctx.deps.backend.issue_order_id(accepted.contract_id)


@QUEUE.handler(events.NewAccepted, outside=obtain_order_id)
async def issue(accepted: events.NewAccepted, ctx: ConsumeContext[Deps]) -> None:
    stored = await ctx.conn.fetchval(
        """INSERT INTO order_id.orders (contract_id, application_id, value, issued_at)
           VALUES ($1, $2, $3, $4)
           ON CONFLICT (contract_id) DO UPDATE SET contract_id = EXCLUDED.contract_id
           RETURNING value""",
        accepted.contract_id, accepted.application_id, ctx.obtained, ctx.now,
    )
    ctx.publish(events.OrderIdIssued(
        application_id=accepted.application_id, contract_id=accepted.contract_id, arcserve_order_id=stored,
    ))
    ctx.after_commit(lambda: log.info("issued the contract's Arcserve order ID"))


async def cancel_at_vendor(accepted: events.CancellationAccepted, ctx: OutsideContext[Deps]) -> str | None:
    """The order ID to cancel, cancelled at the vendor (at once, R9; twice is harmless)."""
    if not accepted.cancels_contract:
        return None  # a partial cancellation keeps the order ID (R9)
    value = await ctx.pool.fetchval("SELECT value FROM order_id.orders WHERE contract_id = $1", accepted.contract_id)
    value = value or accepted.arcserve_order_id
    if value is not None:
        await ctx.deps.backend.cancel_order_id(value)
    return value


@QUEUE.handler(events.CancellationAccepted, outside=cancel_at_vendor)
async def cancel(accepted: events.CancellationAccepted, ctx: ConsumeContext[Deps]) -> None:
    value: str | None = ctx.obtained
    if value is None:
        return  # nothing was ever issued for this contract, or it keeps its order ID
    await ctx.conn.execute(
        "UPDATE order_id.orders SET cancelled_at = coalesce(cancelled_at, $2) WHERE contract_id = $1",
        accepted.contract_id, ctx.now,
    )
    ctx.publish(events.OrderIdCancelled(
        application_id=accepted.application_id, contract_id=accepted.contract_id, arcserve_order_id=value,
    ))
    ctx.after_commit(lambda: log.info("cancelled the contract's Arcserve order ID (R9)"))
