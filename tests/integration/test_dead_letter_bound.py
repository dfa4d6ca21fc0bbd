"""The dead-letter queues are bounded (services/provisioning/broker.py, `policies`), and a
full one loses nothing: the consumer keeps a message it cannot dead-letter and tries again,
and it arrives once there is room. Shown with a bound of one message (an operator's policy
over the provisioned one)."""
from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika

from services.provisioning import broker
from services.status.handlers import SUBMISSIONS
from tests.support.stack import Stack, eventually
from tests.support.tools import ok, run_tool


async def _letters(stack: Stack) -> list[str]:
    code, out, err = await run_tool(stack, "dlq", "list", "--json", "--queue", "status.submissions")
    assert code == 0, err
    return [m["message_id"] for m in json.loads(out)["queues"][0]["messages"]]


async def test_a_full_dead_letter_queue_keeps_the_next_poison_message_until_there_is_room(
    new_stack: Callable[..., Awaitable[Stack]],
) -> None:
    stack = await new_stack()  # its own: the bound counts every dead letter of the queue
    await stack.start("status")
    management = broker.Management.for_amqp_url(stack.settings.amqp_url, stack.servers.management_url)
    dead_letters = stack.topology.dead_letter_queue(SUBMISSIONS.spec)
    name = stack.topology.name("test.dead-letter-bound")
    policy: dict[str, Any] = {"pattern": f"^{dead_letters.replace('.', '[.]')}$", "apply-to": "queues",
                              "priority": 10, "definition": {"max-length": 1, "overflow": "reject-publish"}}
    management.put_policy("/", name, policy)
    try:
        await eventually(lambda: _bound(management, dead_letters), "the bound of one on the dead-letter queue")
        # A quorum queue refuses publishes once it is past its bound: two fill this one.
        first, second, third = "bound-first", "bound-second", "bound-third"
        for poison in (first, second):
            await stack.publish_raw(stack.topology.applications, "new", b"not json", message_id=poison)
        await _depth_reaches(stack, dead_letters, 2)  # cheap to poll; the listing below is a process
        await eventually(lambda: _is(stack, [first, second]), "the first two poison messages dead-lettered")
        await stack.publish_raw(stack.topology.applications, "new", b"not json either", message_id=third)

        gate = stack.topology.queue(SUBMISSIONS.spec)

        async def kept() -> bool:  # refused by the full dead-letter queue, still in the gate's queue
            return management.queue("/", gate).get("messages") == 1 and await _is(stack, [first, second])

        await eventually(kept, "the third one kept in the gate's queue while the dead-letter queue is full")
        assert "purged 2" in await ok(stack, "dlq", "purge", first, second)
        await _depth_reaches(stack, dead_letters, 1, timeout=60)
        await eventually(lambda: _is(stack, [third]), "the third one dead-lettered once there is room", timeout=60)
    finally:
        management.delete_policy("/", name)


async def _depth_reaches(stack: Stack, queue: str, count: int, timeout: float = 20.0) -> None:
    """Wait until `queue` holds `count` messages, by a passive declare (nothing consumed): a
    gate before the dlq tool's listing, which starts a process per look."""
    connection = await aio_pika.connect(stack.settings.amqp_url)
    async with connection:
        channel = await connection.channel()

        async def probe() -> bool:
            declared = await channel.declare_queue(queue, passive=True)
            return declared.declaration_result.message_count == count

        await eventually(probe, f"{count} messages in {queue}", timeout=timeout)


async def _bound(management: broker.Management, queue: str) -> bool:
    return (management.queue("/", queue).get("effective_policy_definition") or {}).get("max-length") == 1


async def _is(stack: Stack, ids: list[str]) -> bool:
    return await _letters(stack) == ids

