"""The outbox relay and the inbox (docs/architecture.md, "Reliability"): what a transaction wrote is
published as soon as it commits; what that could not publish, the relay's poll publishes;
several relays (one per status replica) publish each message once and clean up after
themselves; handled message ids are forgotten after the retention period."""
from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest

from shared.clock import utc_now
from shared.contracts import catalogue, events
from shared.contracts.envelope import PoisonMessage, new_event
from shared.messaging.broker import Broker
from shared.messaging.delivery import Delivery
from shared.messaging.inbox import Inbox
from shared.messaging.outbox import Outbox, OutboxRelay, Outgoing
from shared.messaging.unit_of_work import Addressing, ConsumeContext, Step, UnitOfWork
from tests.support.stack import EventTap, Stack, eventually

OUTBOX = Outbox("status")
INBOX = Inbox("status")

MESSAGES = 400


async def test_two_relays_publish_each_message_once_and_clean_up(new_stack: Callable[..., Any]) -> None:
    stack: Stack = await new_stack()  # provisioned: the status schema and its outbox are there
    pool = await asyncpg.create_pool(stack.settings.database_url, min_size=1, max_size=4)
    brokers = [Broker(stack.settings.amqp_url, stack.topology, connection_name=f"test-relay-{n}") for n in range(2)]
    relays = [
        OutboxRelay(pool, broker, OUTBOX, batch_size=25, poll_interval_s=0.1, grace_s=0)  # rows written here: no delivery
        for broker in brokers
    ]
    try:
        for broker in brokers:
            await broker.connect()
        async with EventTap(stack, "test.#") as tap:
            tasks = [asyncio.create_task(relay.run()) for relay in relays]
            ids = []
            for start in range(0, MESSAGES, 50):  # written while both relays run
                events = [
                    new_event(type="arcserve.test.relayed", source="urn:test", data={"n": n}, tenant_id=None)
                    for n in range(start, start + 50)
                ]
                ids += [event.id for event in events]
                async with pool.acquire() as conn, conn.transaction():
                    await OUTBOX.enqueue(conn, [Outgoing(stack.topology.events, "test.relayed", e) for e in events])
            await eventually(lambda: _received(tap, MESSAGES), f"{MESSAGES} relayed messages")
            await eventually(lambda: _outbox_empty(pool), "the outbox to be cleaned up")
            for relay in relays:
                relay.stop()
            await asyncio.gather(*tasks)
        received = [event["id"] for _, event in tap.events]
        assert sorted(received) == sorted(ids)  # every message, each exactly once
    finally:
        for broker in brokers:
            await broker.close()
        await pool.close()


def _events(stack: Stack, count: int) -> list[Outgoing]:
    return [Outgoing(stack.topology.events, "test.relayed",
                     new_event(type="arcserve.test.relayed", source="urn:test", data={"n": n}, tenant_id=None))
            for n in range(count)]


async def test_what_a_transaction_wrote_is_published_once_it_commits_and_what_failed_by_the_poll(
        new_stack: Callable[..., Any]) -> None:
    stack: Stack = await new_stack()
    pool = await asyncpg.create_pool(stack.settings.database_url, min_size=1, max_size=4)
    broker = Broker(stack.settings.amqp_url, stack.topology, connection_name="test-delivery")
    away = Broker(stack.settings.amqp_url, stack.topology, connection_name="test-delivery-away")  # never connected
    # Its poll takes any row at once: it must skip those `deliver` published and has yet to delete.
    relay = OutboxRelay(pool, broker, OUTBOX, poll_interval_s=0.1, grace_s=0)
    try:
        await broker.connect()
        async with EventTap(stack, "test.#") as tap:
            delivered, failed = _events(stack, 5), _events(stack, 3)
            async with pool.acquire() as conn, conn.transaction():
                written = await OUTBOX.enqueue(conn, delivered)
            await relay.deliver(written)  # no poll runs: this alone publishes them
            await eventually(lambda: _received(tap, 5), "the delivered messages")
            assert await pool.fetchval("SELECT count(*) FROM status.outbox") == 5  # deleted with others, later

            async with pool.acquire() as conn, conn.transaction():
                written = await OUTBOX.enqueue(conn, failed)
            await OutboxRelay(pool, away, OUTBOX).deliver(written)  # cannot publish: the rows stay
            assert await pool.fetchval("SELECT count(*) FROM status.outbox") == 5 + 3
            polling = asyncio.create_task(relay.run())
            await eventually(lambda: _received(tap, 8), "the rest, by the relay's poll")
            await eventually(lambda: _outbox_empty(pool), "the outbox to be cleaned up")  # the delivered ones too
            relay.stop()
            await polling
        # Each once: the poll never sends again what `deliver` published and has yet to delete.
        assert sorted(event["id"] for _, event in tap.events) == sorted(m.event.id for m in delivered + failed)
    finally:
        await broker.close()
        await pool.close()


