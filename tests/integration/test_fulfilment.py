"""Fulfilment as a durable step (issue 24), on the real broker and database: the order-ID
service records what a new contract waits for and is done with the message; the result
completes it later, after a restart too. (Its handlers and simulator on in-memory tables:
tests/unit/test_order_id_handlers.py.)"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg

from services.order_id.handlers import QUEUE as ORDER_ID
from tests.support.drain import queue_depths
from tests.support.stack import EventTap, Stack, eventually, new_application

AWAITED_S = 4.0  # how long the simulated vendor takes: the test stops the service meanwhile


async def test_an_awaited_order_id_holds_no_message_and_survives_a_restart(new_stack: Callable[..., Any]) -> None:
    stack: Stack = await new_stack(sim_new_delay_s=AWAITED_S)
    await stack.start()
    tenant = await stack.tenant()
    database = await asyncpg.connect(stack.settings.database_url)
    try:
        async with EventTap(stack) as tap:
            response = await stack.submit(tenant, new_application())
            assert response.status_code == 202, response.text
            application_id = response.json()["application_id"]

            async def awaited() -> asyncpg.Record | None:
                return await database.fetchrow(
                    "SELECT * FROM order_id.requests WHERE application_id = $1 AND fulfilled_at IS NULL", application_id)

            request = await eventually(awaited, "the order ID's request recorded")
            assert request["tenant_id"] == tenant.name and request["due_at"] is not None
            queue = stack.topology.queue(ORDER_ID.spec)
            # The acceptance is done with: nothing of it is in the queue or in a consumer's hands.
            assert await eventually(lambda: _empty(stack, queue), "the order-ID queue empty") is True
            assert (await stack.wait_application(tenant, application_id, "processing"))["status"] == "processing"

            await stack.stop("order_id")  # the vendor has not answered yet
            assert await database.fetchval("SELECT count(*) FROM order_id.orders WHERE application_id = $1",
                                           application_id) == 0
            await stack.start("order_id")

            application = await stack.wait_application(tenant, application_id, "completed")
            contract = await stack.contract(tenant, application["contract_id"])
            assert contract["status"] == "active" and contract["arcserve_order_id"]["status"] == "active"
            order_id = contract["arcserve_order_id"]["value"]
            issued = await tap.wait_for("order_id.issued", application_id=application_id)
            assert issued["data"]["arcserve_order_id"] == order_id
            assert len(tap.matching("order_id.issued", application_id=application_id)) == 1
            assert await database.fetchval("SELECT fulfilled_at IS NOT NULL FROM order_id.requests "
                                           "WHERE application_id = $1", application_id)
    finally:
        await database.close()


async def _empty(stack: Stack, queue: str) -> bool:
    return (await queue_depths(stack.servers.rabbitmqctl, [queue]))[queue] == 0
