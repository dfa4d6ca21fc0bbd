"""Direct publishers (docs/architecture.md, "Security"): another system, with a broker user
of its own that may only write submissions, acts only for the tenants an operator allowed
it (`python -m services.tools.publishers`); anything else is dead-lettered as
`unauthorized_publisher` with no effect, the broker refuses a forged `user_id`, and only
the services write events."""
from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import aio_pika
import aiormq
import asyncpg
import pytest

from services.provisioning import broker
from services.status.handlers import SUBMISSIONS
from shared.contracts.envelope import CONTENT_TYPE
from shared.messaging.consumer import PUBLISHER_HEADER, REASON_HEADER
from tests.support.stack import (
    EventTap,
    Stack,
    Tenant,
    dead_letters,
    dead_letters_kept,
    new_application,
    submission,
)
from tests.support.tools import ok, run_tool


@pytest.fixture
async def publisher(stack: Stack) -> AsyncIterator[tuple[str, str]]:
    name, url = stack.new_publisher()
    yield name, url
    broker.Management.for_amqp_url(stack.settings.amqp_url, stack.servers.management_url).delete_users([name])


async def _submit_as(stack: Stack, url: str, tenant: str, body: dict[str, Any] | None = None,
                     headers: dict[str, Any] | None = None) -> str:
    """A submission for `tenant`, published with the publisher's own `user_id`."""
    application_id = str(uuid.uuid4())
    event = submission(tenant, body or new_application(), application_id=application_id, event_id=application_id)
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(stack.topology.applications, ensure=False)
        await exchange.publish(aio_pika.Message(
            json.dumps(event).encode(), content_type=CONTENT_TYPE, message_id=application_id,
            user_id=urlsplit(url).username, headers=headers,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT), (body or new_application())["kind"])
    return application_id


async def _audit(stack: Stack, subject: str) -> list[tuple[str, str]]:
    conn = await asyncpg.connect(stack.settings.database_url)
    try:
        rows = await conn.fetch("SELECT action, actor FROM audit.records WHERE subject = $1 ORDER BY record_id", subject)
    finally:
        await conn.close()
    return [(r["action"], r["actor"]) for r in rows]


async def test_a_publisher_acts_only_for_the_tenants_it_is_allowed(
    new_stack: Callable[..., Any],
) -> None:
    stack: Stack = await new_stack()
    await stack.start()
    a, b = await stack.tenant(), await stack.tenant()
    name, url = stack.new_publisher()
    try:
        assert (await ok(stack, "publishers", "allow", name, a.name)).strip() == f"{name} may act for: {a.name}"
        received = datetime.now(UTC) - timedelta(seconds=5)  # this machine's clock against the database's
        async with EventTap(stack) as events:
            for_a = await _submit_as(stack, url, a.name)
            for_b = await _submit_as(stack, url, b.name)
            await events.wait_for("application.completed.new", application_id=for_a)
            application = (await stack.get(a, f"/v1/applications/{for_a}")).json()
            assert application["submitted_by"] == {"kind": "publisher", "id": name}
            # R12: the publisher claimed `time` 2026-11-27T01:00Z; the clock starts when the system received it.
            assert datetime.fromisoformat(application["submitted_at"]) >= received
            [letter] = await dead_letters(stack, SUBMISSIONS.name, 1)
            assert letter.message_id == for_b
            assert str(letter.headers[REASON_HEADER]).startswith(f"unauthorized_publisher: {name} may not act for tenant")
            assert str(letter.headers[PUBLISHER_HEADER]) == name

            # Revoked: its next submission for A has no effect either.
            assert (await ok(stack, "publishers", "revoke", name)).strip() == f"{name} may act for: no tenant"
            after_revoke = await _submit_as(stack, url, a.name, {**new_application(product="arcserve-udp-9")})
            [letter] = await dead_letters(stack, SUBMISSIONS.name, 1)
            assert letter.message_id == after_revoke
            await stack.drained()
        # No trace for B, not even a rejection; nothing more for A.
        assert [e for _, e in events.events if e.get("tenantid") == b.name] == []
        assert (await stack.get(b, f"/v1/applications/{for_b}")).status_code == 404
        assert (await stack.get(a, f"/v1/applications/{after_revoke}")).status_code == 404
        assert [action for action, _ in await _audit(stack, name)] == ["publishers.allow", "publishers.revoke"]
        listed = json.loads(await ok(stack, "publishers", "list", "--json"))
        assert {"broker_user": name, "role": "publisher", "tenants": []} in listed
        assert {p["role"] for p in listed} == {"edge", "relay", "publisher", "fulfiller"}
        # The deployment's own back-office console publishes fulfilment results, for no tenant.
        assert {"broker_user": stack.topology.user("backoffice"), "role": "fulfiller", "tenants": []} in listed
    finally:
        broker.Management.for_amqp_url(stack.settings.amqp_url, stack.servers.management_url).delete_users([name])


