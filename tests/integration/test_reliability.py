"""docs/architecture.md, "Public contract" (envelope, dead letters) and §5 (reliability): duplicates and redeliveries
have no second effect, poison messages are dead-lettered once with their reason and block
nothing, and the services ride out dropped database and broker connections by themselves."""
from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from services.status.handlers import SUBMISSIONS
from shared.contracts import routing
from tests.support.drain import queue_depths
from tests.support.stack import (
    EventTap,
    Stack,
    Tenant,
    dead_letters,
    eventually,
    new_application,
    submission,
)

RECOVERY_S = 60.0  # backoff tops out at 5 s; a reconnect cycle or two fits well inside


# ---- helpers ----------------------------------------------------------------------------


async def queue_depth(stack: Stack, name: str) -> int:
    """Messages in a queue, ready plus unacknowledged (0 once every one was settled)."""
    return (await queue_depths(stack.servers.rabbitmqctl, [name]))[name]


def _header(message: Any, name: str) -> str:
    value = (message.headers or {}).get(name)
    return value.decode() if isinstance(value, bytes) else str(value)


async def ready_everywhere(stack: Stack) -> None:
    async def probe() -> bool:
        for name in stack.services:
            try:
                response = await stack.http.get(stack.url(name, "/readyz"))
            except Exception:
                return False
            if response.status_code != 200:
                return False
        return True

    await eventually(probe, "every service to answer /readyz 200", timeout=RECOVERY_S)


async def wait_all(stack: Stack, pairs: list[tuple[Tenant, str]], timeout: float = RECOVERY_S) -> list[dict[str, Any]]:
    async def probe() -> list[dict[str, Any]] | None:
        seen = []
        for tenant, application_id in pairs:
            try:
                response = await stack.get(tenant, f"/v1/applications/{application_id}")
            except Exception:
                return None
            if response.status_code != 200 or response.json()["status"] not in ("completed", "rejected"):
                return None
            seen.append(response.json())
        return seen

    return await eventually(probe, f"{len(pairs)} applications to end", timeout=timeout)


async def contract_list(stack: Stack, tenant: Tenant) -> list[dict[str, Any]]:
    response = await stack.get(tenant, "/v1/contracts")
    assert response.status_code == 200, response.text
    return response.json()["items"]


# ---- duplicates and redeliveries --------------------------------------------------------


async def test_duplicate_submission_over_amqp_has_one_effect(stack: Stack, tenant: Tenant) -> None:
    application_id = str(uuid.uuid4())
    event = submission(tenant.name, new_application(), application_id=application_id)
    async with EventTap(stack) as tap:
        # The same CloudEvent twice, back to back (a publisher retrying after a lost confirm).
        await stack.publish_event(stack.topology.applications, "new", event)
        await stack.publish_event(stack.topology.applications, "new", event)
        application = await stack.wait_application(tenant, application_id, "completed")
        await tap.wait_for("application.completed.new", application_id=application_id)
        await stack.drained()

        # A second CloudEvent (new id) reusing the application id, even with another
        # product: were it decided, it would open a second contract.
        again = submission(tenant.name, new_application(product="arcserve-udp-9"), application_id=application_id)
        assert again["id"] != event["id"]
        await stack.publish_event(stack.topology.applications, "new", again)
        await stack.drained()

        contracts = await contract_list(stack, tenant)
        assert [c["contract_id"] for c in contracts] == [application["contract_id"]]
        assert contracts[0]["product"]["code"] == "arcserve-udp-10"
        assert len(tap.matching("application.accepted.new", application_id=application_id)) == 1
        assert len(tap.matching("application.completed.new", application_id=application_id)) == 1
        assert tap.matching("application.rejected.new", application_id=application_id) == []
        assert len(tap.matching("order_id.issued", contract_id=application["contract_id"])) == 1

    assert (await stack.wait_application(tenant, application_id)) == application
    contract = await stack.contract(tenant, application["contract_id"])
    assert [a["application_id"] for a in contract["applications"]] == [application_id]
    assert len(contract["licenses"]) == 2


