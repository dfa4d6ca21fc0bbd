"""The order-ID service's table, `order_id.orders`: one Arcserve order ID per contract, the
first one stored kept for good (a redelivery never issues a second one)."""
from __future__ import annotations

from datetime import datetime
from typing import Protocol
from uuid import UUID

from shared.db.pool import Queryable


class Orders(Protocol):
    async def value_of(self, contract_id: UUID) -> str | None:
        """The contract's order ID, if one was stored."""

    async def keep(self, contract_id: UUID, application_id: UUID, value: str, at: datetime) -> str:
        """Store `value` unless the contract has one; the one stored."""

    async def cancel(self, contract_id: UUID, at: datetime) -> None:
        """Mark the contract's order ID cancelled (one cancelled before keeps its time)."""


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
