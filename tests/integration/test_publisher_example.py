"""The publisher example for other systems (docs/examples/publish_submission.py), run as
another system runs it: a process of its own, as two broker users made by the operator's
command (`python -m services.provisioning system USER --publisher`, and `system USER-events
--events-reader`), the publisher allowed for one tenant (`python -m services.tools.publishers
allow`); and why it takes two."""
from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aio_pika
import aiormq
import pytest

from services.provisioning import broker
from shared.contracts import routing
from tests.support.stack import Stack, Tenant, eventually
from tests.support.tools import ROOT, ok, run_python, run_tool, system_user

EXAMPLE = ROOT / "docs" / "examples" / "publish_submission.py"


@dataclass
class System:
    user: str  # its publisher
    amqp_url: str  # its publisher's, with its own credentials
    reader: str  # its events reader
    events_amqp_url: str


@pytest.fixture
async def system(stack: Stack) -> AsyncIterator[System]:
    """Another system that submits and reads the outcome: a publisher and an events reader."""
    user = f"{stack.settings.topology_prefix}billing-{uuid.uuid4().hex[:6]}"
    reader = f"{user}-events"
    try:
        url = await system_user(stack, user, "--publisher")
        events_url = await system_user(stack, reader, "--events-reader")
        yield System(user, url, reader, events_url)
    finally:
        broker.Management.for_amqp_url(stack.settings.amqp_url, stack.servers.management_url).delete_users([user, reader])
        connection = await aio_pika.connect(stack.settings.amqp_url)
        async with connection:
            await (await connection.channel()).queue_delete(broker.events_queue(reader))


async def _example(stack: Stack, system: System, tenant: Tenant, *args: str) -> tuple[int, str, str]:
    return await run_python(str(EXAMPLE), tenant.name, *args, env={
        "SYSTEM_AMQP_URL": system.amqp_url, "SYSTEM_EVENTS_AMQP_URL": system.events_amqp_url,
        "ARCSERVE_TOPOLOGY_PREFIX": stack.settings.topology_prefix})


async def test_the_example_submits_for_an_allowed_tenant_and_prints_the_outcome(
    stack: Stack, system: System, tenant: Tenant
) -> None:
    await ok(stack, "publishers", "allow", system.user, tenant.name)
    code, out, err = await _example(stack, system, tenant)
    assert code == 0, (out, err)
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["type"] for e in events] == ["arcserve.application.accepted.new", "arcserve.application.completed.new"]
    application_id = events[0]["data"]["application_id"]
    assert {e["data"]["application_id"] for e in events} == {application_id}
    assert {e["tenantid"] for e in events} == {tenant.name}

    # The tenant sees it through the API, submitted by the system.
    application = (await stack.get(tenant, f"/v1/applications/{application_id}")).json()
    assert application["status"] == "completed"
    assert application["submitted_by"] == {"kind": "publisher", "id": system.user}
    assert (await stack.contract(tenant, application["contract_id"]))["status"] == "active"

    # The same in binary content mode (another product: R2), as the integrator's choice.
    code, out, err = await _example(stack, system, tenant, "--product", "arcserve-udp-9", "--mode", "binary")
    assert code == 0, (out, err)
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["type"] for e in events] == ["arcserve.application.accepted.new", "arcserve.application.completed.new"]
    application = (await stack.get(tenant, f"/v1/applications/{events[0]['data']['application_id']}")).json()
    assert (application["status"], application["submitted_by"]) == ("completed", {"kind": "publisher", "id": system.user})

    # A second live contract for the same product is refused (R2), and the example says why.
    code, out, err = await _example(stack, system, tenant)
    assert code == 1, (out, err)
    assert json.loads(out.splitlines()[-1])["type"] == "arcserve.application.rejected.new"
    assert "rejected: contract_exists: " in err