async def test_redelivered_license_keys_change_nothing(stack: Stack, tenant: Tenant) -> None:
    async with EventTap(stack) as tap, EventTap(stack, exchange=routing.LICENSE_KEYS_EXCHANGE) as private:
        contract = await stack.active_contract(tenant)
        contract_id = contract["contract_id"]
        issued = await private.wait_for("license.keys", contract_id=contract_id)
        await tap.wait_for("contract.status_changed", contract_id=contract_id, to="active")
        keys = {lic["license_id"]: lic["license_key"] for lic in contract["licenses"]}
        assert stack.opened(issued) == keys

        # The very same message again (same id): the inbox absorbs it.
        await stack.publish_event(stack.keys_exchange, "license.keys", issued)
        await stack.drained()
        assert await stack.contract(tenant, contract_id) == contract

        # A new message (new id) carrying other keys for the already active licenses: ignored.
        forged = stack.license_keys(tenant.name, issued["data"]["application_id"], contract_id,
                                    {i: "00000-11111-22222-33333-44444" for i in keys})
        await stack.publish_event(stack.keys_exchange, "license.keys", forged)
        await stack.drained()
        after = await stack.contract(tenant, contract_id)
        assert {lic["license_id"]: lic["license_key"] for lic in after["licenses"]} == keys
        assert [(lic["status"], lic["charge_start_at"]) for lic in after["licenses"]] == [
            (lic["status"], lic["charge_start_at"]) for lic in contract["licenses"]
        ]
        assert after["status"] == "active" and after["applications"] == contract["applications"]

        completed = [key for key, event in tap.events
                     if key.startswith("application.completed.") and event["data"].get("contract_id") == contract_id]
        assert completed == ["application.completed.new"]
        assert len(tap.matching("contract.status_changed", contract_id=contract_id)) == 1


# ---- poison messages --------------------------------------------------------------------


async def test_poison_submissions_are_dead_lettered_once_and_block_nothing(new_stack: Callable[..., Any]) -> None:
    stack: Stack = await new_stack()
    await stack.start()
    tenant = await stack.tenant()
    exchange = stack.topology.applications

    poison: dict[str, tuple[bytes, str]] = {}  # message id → (body, expected reason prefix)

    def add(reason: str, body: bytes) -> tuple[str, bytes]:
        message_id = str(uuid.uuid4())
        poison[message_id] = (body, reason)
        return message_id, body

    invalid_id = str(uuid.uuid4())
    invalid = submission(tenant.name, {**new_application(), "desired_start_date": "2026-12-01"}, application_id=invalid_id)
    wrong_spec = submission(tenant.name, new_application(), specversion="0.3")
    unknown_type = submission(tenant.name, new_application(), type="arcserve.application.teleport")
    no_tenant = submission(None, new_application())
    stranger = submission(f"nobody-{uuid.uuid4().hex[:8]}", new_application())
    bad = [
        add("not_json", b"\x00\xffthis is not json{"),
        add("not_cloudevent", b'{"hello": "world"}'),
        add("not_cloudevent", json.dumps(wrong_spec).encode()),
        add("unknown_type", json.dumps(unknown_type).encode()),
        add("invalid_application", json.dumps(invalid).encode()),
        add("missing_tenant", json.dumps(no_tenant).encode()),
        add("unauthorized_publisher", json.dumps(stranger).encode()),  # no publisher may act for no tenant
    ]
    # The envelope ids of the parseable ones are their message ids, as a publisher sets them.
    good: list[tuple[Tenant, str]] = []
    async with EventTap(stack) as tap:
        for message_id, body in bad:
            await stack.publish_raw(exchange, "new", body, message_id=message_id)
            owner = await stack.tenant()
            application_id = str(uuid.uuid4())
            await stack.publish_event(exchange, "new", submission(owner.name, new_application(), application_id=application_id))
            good.append((owner, application_id))

        # Every good submission published among the poison ones completes.
        ended = await wait_all(stack, good)
        assert [a["status"] for a in ended] == ["completed"] * len(good)

        letters = await dead_letters(stack, SUBMISSIONS.name, len(bad))
        # The schema-invalid submission is also rejected in the open (docs/architecture.md, "Public contract").
        rejected = await tap.wait_for("application.rejected.new", application_id=invalid_id)
        assert rejected["data"]["reason"]["code"] == "invalid_application"
        assert "desired_start_date" in rejected["data"]["reason"]["message"]
        assert rejected["tenantid"] == tenant.name

    by_id = {letter.message_id: letter for letter in letters}
    assert set(by_id) == set(poison), "each poison message is dead-lettered exactly once"
    for message_id, (body, reason) in poison.items():
        letter = by_id[message_id]
        assert letter.body == body, "a dead letter keeps the message as it came"
        assert _header(letter, "x-arcserve-reason").startswith(reason), (reason, letter.headers)
        assert _header(letter, "x-arcserve-original-routing-key") == "new"
        assert _header(letter, "x-arcserve-original-exchange") == exchange
    assert "desired_start_date" in _header(by_id[bad[4][0]], "x-arcserve-reason")

    # Nothing loops: no further dead letter, nothing left in the submissions queue.
    assert await queue_depth(stack, stack.topology.dead_letter_queue(SUBMISSIONS.spec)) == 0
    await stack.drained()

    application = await stack.wait_application(tenant, invalid_id, "rejected")
    assert application["kind"] == "new" and application["contract_id"] is None
    assert application["reason"]["code"] == "invalid_application"
    assert "desired_start_date" in application["reason"]["message"]
    assert await contract_list(stack, tenant) == []


