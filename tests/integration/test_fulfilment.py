"""Fulfilment as a durable step (issue 24), on the real broker and database: the workers
record what a new contract waits for (its order ID, its keys) and are done with the message;
the results complete it later, after a restart too. (Their handlers and simulators on
in-memory tables: tests/unit/test_order_id_handlers.py, test_license_issuer_handlers.py.)"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg

from services.license_issuer.handlers import QUEUE as LICENSE_ISSUER
from services.order_id.handlers import QUEUE as ORDER_ID
from tests.support.drain import queue_depths
from tests.support.stack import EventTap, Stack, eventually, new_application

AWAITED_S = 4.0  # how long the simulated vendor takes: the test stops the service meanwhile


async def test_what_is_awaited_holds_no_message_and_survives_a_restart(new_stack: Callable[..., Any]) -> None:
    stack: Stack = await new_stack(sim_new_delay_s=AWAITED_S)
    await stack.start()
    tenant = await stack.tenant()
    database = await asyncpg.connect(stack.settings.database_url)
    try:
        async with EventTap(stack) as tap:
            response = await stack.submit(tenant, new_application())
            assert response.status_code == 202, response.text
            application_id = response.json()["application_id"]

            for table in ("order_id.requests", "license_issuer.requests"):
                async def awaited(table: str = table) -> asyncpg.Record | None:
                    return await database.fetchrow(
                        f"SELECT * FROM {table} WHERE application_id = $1 AND fulfilled_at IS NULL", application_id)

                request = await eventually(awaited, f"the request in {table}")
                assert request["tenant_id"] == tenant.name and request["due_at"] is not None
            # The acceptance is done with: nothing of it is in a queue or in a consumer's hands.
            queues = [stack.topology.queue(subscriber.spec) for subscriber in (ORDER_ID, LICENSE_ISSUER)]
            assert await eventually(lambda: _empty(stack, queues), "the workers' queues empty") is True
            assert (await stack.wait_application(tenant, application_id, "processing"))["status"] == "processing"

            await stack.stop("order_id", "license_issuer")  # the vendor has not answered yet
            for table in ("order_id.orders", "license_issuer.keys"):
                assert await database.fetchval(f"SELECT count(*) FROM {table} WHERE application_id = $1",
                                               application_id) == 0
            await stack.start("order_id", "license_issuer")

            application = await stack.wait_application(tenant, application_id, "completed")
            contract = await stack.contract(tenant, application["contract_id"])
            assert contract["status"] == "active" and contract["arcserve_order_id"]["status"] == "active"
            order_id = contract["arcserve_order_id"]["value"]
            issued = await tap.wait_for("order_id.issued", application_id=application_id)
            assert issued["data"]["arcserve_order_id"] == order_id
            assert len(tap.matching("order_id.issued", application_id=application_id)) == 1
            assert len(tap.matching("license.issued", application_id=application_id)) == 1
            assert all(lic["status"] == "active" and lic["license_key"] for lic in contract["licenses"])
            for table in ("order_id.requests", "license_issuer.requests"):
                assert await database.fetchval(f"SELECT fulfilled_at IS NOT NULL FROM {table} WHERE application_id = $1",
                                               application_id)
    finally:
        await database.close()


async def _empty(stack: Stack, queues: list[str]) -> bool:
    return not any((await queue_depths(stack.servers.rabbitmqctl, queues)).values())