async def test_the_example_for_a_tenant_it_is_not_allowed_for_sees_no_outcome_and_has_no_effect(
    stack: Stack, system: System, tenant: Tenant
) -> None:
    code, out, err = await _example(stack, system, tenant, "--timeout", "2")
    assert code == 1 and out == "", (out, err)
    found = re.search(r"no outcome for application (\S+) within 2 s", err)
    assert found, err
    application_id = found.group(1)

    # The operator sees why; the tenant sees nothing.
    async def letter() -> str | None:
        code, out, _ = await run_tool(stack, "dlq", "show", application_id)
        return out if code == 0 else None

    try:
        assert f"reason:           unauthorized_publisher: {system.user} may not act for tenant" in await eventually(
            letter, f"the dead letter of {application_id}")
        assert (await stack.get(tenant, f"/v1/applications/{application_id}")).status_code == 404
    finally:  # the stack is shared: leave no dead letter for another test to take
        await run_tool(stack, "dlq", "purge", application_id)


async def test_the_systems_user_may_bind_its_queue_to_event_routing_keys_only_and_configure_nothing(
    stack: Stack, system: System
) -> None:
    queue = broker.events_queue(system.reader)
    refused = {
        "a wildcard binding": (stack.topology.events, "#"),
        "a binding to the submissions": (stack.topology.applications, "new"),
        "a binding to the license keys": (stack.topology.name(routing.LICENSE_KEYS_EXCHANGE), "license.keys"),
    }
    connection = await aio_pika.connect(system.events_amqp_url)
    async with connection:
        await (await (await connection.channel()).get_queue(queue)).bind(stack.topology.events, "license.issued")
        for what, (exchange, key) in refused.items():
            channel = await connection.channel()
            with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
                await (await channel.get_queue(queue)).bind(exchange, key)
                pytest.fail(f"{what} was allowed")
        # It configures nothing, not even its own queue: one that could be declared again with
        # arcserve.applications as its dead-letter exchange would re-route what it reads into
        # the submissions.
        for what, attempt in {
            "declaring a queue": lambda channel: channel.declare_queue(f"{system.reader}.mine", exclusive=True),
            "deleting its queue": lambda channel: channel.queue_delete(queue),
        }.items():
            channel = await connection.channel()
            with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
                await attempt(channel)
                pytest.fail(f"{what} was allowed")


async def test_no_user_of_a_system_can_bind_the_events_into_the_submissions(stack: Stack, system: System) -> None:
    """The outside test's finding: one user that could write the submissions and read the
    events bound `arcserve.events` into `arcserve.applications`, and every tenant's events
    flowed into the gate. Neither of a system's two users can, and the operator's command
    refuses to make one user that could."""
    for url in (system.amqp_url, system.events_amqp_url):
        connection = await aio_pika.connect(url)
        async with connection:
            channel = await connection.channel()
            applications = await channel.get_exchange(stack.topology.applications, ensure=False)
            with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
                await applications.bind(stack.topology.events, "application.accepted.cancellation")
                pytest.fail(f"{url.split('@')[0].split('//')[1].split(':')[0]} bound the events into the submissions")

    env = {"AMQP_URL": stack.settings.amqp_url, "RABBITMQ_MANAGEMENT_URL": stack.servers.management_url,
           "ARCSERVE_TOPOLOGY_PREFIX": stack.settings.topology_prefix}
    code, out, err = await run_python("-m", "services.provisioning", "system", system.user, "--publisher", "--events-reader",
                                env=env)
    assert code == 2 and "could bind one exchange into the other" in err, (out, err)
    # Nor one role after the other, in either order: nothing is changed.
    for user, role in ((system.user, "--events-reader"), (system.reader, "--publisher")):
        code, out, err = await run_python("-m", "services.provisioning", "system", user, role, env=env)
        assert code == 1 and f"could bind {stack.topology.events} into {stack.topology.applications}" in err, (out, err)
    management = broker.Management.for_amqp_url(stack.settings.amqp_url, stack.servers.management_url)
    for user in (system.user, system.reader):
        assert not broker.combines_publishing_and_reading(stack.topology, management.permissions_of(user))