# ---- infrastructure faults --------------------------------------------------------------


async def _terminate_backends(stack: Stack) -> int:
    database = urlsplit(stack.settings.database_url).path.lstrip("/")
    admin = await asyncpg.connect(stack.servers.admin_url)
    try:
        rows = await admin.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )
    finally:
        await admin.close()
    return sum(1 for r in rows if r[0])


async def _submit_as_the_cli_does(stack: Stack, tenant: Tenant) -> str:
    """Submit with an Idempotency-Key, sending it again while the answer is 503 (a request that
    met a connection the database had just ended): never a 500, and accepted once."""
    key, body = str(uuid.uuid4()), new_application()

    async def accepted() -> str | None:
        response = await stack.submit(tenant, body, idempotency_key=key)
        if response.status_code == 503:
            return None
        assert response.status_code == 202, response.text
        return str(response.json()["application_id"])

    return str(await eventually(accepted, "the application to be accepted", timeout=RECOVERY_S))


async def test_services_reconnect_after_database_connections_drop(new_stack: Callable[..., Any]) -> None:
    stack: Stack = await new_stack(sim_new_delay_s=0.5)
    await stack.start()
    tenants = [await stack.tenant() for _ in range(6)]
    async with EventTap(stack) as tap:
        pairs = []
        for tenant in tenants[:3]:
            pairs.append((tenant, await _submit_as_the_cli_does(stack, tenant)))
        assert await _terminate_backends(stack) > 0
        # Again while the issuers work (accepted, not yet completed), with more arriving.
        await tap.wait_for("application.accepted.new", application_id=pairs[0][1])
        for tenant in tenants[3:]:
            pairs.append((tenant, await _submit_as_the_cli_does(stack, tenant)))
        assert await _terminate_backends(stack) > 0

        ended = await wait_all(stack, pairs)
        assert [a["status"] for a in ended] == ["completed"] * len(pairs)
        for (tenant, application_id), application in zip(pairs, ended):
            contract = await stack.contract(tenant, application["contract_id"])
            assert contract["status"] == "active"
            assert contract["arcserve_order_id"]["status"] == "active"
            assert len(contract["licenses"]) == 2
            assert all(lic["status"] == "active" and lic["license_key"] for lic in contract["licenses"])
            assert len(tap.matching("application.completed.new", application_id=application_id)) == 1
    await ready_everywhere(stack)