async def test_allowing_an_unknown_tenant_is_refused_and_changes_nothing(stack: Stack, tenant: Tenant) -> None:
    code, out, err = await run_tool(stack, "publishers", "allow", "someone", tenant.name, "no-such-tenant")
    assert code == 1 and "no such tenant: no-such-tenant" in err, (out, err)
    assert "someone" not in await ok(stack, "publishers", "list")


async def test_the_broker_refuses_a_user_id_that_is_not_the_publishers_own(
    stack: Stack, tenant: Tenant, publisher: tuple[str, str]
) -> None:
    name, url = publisher
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(stack.topology.applications, ensure=False)
        event = submission(tenant.name, new_application())
        with pytest.raises(aio_pika.exceptions.ChannelPreconditionFailed, match="user_id property set to"):
            await exchange.publish(aio_pika.Message(json.dumps(event).encode(), user_id=stack.administrator), "new")


async def test_a_direct_publisher_may_write_nothing_but_submissions(
    stack: Stack, tenant: Tenant, publisher: tuple[str, str]
) -> None:
    name, url = publisher
    forged = {"specversion": "1.0", "id": str(uuid.uuid4()), "source": "urn:forger", "type": "arcserve.license.issued",
              "tenantid": tenant.name, "data": {}}
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        events = await channel.get_exchange(stack.topology.events, ensure=False)
        with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
            await events.publish(aio_pika.Message(json.dumps(forged).encode(), user_id=name), "license.issued")
        channel = await connection.channel(publisher_confirms=True)
        applications = await channel.get_exchange(stack.topology.applications, ensure=False)
        with pytest.raises(aiormq.exceptions.ChannelAccessRefused):  # a routing key that is no kind
            await applications.publish(aio_pika.Message(b"{}", user_id=name), "application.accepted.new")


async def test_a_forged_publisher_header_is_ignored_and_a_replay_acts_as_the_first_publisher(
    new_stack: Callable[..., Any],
) -> None:
    stack: Stack = await new_stack()
    await stack.start()
    tenant = await stack.tenant()
    name, url = stack.new_publisher()
    assert stack.deployment is not None
    intake = stack.deployment.deployment.user(next(b for b in _boundaries() if b.acts_for_every_tenant))
    try:
        # Not yet allowed, and claiming to be intake's copy: dead-lettered, as itself.
        early = await _submit_as(stack, url, tenant.name, headers={PUBLISHER_HEADER: intake})
        [letter] = await dead_letters_kept(stack, SUBMISSIONS.name)
        assert letter.message_id == early and str(letter.headers[PUBLISHER_HEADER]) == name

        # Allowed now: the operator's replay acts as the publisher that sent it first.
        await ok(stack, "publishers", "allow", name, tenant.name)
        await ok(stack, "dlq", "replay", early)
        application = await stack.wait_application(tenant, early, "completed")
        assert application["status"] == "completed"
        assert [action for action, _ in await _audit(stack, early)] == ["dlq.replay"]
    finally:
        broker.Management.for_amqp_url(stack.settings.amqp_url, stack.servers.management_url).delete_users([name])


def _boundaries() -> tuple[Any, ...]:
    from services.provisioning.boundaries import BOUNDARIES

    return BOUNDARIES