async def _received(tap: EventTap, count: int) -> bool:
    return len(tap.events) >= count


async def _outbox_empty(pool: asyncpg.Pool) -> bool:
    return await pool.fetchval("SELECT count(*) FROM status.outbox") == 0


async def test_inbox_forgets_handled_messages_after_the_retention_period(stack: Stack) -> None:
    old, recent = str(uuid.uuid4()), str(uuid.uuid4())
    conn = await asyncpg.connect(stack.settings.database_url)
    try:
        assert await INBOX.claim_all(conn, "test.consumer", [old, recent, recent]) == {old, recent}
        assert await INBOX.claim_all(conn, "test.consumer", [recent]) == set()  # a second delivery is refused
        await conn.execute(
            "UPDATE status.inbox SET processed_at = now() - interval '8 days' WHERE message_id = $1", old
        )
        assert await INBOX.prune(conn, older_than_days=7) >= 1
        assert not await INBOX.seen(conn, "test.consumer", old)
        assert await INBOX.seen(conn, "test.consumer", recent)
    finally:
        await conn.execute("DELETE FROM status.inbox WHERE consumer = 'test.consumer'")
        await conn.close()


async def test_messages_in_one_unit_of_work_commit_together_a_copy_once_and_a_failure_nothing(
        new_stack: Callable[..., Any]) -> None:
    """Group commit on Postgres (shared/messaging/unit_of_work.py): one transaction claims the
    inbox rows of every message in it and writes every outbox row, a second copy of a message
    in the same batch is a duplicate, and a batch that fails leaves no row at all."""
    stack: Stack = await new_stack()
    pool = await asyncpg.create_pool(stack.settings.database_url, min_size=1, max_size=2)
    work = UnitOfWork("test.batch", lambda: pool, INBOX, OUTBOX, Addressing("urn:test", stack.topology))

    async def cancel(message: events.OrderIdIssued, ctx: ConsumeContext[None]) -> None:
        if message.arcserve_order_id == "refused":
            raise PoisonMessage("invalid_data: refused")
        ctx.publish(events.OrderIdCancelled(contract_id=message.contract_id, arcserve_order_id=message.arcserve_order_id))

    def step(order_id: str, event_id: str | None = None) -> Step:
        message = events.OrderIdIssued(contract_id=uuid.uuid4(), arcserve_order_id=order_id)
        _, event = catalogue.to_event(message, source="urn:test", tenant_id="acme", id=event_id)
        return Step(Delivery(event, "someone", None), cancel, message)

    async def rows() -> tuple[int, int]:
        return (await pool.fetchval("SELECT count(*) FROM status.inbox WHERE consumer = 'test.batch'"),
                await pool.fetchval("SELECT count(*) FROM status.outbox"))

    try:
        first = step("ARC-1", "m-1")
        done = await work.run([first, step("ARC-2", "m-2"), Step(first.delivery, cancel, first.message)], [],
                              now=utc_now())
        assert done == [True, True, False] and await rows() == (2, 2)

        with pytest.raises(PoisonMessage):
            await work.run([step("ARC-3", "m-3"), step("refused", "m-4")], [], now=utc_now())
        assert await rows() == (2, 2)  # neither of the two: the batch rolled back whole
        assert await work.run([step("ARC-3", "m-3")], [], now=utc_now()) == [True]  # alone, it goes
    finally:
        await pool.close()
