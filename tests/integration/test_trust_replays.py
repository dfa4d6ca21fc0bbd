"""Trust, second pass (docs/architecture.md, "Security"): every consumer acts on a message only
when the broker-validated `user_id` is its owner's, and a dead-letter replay cannot launder a
forgery. Written as the outside test made the attack: a direct publisher allowed for tenant A
forges B's cancellation, dresses it as a dead letter from `arcserve.events`, and waits for
the operator to replay it as the runbook says."""
from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import aio_pika
import pytest

from services.license_issuer.handlers import QUEUE as LICENSE_ISSUER
from services.order_id.handlers import QUEUE as ORDER_ID
from services.provisioning import broker
from services.status.handlers import SUBMISSIONS
from shared.contracts.envelope import CONTENT_TYPE
from shared.messaging.provenance import PUBLISHER_HEADER
from tests.support.stack import EventTap, Stack, Tenant, eventually
from tests.support.tools import ok, run_tool


@pytest.fixture
async def attacker(stack: Stack) -> AsyncIterator[tuple[str, str]]:
    """Another system's broker user, allowed to submit for a tenant of its own only."""
    name, url = stack.new_publisher()
    yield name, url
    broker.Management.for_amqp_url(stack.settings.amqp_url, stack.servers.management_url).delete_users([name])


def forged_cancellation(victim: Tenant, contract: dict[str, Any]) -> dict[str, Any]:
    """What the status service would publish had the victim cancelled everything (R8, R9)."""
    return {
        "specversion": "1.0", "id": str(uuid.uuid4()), "source": "urn:arcserve:status",
        "type": "arcserve.application.accepted.cancellation", "tenantid": victim.name,
        "subject": contract["contract_id"], "datacontenttype": "application/json",
        "data": {
            "application_id": str(uuid.uuid4()), "contract_id": contract["contract_id"], "kind": "cancellation",
            "product": contract["product"]["code"], "scope": "all", "cancels_contract": True,
            "arcserve_order_id": contract["arcserve_order_id"]["value"],
            "licenses": [{"license_id": lic["license_id"], "usage": lic["usage"], "license_type": lic["license_type"],
                          "status": "cancelled"} for lic in contract["licenses"]],
        },
    }


