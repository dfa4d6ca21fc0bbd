"""The order-ID service's tables: `order_id.orders`, one Arcserve order ID per contract, the
first one stored kept for good (a redelivery never issues a second one); and
`order_id.requests`, the order IDs asked for and not yet obtained (fulfilment, issue 24)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from shared.db.pool import Queryable


@dataclass(frozen=True)
class Request:
    """An order ID a new contract waits for."""

    contract_id: UUID
    application_id: UUID
    tenant_id: str
    requested_at: datetime
    due_at: datetime | None  # R12's expected completion
    simulate_at: datetime | None  # when the simulator answers it; None: another source does
    traceparent: str | None = None  # of the acceptance's trace, which its result continues


class Orders(Protocol):
    async def value_of(self, contract_id: UUID) -> str | None:
        """The contract's order ID, if one was stored."""

    async def keep(self, contract_id: UUID, application_id: UUID, value: str, at: datetime) -> str:
        """Store `value` unless the contract has one; the one stored."""

    async def cancel(self, contract_id: UUID, at: datetime) -> None:
        """Mark the contract's order ID cancelled (one cancelled before keeps its time)."""

    async def request(self, request: Request, answered_at: datetime | None = None) -> None:
        """Record the request unless the contract has one; `answered_at`: it is answered in the
        same unit of work, so it is recorded closed (and one recorded open before is closed)."""

    async def to_simulate(self, now: datetime, limit: int) -> list[Request]:
        """Open requests the simulator answers by `now`, oldest first, locked until the unit of
        work ends (another replica skips them)."""

    async def next_simulation(self) -> datetime | None:
        """When the next open request is the simulator's to answer."""

    async def fulfilled(self, contract_id: UUID, at: datetime) -> None:
        """Close the contract's request (closed before: it keeps its time)."""


class PostgresOrders:
    def __init__(self, db: Queryable):
        self.db = db

    async def value_of(self, contract_id: UUID) -> str | None:
        value: str | None = await self.db.fetchval("SELECT value FROM order_id.orders WHERE contract_id = $1", contract_id)
        return value

    async def keep(self, contract_id: UUID, application_id: UUID, value: str, at: datetime) -> str:
        stored: str = await self.db.fetchval(
            """INSERT INTO order_id.orders (contract_id, application_id, value, issued_at)
               VALUES ($1, $2, $3, $4)
               ON CONFLICT (contract_id) DO UPDATE SET contract_id = EXCLUDED.contract_id
               RETURNING value""",
            contract_id, application_id, value, at,
        )
        return stored

    async def cancel(self, contract_id: UUID, at: datetime) -> None:
        await self.db.execute(
            "UPDATE order_id.orders SET cancelled_at = coalesce(cancelled_at, $2) WHERE contract_id = $1", contract_id, at,
        )

    async def request(self, request: Request, answered_at: datetime | None = None) -> None:
        await self.db.execute(
            """INSERT INTO order_id.requests (contract_id, application_id, tenant_id, requested_at, due_at, simulate_at,
                                                traceparent, fulfilled_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
               ON CONFLICT (contract_id) DO UPDATE SET fulfilled_at = EXCLUDED.fulfilled_at
                   WHERE order_id.requests.fulfilled_at IS NULL AND EXCLUDED.fulfilled_at IS NOT NULL""",
            request.contract_id, request.application_id, request.tenant_id, request.requested_at, request.due_at,
            request.simulate_at, request.traceparent, answered_at,
        )

    async def to_simulate(self, now: datetime, limit: int) -> list[Request]:
        rows = await self.db.fetch(
            """SELECT contract_id, application_id, tenant_id, requested_at, due_at, simulate_at, traceparent
               FROM order_id.requests
               WHERE fulfilled_at IS NULL AND simulate_at <= $1 ORDER BY simulate_at LIMIT $2 FOR UPDATE SKIP LOCKED""",
            now, limit,
        )
        return [Request(**row) for row in rows]

    async def next_simulation(self) -> datetime | None:
        at: datetime | None = await self.db.fetchval(
            "SELECT min(simulate_at) FROM order_id.requests WHERE fulfilled_at IS NULL")
        return at

    async def fulfilled(self, contract_id: UUID, at: datetime) -> None:
        await self.db.execute(
            "UPDATE order_id.requests SET fulfilled_at = coalesce(fulfilled_at, $2) WHERE contract_id = $1", contract_id, at,
        )
