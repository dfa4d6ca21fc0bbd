"""Order-ID service: one Arcserve order ID per new contract (R1), cancelled with the
contract's last key (R9). One row per contract makes a redelivery harmless."""
from __future__ import annotations

from shared.contracts import routing
from shared.contracts.envelope import CloudEvent
from shared.contracts.events import ApplicationAccepted, parse_data
from shared.messaging import inbox
from shared.messaging.outbox import enqueue
from shared.workers import Route, WorkerContext


async def issue(ctx: WorkerContext, event: CloudEvent) -> None:
    accepted = parse_data(ApplicationAccepted, event)
    existing = await ctx.pool.fetchval("SELECT value FROM order_id.orders WHERE contract_id = $1", accepted.contract_id)
    value = existing or await ctx.backend.issue_order_id(accepted.contract_id)
    async with ctx.pool.acquire() as conn, conn.transaction():
        if not await inbox.claim(conn, ctx.consumer, event.id):
            return
        stored = await conn.fetchval(
            """INSERT INTO order_id.orders (contract_id, application_id, value, issued_at)
               VALUES ($1, $2, $3, now())
               ON CONFLICT (contract_id) DO UPDATE SET contract_id = EXCLUDED.contract_id
               RETURNING value""",
            accepted.contract_id,
            accepted.application_id,
            value,
        )
        data = {
            "application_id": str(accepted.application_id),
            "contract_id": str(accepted.contract_id),
            "arcserve_order_id": stored,
        }
        await enqueue(conn, ctx.consumer, [ctx.follow_up(routing.ORDER_ID_ISSUED, event, data)])


async def cancel(ctx: WorkerContext, event: CloudEvent) -> None:
    accepted = parse_data(ApplicationAccepted, event)
    if not accepted.cancels_contract:
        return  # a partial cancellation keeps the order ID (R9)
    async with ctx.pool.acquire() as conn, conn.transaction():
        if not await inbox.claim(conn, ctx.consumer, event.id):
            return
        value = await conn.fetchval(
            """UPDATE order_id.orders SET cancelled_at = coalesce(cancelled_at, now())
               WHERE contract_id = $1 RETURNING value""",
            accepted.contract_id,
        )
        value = value or accepted.arcserve_order_id
        if value is None:
            return  # nothing was ever issued for this contract: nothing to cancel
        await ctx.backend.cancel_order_id(value)
        data = {
            "application_id": str(accepted.application_id),
            "contract_id": str(accepted.contract_id),
            "arcserve_order_id": value,
        }
        await enqueue(conn, ctx.consumer, [ctx.follow_up(routing.ORDER_ID_CANCELLED, event, data)])


ROUTES: dict[str, Route] = {
    routing.event_type(routing.accepted("new")): issue,
    routing.event_type(routing.accepted("cancellation")): cancel,
}