async def publish_as(url: str | None, stack: Stack, exchange: str, routing_key: str, event: dict[str, Any],
                     headers: dict[str, Any], *, user_id: bool = True) -> None:
    connection = await aio_pika.connect(url or stack.settings.amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        target = await channel.get_exchange(exchange, ensure=False)
        user = urlsplit(url or stack.settings.amqp_url).username if user_id else None
        await target.publish(aio_pika.Message(
            json.dumps(event).encode(), content_type=CONTENT_TYPE, message_id=event["id"], user_id=user,
            headers=headers, delivery_mode=aio_pika.DeliveryMode.PERSISTENT), routing_key)


async def listed(stack: Stack, queue: str) -> list[dict[str, Any]]:
    code, out, err = await run_tool(stack, "dlq", "list", "--json", "--queue", queue)
    assert code == 0, err
    return list(json.loads(out)["queues"][0]["messages"])


async def purge(stack: Stack, queue: str, ids: list[str]) -> None:
    """The stack is shared: leave no dead letter for another test to count."""
    code, out, err = await run_tool(stack, "dlq", "purge", *ids, "--queue", queue)
    assert code == 0, (out, err)


async def assert_untouched(stack: Stack, victim: Tenant, before: dict[str, Any], tap: EventTap,
                           forged: tuple[str, ...] = ()) -> None:
    """The victim's contract as it was, keys and order ID included, and nothing published about
    it but the `forged` events themselves."""
    await stack.drained()
    assert await stack.contract(victim, before["contract_id"]) == before
    about = [(key, event["data"]) for key, event in tap.events
             if event["data"].get("contract_id") == before["contract_id"] and event["id"] not in forged]
    assert about == [], about


async def test_a_forgery_dressed_as_a_dead_letter_is_replayed_into_the_gate_and_revokes_nothing(
    stack: Stack, attacker: tuple[str, str]
) -> None:
    name, url = attacker
    own, victim = await stack.tenant(), await stack.tenant()
    await ok(stack, "publishers", "allow", name, own.name)
    before = await stack.active_contract(victim)
    forged = forged_cancellation(victim, before)
    intake = stack.topology.user("intake")
    lies = {
        "x-arcserve-original-exchange": stack.topology.events,
        "x-arcserve-original-routing-key": "application.accepted.cancellation",
        "x-arcserve-reason": "delivery_limit",
        PUBLISHER_HEADER: stack.topology.user("status"),
        "x-death": [{"reason": "delivery_limit", "queue": stack.topology.queue(LICENSE_ISSUER.spec), "count": 1,
                     "exchange": stack.topology.events, "routing-keys": ["application.accepted.cancellation"]}],
    }
    gate = stack.topology.queue(SUBMISSIONS.spec)
    async with EventTap(stack) as tap:
        await publish_as(url, stack, stack.topology.applications, "cancellation", forged, lies)

        async def dead_lettered(replays: int) -> dict[str, Any] | None:
            mine = [m for m in await listed(stack, "status.submissions") if m["message_id"] == forged["id"]]
            return mine[0] if mine and mine[0]["replays"] == replays else None

        letter = await eventually(lambda: dead_lettered(0), "the forgery in the gate's dead letters")
        # What the broker and the gate saw, not what the forger wrote.
        assert letter["reason"].startswith("unknown_type"), letter
        assert (letter["original_exchange"], letter["original_routing_key"]) == (stack.topology.applications, "cancellation")
        assert letter["publisher"] == name and letter["publisher"] != intake

        out = await ok(stack, "dlq", "replay", forged["id"])  # as the runbook says
        assert f"replayed {forged['id']} into {gate} as {name}'s" in out
        again = await eventually(lambda: dead_lettered(1), "the replayed forgery dead-lettered again by the gate")
        assert again["reason"].startswith("unknown_type") and again["publisher"] == name, again
        await assert_untouched(stack, victim, before, tap)
    for queue in ("license-issuer", "order-id"):
        assert await listed(stack, queue) == []  # it never reached the issuers
    await purge(stack, "status.submissions", [forged["id"]])


async def test_an_event_its_owner_did_not_publish_is_dead_lettered_by_every_consumer(stack: Stack) -> None:
    """Published straight to `arcserve.events` by the administrator: naming a publisher (as the
    old replay did; a relay's word counts only on a replay into a queue), as itself, or with
    no `user_id` at all: none is the status service's, so neither issuer acts on it."""
    victim = await stack.tenant()
    before = await stack.active_contract(victim)
    forgeries = []
    async with EventTap(stack) as tap:
        for headers, user_id in (({PUBLISHER_HEADER: stack.topology.user("status")}, True), ({}, True), ({}, False)):
            forged = forged_cancellation(victim, before)
            forgeries.append(forged["id"])
            await publish_as(None, stack, stack.topology.events, "application.accepted.cancellation", forged, headers,
                             user_id=user_id)
        for queue in ("license-issuer", "order-id"):
            async def all_dead(queue: str = queue) -> list[dict[str, Any]] | None:
                letters = await listed(stack, queue)
                return letters if sorted(m["message_id"] for m in letters) == sorted(forgeries) else None

            letters = await eventually(all_dead, f"the three forgeries dead-lettered by {queue}")
            assert all(m["reason"].startswith("unauthorized_publisher") for m in letters), letters
            assert sorted(str(m["publisher"]) for m in letters) == sorted([stack.administrator] * 2 + ["None"])
        await assert_untouched(stack, victim, before, tap, tuple(forgeries))
    for queue in ("license-issuer", "order-id"):
        await purge(stack, queue, forgeries)


async def test_a_replayed_event_is_judged_as_its_first_publishers(stack: Stack) -> None:
    """The operator replays what an issuer dead-lettered: it goes back into that issuer's queue
    and counts as the status service's message only if the status service published it."""
    tenant = await stack.tenant()
    contract = await stack.active_contract(tenant)
    forged = forged_cancellation(tenant, contract)
    async with EventTap(stack) as tap:
        await publish_as(None, stack, stack.topology.events, "application.accepted.cancellation", forged,
                         {PUBLISHER_HEADER: stack.topology.user("status")})

        async def dead(replays: int) -> dict[str, Any] | None:
            mine = [m for m in await listed(stack, "order-id") if m["message_id"] == forged["id"]]
            return mine[0] if mine and mine[0]["replays"] == replays else None

        letter = await eventually(lambda: dead(0), "the forgery in the order-ID service's dead letters")
        assert letter["reason"].startswith("unauthorized_publisher") and letter["publisher"] == stack.administrator
        # The replay names the publisher the consumer proved, the administrator: refused again.
        out = await ok(stack, "dlq", "replay", forged["id"], "--queue", "order-id")
        assert f"into {stack.topology.queue(ORDER_ID.spec)}" in out
        await eventually(lambda: dead(1), "the replayed forgery dead-lettered again")
    assert (await stack.contract(tenant, contract["contract_id"]))["arcserve_order_id"]["status"] == "active"
    assert not tap.matching("order_id.cancelled", contract_id=contract["contract_id"])
    await purge(stack, "order-id", [forged["id"]])
    await purge(stack, "license-issuer", [forged["id"]])
