"""docs/architecture.md, "Reliability": "an operator command lists and replays" dead letters. The command
(`python -m services.tools.dlq`) runs as a real process against a private stack; the dead
letters are real ones, made by the status service as in the poison-message test."""
from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from collections.abc import Callable
from typing import Any

import aio_pika
import asyncpg

from services.status.handlers import RESULTS, SUBMISSIONS
from shared.messaging.topology import QueueSpec
from shared.tenancy import seed_api_keys
from tests.support.stack import Stack, Tenant, eventually, new_application, submission
from tests.support.tools import ok as ok_tool
from tests.support.tools import run_tool


async def dlq(stack: Stack, *args: str) -> tuple[int, str, str]:
    """Run the command as an operator would, configured like the stack's services."""
    return await run_tool(stack, "dlq", *args)


async def ok(stack: Stack, *args: str) -> str:
    return await ok_tool(stack, "dlq", *args)


async def listed(stack: Stack, spec: QueueSpec = SUBMISSIONS.spec) -> list[dict[str, Any]]:
    out = await ok(stack, "list", "--json", "--queue", spec.name)
    [queue] = json.loads(out)["queues"]
    assert queue["count"] == len(queue["messages"])
    return queue["messages"]


async def depth(stack: Stack, spec: QueueSpec = SUBMISSIONS.spec) -> int:
    """Messages in the dead-letter queue, by a passive declare (nothing is consumed)."""
    connection = await aio_pika.connect(stack.settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(stack.topology.dead_letter_queue(spec))
        return queue.declaration_result.message_count or 0


async def wait_depth(stack: Stack, count: int, spec: QueueSpec = SUBMISSIONS.spec) -> None:
    async def probe() -> bool:
        return await depth(stack, spec) == count

    await eventually(probe, f"{count} messages in the dead-letter queue of {spec.name}")


def line_of(out: str, message_id: str) -> str:
    [line] = [line for line in out.splitlines() if message_id in line]
    return line


async def test_list_show_purge_and_replay_after_the_cause_is_fixed(new_stack: Callable[..., Any]) -> None:
    stack: Stack = await new_stack()
    await stack.start()
    tenant = await stack.tenant()
    exchange = stack.topology.applications

    not_json, not_cloudevent, invalid, stranger = (str(uuid.uuid4()) for _ in range(4))
    invalid_application = str(uuid.uuid4())
    late_tenant, late_application = f"tenant-late-{uuid.uuid4().hex[:8]}", str(uuid.uuid4())
    await stack.publish_raw(exchange, "new", b"\x00\xffthis is not json{", message_id=not_json)
    await stack.publish_raw(exchange, "new", b'{"hello": "world"}', message_id=not_cloudevent)
    await stack.publish_event(exchange, "new", submission(
        tenant.name, {**new_application(), "desired_start_date": "2026-12-01"},
        application_id=invalid_application, event_id=invalid))
    # A good submission for a tenant that does not exist yet, so its publisher cannot be
    # allowed for it: dead-lettered until both are so.
    await stack.publish_event(exchange, "new", submission(late_tenant, new_application(),
                                                          application_id=late_application, event_id=stranger))
    await wait_depth(stack, 4)

    # ---- list: every dead letter with its reason and origin; nothing taken ----------------
    out = await ok(stack, "list")
    for message_id, reason in ((not_json, "not_json"), (not_cloudevent, "not_cloudevent"),
                               (invalid, "invalid_application"), (stranger, "unauthorized_publisher")):
        line = line_of(out, message_id)
        assert line.startswith("arcserve.status.submissions "), line
        assert reason in line and f"{exchange}  new" in line, line
    assert line_of(out, stack.topology.dead_letter_queue(SUBMISSIONS.spec)).split()[1:] == ["4", "4"]
    assert line_of(out, stack.topology.dead_letter_queue(RESULTS.spec)).split()[1:] == ["0", "0"]
    assert await depth(stack) == 4

    before = await listed(stack)
    assert await listed(stack) == before, "browsing twice sees the same messages in the same order"
    assert await depth(stack) == 4
    by_id = {letter["message_id"]: letter for letter in before}
    assert sorted(by_id) == sorted([not_json, not_cloudevent, invalid, stranger])
    assert by_id[invalid]["reason"].startswith("invalid_application") and "desired_start_date" in by_id[invalid]["reason"]
    assert by_id[stranger]["reason"] == f"unauthorized_publisher: {stack.administrator} may not act for tenant {late_tenant!r}"
    assert by_id[not_cloudevent]["size"] == len(b'{"hello": "world"}')
    assert {(letter["original_exchange"], letter["original_routing_key"]) for letter in before} == {(exchange, "new")}
    assert all(letter["delivery_count"] == 1 and letter["replays"] == 0 for letter in before)

    out = await ok(stack, "list", "--queue", "status.submissions", "--limit", "1")
    assert sum(1 for line in out.splitlines() if line.startswith("arcserve.status.submissions ")) == 1
    assert line_of(out, stack.topology.dead_letter_queue(SUBMISSIONS.spec)).split()[1:] == ["4", "1"]
    assert await listed(stack) == before, "a limited listing still leaves the queue as it was"

    # ---- show ------------------------------------------------------------------------------
    out = await ok(stack, "show", invalid)
    assert "reason:           invalid_application" in out and "desired_start_date" in out
    assert f'"application_id": "{invalid_application}"' in out, "a JSON body is shown as JSON"
    out = await ok(stack, "show", not_json, "--queue", "arcserve.status.submissions")
    assert "not_json" in out and repr(b"\x00\xffthis is not json{") in out
    code, out, err = await dlq(stack, "show", str(uuid.uuid4()))
    assert code == 1 and "not found" in err
    assert await listed(stack) == before

    # ---- purge one -------------------------------------------------------------------------
    assert "purged 1 dead letter" in await ok(stack, "purge", not_cloudevent)
    rest = [letter["message_id"] for letter in before if letter["message_id"] != not_cloudevent]

    async def purged() -> bool:
        return [letter["message_id"] for letter in await listed(stack)] == rest

    await eventually(purged, "exactly the purged dead letter to be gone, the others in order")

    # ---- replay after the cause is fixed: the tenant exists, its publisher is allowed -----
    key = secrets.token_urlsafe(24)
    conn = await asyncpg.connect(stack.settings.database_url)
    try:
        await seed_api_keys(conn, {key: late_tenant}, stack.pepper)
    finally:
        await conn.close()
    await ok_tool(stack, "publishers", "allow", stack.administrator, late_tenant)
    out = await ok(stack, "replay", stranger)
    assert f"replayed {stranger} into {stack.topology.queue(SUBMISSIONS.spec)} as {stack.administrator}'s" in out
    application = await stack.wait_application(Tenant(late_tenant, key), late_application)
    assert application["status"] == "completed", application
    contract = await stack.contract(Tenant(late_tenant, key), application["contract_id"])
    assert contract["status"] == "active" and len(contract["licenses"]) == 2
    assert stranger not in {letter["message_id"] for letter in await listed(stack)}

    # ---- replay without a fix: back into the gate's queue, and dead again -------------------
    out = await ok(stack, "replay", invalid, "--queue", "status.submissions")
    assert f"replayed {invalid}" in out

    async def dead_again() -> dict[str, Any] | None:
        mine = [letter for letter in await listed(stack) if letter["message_id"] == invalid]
        return mine[0] if len(mine) == 1 and mine[0]["replays"] == 1 else None

    again = await eventually(dead_again, "the replayed invalid submission to be dead-lettered again")
    assert again["reason"].startswith("invalid_application")
    assert (again["original_exchange"], again["original_routing_key"]) == (exchange, "new")

    # ---- replay --all, then purge --all ----------------------------------------------------
    assert sorted(letter["message_id"] for letter in await listed(stack)) == sorted([not_json, invalid])
    out = await ok(stack, "replay", "--all")
    assert "2 replayed, 0 not replayed" in out

    async def both_back() -> list[dict[str, Any]] | None:
        letters = await listed(stack)
        replays = sorted((letter["message_id"], letter["replays"]) for letter in letters)
        return letters if replays == sorted([(not_json, 1), (invalid, 2)]) else None

    await eventually(both_back, "both replayed poison messages to be dead-lettered again")
    assert "purged 2 dead letters" in await ok(stack, "purge", "--all")
    await wait_depth(stack, 0)
    assert (await stack.wait_application(tenant, invalid_application))["status"] == "rejected"


async def test_broker_dead_letters_and_letters_without_origin(new_stack: Callable[..., Any]) -> None:
    """A dead letter the broker made (delivery limit: `x-death`) is listed with the broker's
    reason and where it was published; every replay, of it and of one that says nowhere where
    it came from, goes into the consumer's queue (`--to-queue`, once needed for that, is still
    taken)."""
    stack: Stack = await new_stack()  # provisioned: its topology is there
    topology = stack.topology
    probe = topology.name("dlq-tool.probe")
    connection = await aio_pika.connect(stack.settings.amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        try:
            # A queue that gives up on a message at its first return, into status.results' DLQ.
            queue = await channel.declare_queue(probe, durable=True, arguments={
                "x-queue-type": "quorum",
                "x-delivery-limit": 0,
                "x-dead-letter-exchange": topology.dead_letter_exchange(RESULTS.spec),
            })
            await queue.bind(topology.events, "probe.limit")
            events = await channel.get_exchange(topology.events, ensure=False)
            crashing, orphan = str(uuid.uuid4()), str(uuid.uuid4())
            # It carries what an earlier delayed retry wrote; the broker's reason is the newer one.
            earlier: aio_pika.abc.HeadersType = {
                "x-custom": "kept", "x-arcserve-reason": "handler_error: earlier", "x-arcserve-attempt": 1,
            }
            await events.publish(aio_pika.Message(b'{"crash": true}', message_id=crashing, content_type="application/json",
                                                  headers=earlier), "probe.limit")
            message = await eventually(lambda: queue.get(fail=False), "the probe message")
            await message.nack(requeue=True)  # the broker dead-letters it: delivery limit
            dead_letters = await channel.get_exchange(topology.dead_letter_exchange(RESULTS.spec), ensure=False)
            await dead_letters.publish(aio_pika.Message(b"orphan", message_id=orphan), "")
            await wait_depth(stack, 2, RESULTS.spec)

            letters = {letter["message_id"]: letter for letter in await listed(stack, RESULTS.spec)}
            assert letters[crashing]["reason"] == "delivery_limit"
            assert (letters[crashing]["original_exchange"], letters[crashing]["original_routing_key"]) == (
                topology.events, "probe.limit")
            assert letters[orphan]["reason"] == "unknown" and letters[orphan]["original_routing_key"] is None

            results = await channel.get_queue(topology.queue(RESULTS.spec))
            out = await ok(stack, "replay", crashing, "--queue", "status.results")
            assert f"replayed {crashing} into {topology.queue(RESULTS.spec)}" in out
            back = await eventually(lambda: results.get(fail=False), "the replayed message in the status.results queue")
            await back.ack()
            assert back.body == b'{"crash": true}' and back.message_id == crashing
            assert back.content_type == "application/json" and back.user_id == stack.administrator
            headers = back.headers or {}
            assert headers.get("x-custom") in ("kept", b"kept") and headers.get("x-arcserve-replays") == 1
            assert not [name for name in headers if name.startswith(("x-death", "x-first-death", "x-last-death"))]
            assert "x-arcserve-reason" not in headers and "x-arcserve-attempt" not in headers
            assert headers.get("x-arcserve-original-routing-key") in ("probe.limit", b"probe.limit")

            out = await ok(stack, "replay", orphan, "--to-queue", "--queue", "arcserve.status.results")
            assert f"replayed {orphan} into {topology.queue(RESULTS.spec)}" in out
            resent = await eventually(lambda: results.get(fail=False), "the orphan in the status.results queue")
            await resent.ack()
            assert resent.body == b"orphan" and (resent.headers or {}).get("x-arcserve-replays") == 1
            await wait_depth(stack, 0, RESULTS.spec)
        finally:
            await (await connection.channel()).queue_delete(probe)

    # Usage errors are 2, before anything touches the broker (four processes, run at once).
    usages = (("replay",), ("purge", "x", "--all"), ("list", "--queue", "nope"), ("frobnicate",))
    for args, (code, _, err) in zip(usages, await asyncio.gather(*(dlq(stack, *args) for args in usages)), strict=True):
        assert code == 2 and "usage:" in err, (args, err)