async def _broker_connections(stack: Stack) -> dict[str, str]:
    """The broker's connection pid → `connection_name`, for the connections of one stack
    (each service names its connection with the stack's topology prefix)."""
    prefix = stack.settings.topology_prefix
    out = await stack.servers.rabbitmqctl("list_connections", "-q", "--no-table-headers", "pid", "client_properties")
    marker = '{"connection_name","'
    found = {}
    for line in out.splitlines():
        pid, _, properties = line.partition("\t")
        start = properties.find(marker)
        name = properties[start + len(marker):].split('"', 1)[0] if start >= 0 else ""
        if name.startswith(prefix):
            found[pid] = name.removeprefix(prefix)
    return found


async def test_services_reconnect_after_broker_connections_drop(new_stack: Callable[..., Any]) -> None:
    stack: Stack = await new_stack(sim_new_delay_s=1.0)
    await stack.start()
    tenant = await stack.tenant()
    first = await stack.apply(tenant, new_application())
    assert first["status"] == "completed"
    # One more in flight when the connections drop: accepted, its keys not yet issued.
    busy = await stack.tenant()
    response = await stack.submit(busy, new_application())
    assert response.status_code == 202, response.text
    in_flight = response.json()["application_id"]
    assert (await stack.wait_application(busy, in_flight, "processing"))["status"] == "processing"

    connections = await eventually(lambda: _broker_connections(stack), "the stack's connections in rabbitmqctl")
    service_names = sorted(service.name for service in stack.services.values())
    assert sorted(connections.values()) == service_names, connections
    for pid in connections:
        await stack.servers.rabbitmqctl("close_connection", pid, "test: dropping the services' broker connections")

    # The services reconnect by themselves (new connections, from new local ports) …
    async def reconnected() -> dict[str, str] | None:
        fresh = await _broker_connections(stack)
        if set(fresh) & set(connections):
            return None  # an old connection is still listed
        return fresh if sorted(fresh.values()) == service_names else None

    await eventually(reconnected, "every service to reconnect to the broker", timeout=RECOVERY_S)
    await ready_everywhere(stack)

    # … and new applications go all the way through again.
    pairs = []
    for owner in [tenant] + [await stack.tenant() for _ in range(2)]:
        body = new_application(product="arcserve-udp-9") if owner is tenant else new_application()
        response = await stack.submit(owner, body)
        assert response.status_code == 202, response.text
        pairs.append((owner, response.json()["application_id"]))
    ended = await wait_all(stack, pairs + [(busy, in_flight)])
    assert [a["status"] for a in ended] == ["completed"] * (len(pairs) + 1)
    contract = await stack.contract(tenant, ended[0]["contract_id"])
    assert contract["status"] == "active" and contract["arcserve_order_id"]["status"] == "active"


async def test_one_application_id_in_two_messages_at_once_is_decided_once(stack: Stack) -> None:
    """Two messages naming one application id, in hand at the same time (prefetch > 1):
    one decides, the other finds the decision; the contract is never overwritten."""
    tenants = [await stack.tenant() for _ in range(10)]
    async with EventTap(stack, "application.accepted.new") as tap:
        pairs = []
        for tenant in tenants:
            application_id = str(uuid.uuid4())
            first = submission(tenant.name, new_application(product="arcserve-udp-10"), application_id=application_id)
            second = submission(tenant.name, new_application(product="arcserve-udp-9"), application_id=application_id)
            pairs.append((tenant, application_id, first, second))
        await asyncio.gather(*(
            stack.publish_event(stack.topology.applications, "new", message)
            for _, _, first, second in pairs for message in (first, second)
        ))
        for tenant, application_id, _, _ in pairs:
            application = await stack.wait_application(tenant, application_id, "completed")
            await tap.wait_for("application.accepted.new", application_id=application_id)
            contracts = (await stack.get(tenant, "/v1/contracts")).json()["items"]
            assert [c["contract_id"] for c in contracts] == [application["contract_id"]]
            [accepted] = tap.matching("application.accepted.new", application_id=application_id)
            assert contracts[0]["product"]["code"] == accepted["data"]["product"]
