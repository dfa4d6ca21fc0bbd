"""The order-ID service's requests on Postgres: one asked and answered in the same unit of
work is written answered in one statement, and closes one that was recorded open before."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from services.order_id.orders import PostgresOrders, Request
from services.status.domain.calendar import JST
from tests.support.stack import Stack

T0 = datetime(2026, 6, 1, 10, 0, tzinfo=JST)


def asked(contract_id: uuid.UUID, simulate_at: datetime) -> Request:
    return Request(contract_id, uuid.uuid4(), "acme", T0, None, simulate_at)


async def test_a_request_answered_where_it_is_asked_is_recorded_closed_and_closes_an_open_one(new_stack: Any) -> None:
    database: Stack = await new_stack()
    conn = await asyncpg.connect(database.settings.database_url)
    try:
        orders = PostgresOrders(conn)
        at_once, awaited = uuid.uuid4(), uuid.uuid4()
        await orders.request(asked(at_once, T0), answered_at=T0)
        await orders.request(asked(awaited, T0 + timedelta(hours=1)))  # delayed: recorded open
        assert [r.contract_id for r in await orders.to_simulate(T0 + timedelta(days=1), 10)] == [awaited]

        later = T0 + timedelta(minutes=5)
        await orders.request(asked(awaited, later), answered_at=later)  # the delay became 0 meanwhile
        await orders.request(asked(at_once, later), answered_at=later)  # answered before: keeps its time
        closed = {r["contract_id"]: r["fulfilled_at"] for r in await conn.fetch("SELECT contract_id, fulfilled_at FROM order_id.requests")}
        assert closed == {at_once: T0, awaited: later}
        assert await orders.to_simulate(T0 + timedelta(days=1), 10) == []
    finally:
        await conn.close()
