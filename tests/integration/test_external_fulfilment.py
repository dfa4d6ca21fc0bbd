"""Fulfilment by another system of the provider (`ARCSERVE_FULFILMENT=external`; docs/architecture.md,
"Fulfilment"), on the real broker and database, as that system sees it: its own broker user
(`python -m services.provisioning system USER --fulfiller`), tasks from its queue, results
published with its `user_id`. Results count only from a user allowed for fulfilment, only
for a task that is open, and only when they fit the task; Arcserve's refusal rejects the
application with its reason."""
from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import aio_pika
import pytest

from services.license_issuer.handlers import RESULTS
from services.provisioning import broker
from shared.contracts.envelope import CONTENT_TYPE
from shared.issuance import simulated_license_key
from shared.messaging.consumer import REASON_HEADER
from tests.support.stack import Stack, Tenant, dead_letters, eventually, new_application
from tests.support.tools import ROOT, ok, system_user

KEYS = ["7K2QD-M9XHT-0WB4R-PZ6NC-E3VJA", "QX4RT-H8M2D-W3NCK-9PZ5V-BJ0E7", "M3T9C-XW2QK-7RD4H-PN8VB-0ZE5J"]


class Fulfiller:
    """The provider's order system: reads tasks from its queue, publishes results as itself."""

    def __init__(self, stack: Stack, name: str, url: str):
        self.stack, self.name, self.url = stack, name, url

    async def next_task(self, application_id: str, of: str = "requested") -> dict[str, Any]:
        """The `fulfilment.<of>` event of that application, from this system's queue (what
        comes before it is taken and dropped)."""
        connection = await aio_pika.connect(self.url)
        async with connection:
            channel = await connection.channel()
            queue = await channel.get_queue(broker.fulfilment_queue(self.name), ensure=False)

            async def probe() -> dict[str, Any] | None:
                message = await queue.get(fail=False)
                if message is None:
                    return None
                await message.ack()
                event: dict[str, Any] = json.loads(message.body)
                wanted = event["type"] == f"arcserve.fulfilment.{of}" and event["data"]["application_id"] == application_id
                return event if wanted else None

            found: dict[str, Any] = await eventually(probe, f"the {of} of application {application_id}")
            return found

    async def publish(self, tenant: str, result: str, data: dict[str, Any]) -> str:
        message_id = str(uuid.uuid4())
        event = {"specversion": "1.0", "id": message_id, "source": "urn:example:order-system",
                 "type": f"arcserve.fulfilment.{result}", "tenantid": tenant, "data": data}
        connection = await aio_pika.connect(self.url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.get_exchange(self.stack.topology.name("arcserve.fulfilment"), ensure=False)
            await exchange.publish(aio_pika.Message(
                json.dumps(event).encode(), content_type=CONTENT_TYPE, message_id=message_id,
                user_id=urlsplit(self.url).username, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                f"fulfilment.{result}")
        return message_id


@pytest.fixture
async def external(new_stack: Callable[..., Any]) -> tuple[Stack, Fulfiller, Fulfiller]:
    """A stack fulfilled by another system, that system (allowed), and one not allowed."""
    stack: Stack = await new_stack(fulfilment="external")
    await stack.start()
    allowed, other = Fulfiller(stack, *stack.new_fulfiller()), Fulfiller(stack, *stack.new_fulfiller())
    said = await ok(stack, "publishers", "allow-fulfilment", allowed.name)
    assert said.strip() == f"{allowed.name} may publish fulfilment results"
    return stack, allowed, other


async def _status(stack: Stack, tenant: Tenant, application_id: str) -> str:
    status: str = (await stack.get(tenant, f"/v1/applications/{application_id}")).json()["status"]
    return status


async def _handled(stack: Stack, tenant: Tenant, message_id: str) -> None:
    """The result was taken and done with (its inbox knows it by tenant and id, as the gate's does)."""
    await eventually(lambda: stack.handled(f"{tenant.name}/{message_id}", RESULTS.name), f"result {message_id} handled")


async def test_results_from_the_allowed_system_complete_applications_and_nothing_else_does(
    external: tuple[Stack, Fulfiller, Fulfiller],
) -> None:
    stack, system, other = external
    tenant = await stack.tenant()
    response = await stack.submit(tenant, new_application([
        {"usage": "virtual_server", "license_type": "per_server", "quantity": 2}]))
    application_id = response.json()["application_id"]

    task = (await system.next_task(application_id))["data"]
    assert task["tenant"] == tenant.name and task["kind"] == "new" and task["due_at"] and task["submitted_at"]
    assert task["needs"]["arcserve_order_id"] is True
    licenses = [lic["license_id"] for lic in task["needs"]["licenses"]]
    assert len(licenses) == 2 and all(lic["usage"] == "virtual_server" for lic in task["needs"]["licenses"])
    assert await _status(stack, tenant, application_id) == "processing"

    fulfilled = {"application_id": application_id, "arcserve_order_id": "arc-20261207-ab12c",
                 "license_keys": [{"license_id": licenses[0], "license_key": KEYS[0].lower()},
                                  {"license_id": licenses[1], "license_key": f"  {KEYS[1]} "}]}
    # From a user that is not allowed for fulfilment: dead-lettered, nothing done.
    await other.publish(tenant.name, "fulfilled", fulfilled)
    refused, = await dead_letters(stack, RESULTS.name, 1)
    assert str((refused.headers or {})[REASON_HEADER]).startswith("unauthorized_publisher")
    # From the allowed one, but not fitting its task: dead-lettered naming the field, never the key.
    await system.publish(tenant.name, "fulfilled", {**fulfilled, "license_keys": fulfilled["license_keys"][:1]})
    invalid, = await dead_letters(stack, RESULTS.name, 1)
    reason = str((invalid.headers or {})[REASON_HEADER])
    assert reason.startswith("invalid_result") and f"missing: the key of license {licenses[1]}" in reason
    assert KEYS[0] not in reason and KEYS[0].lower() not in reason
    # For an application that has no task: dead-lettered.
    await system.publish(tenant.name, "fulfilled", {**fulfilled, "application_id": str(uuid.uuid4())})
    unknown, = await dead_letters(stack, RESULTS.name, 1)
    assert str((unknown.headers or {})[REASON_HEADER]).startswith("unknown_task")
    assert await _status(stack, tenant, application_id) == "processing"

    await system.publish(tenant.name, "fulfilled", fulfilled)
    application = await stack.wait_application(tenant, application_id, "completed")
    contract = await stack.contract(tenant, application["contract_id"])
    assert contract["status"] == "active" and contract["arcserve_order_id"]["value"] == "ARC-20261207-AB12C"
    assert {lic["license_id"]: lic["license_key"] for lic in contract["licenses"]} == dict(zip(licenses, KEYS[:2]))

    # A second result for the closed task changes nothing.
    late = await system.publish(tenant.name, "fulfilled", {**fulfilled, "arcserve_order_id": "ARC-OTHER",
        "license_keys": [{"license_id": licenses[0], "license_key": KEYS[2]},
                         {"license_id": licenses[1], "license_key": KEYS[2].replace("M", "N")}]})
    await _handled(stack, tenant, late)
    rejected_late = await system.publish(tenant.name, "rejected", {"application_id": application_id, "reason": "late"})
    await _handled(stack, tenant, rejected_late)
    assert await stack.contract(tenant, application["contract_id"]) == contract

    # An addition needs keys only, and a key Arcserve delivered once is not taken again.
    addition = await stack.submit(tenant, {"kind": "addition", "contract_id": contract["contract_id"], "licenses": [
        {"usage": "bare_metal", "license_type": "per_server", "quantity": 1}]})
    added_id = addition.json()["application_id"]
    added = (await system.next_task(added_id))["data"]
    assert added["kind"] == "addition" and added["needs"]["arcserve_order_id"] is False
    new_license = added["needs"]["licenses"][0]["license_id"]
    await system.publish(tenant.name, "fulfilled", {"application_id": added_id, "license_keys": [
        {"license_id": new_license, "license_key": KEYS[0]}]})
    used, = await dead_letters(stack, RESULTS.name, 1)
    assert "license_keys.0.license_key: already used for another license" in str((used.headers or {})[REASON_HEADER])
    await system.publish(tenant.name, "fulfilled", {"application_id": added_id, "license_keys": [
        {"license_id": new_license, "license_key": KEYS[2]}]})
    await stack.wait_application(tenant, added_id, "completed")
    keys = {lic["license_id"]: lic["license_key"] for lic in (await stack.contract(tenant, contract["contract_id"]))["licenses"]}
    assert keys == {**dict(zip(licenses, KEYS[:2])), new_license: KEYS[2]}


async def test_arcserve_s_refusal_rejects_the_application_with_its_reason(
    external: tuple[Stack, Fulfiller, Fulfiller],
) -> None:
    stack, system, _ = external
    tenant: Tenant = await stack.tenant()
    first = (await stack.submit(tenant, new_application())).json()["application_id"]
    await system.next_task(first)
    await system.publish(tenant.name, "rejected", {"application_id": first, "reason": "ライセンス在庫がありません"})
    refused = await stack.wait_application(tenant, first, "rejected")
    assert refused["reason"] == {"code": "vendor_refused", "message": "ライセンス在庫がありません"}
    gone = await stack.contract(tenant, refused["contract_id"])
    assert gone["status"] == "cancelled" and all(lic["status"] == "cancelled" and lic["license_key"] is None
                                                 and lic["charge_start_at"] is None for lic in gone["licenses"])

    # No live contract is left: the tenant applies again (R2), and this one is fulfilled.
    second = (await stack.submit(tenant, new_application())).json()["application_id"]
    task = (await system.next_task(second))["data"]
    await system.publish(tenant.name, "fulfilled", {"application_id": second, "arcserve_order_id": "ARC-1234",
        "license_keys": [{"license_id": lic["license_id"], "license_key": simulated_license_key()}
                         for lic in task["needs"]["licenses"]]})
    contract_id = (await stack.wait_application(tenant, second, "completed"))["contract_id"]
    before = await stack.contract(tenant, contract_id)

    # A refused addition leaves the contract active as it was.
    addition = (await stack.submit(tenant, {"kind": "addition", "contract_id": contract_id, "licenses": [
        {"usage": "bare_metal", "license_type": "per_server", "quantity": 1}]})).json()["application_id"]
    await system.next_task(addition)
    await system.publish(tenant.name, "rejected", {"application_id": addition, "reason": "out of stock"})
    assert (await stack.wait_application(tenant, addition, "rejected"))["reason"]["code"] == "vendor_refused"
    after = await stack.contract(tenant, contract_id)
    assert after["status"] == "active"
    active = [lic for lic in after["licenses"] if lic["status"] == "active"]
    assert active == [lic for lic in before["licenses"]]


async def test_a_cancellation_is_immediate_for_the_tenant_and_announced_again_until_arcserve_confirms(
    new_stack: Callable[..., Any],
) -> None:
    stack: Stack = await new_stack(fulfilment="external", revocation_retry_s=0.5)
    await stack.start()
    system, other = Fulfiller(stack, *stack.new_fulfiller()), Fulfiller(stack, *stack.new_fulfiller())
    await ok(stack, "publishers", "allow-fulfilment", system.name)
    tenant = await stack.tenant()
    applied = (await stack.submit(tenant, new_application())).json()["application_id"]
    task = (await system.next_task(applied))["data"]
    licenses = [lic["license_id"] for lic in task["needs"]["licenses"]]
    await system.publish(tenant.name, "fulfilled", {"application_id": applied, "arcserve_order_id": "ARC-77",
        "license_keys": [{"license_id": lic, "license_key": key} for lic, key in zip(licenses, KEYS, strict=False)]})
    contract_id = (await stack.wait_application(tenant, applied, "completed"))["contract_id"]

    cancelled = (await stack.submit(tenant, {"kind": "cancellation", "contract_id": contract_id, "scope": "all"})).json()
    # The tenant's contract is cancelled without waiting for Arcserve (R8, R9).
    await stack.wait_application(tenant, cancelled["application_id"], "completed")
    assert (await stack.contract(tenant, contract_id))["status"] == "cancelled"

    first = (await system.next_task(cancelled["application_id"], "revocation_requested"))["data"]
    assert first["tenant"] == tenant.name and first["contract_id"] == contract_id and first["attempt"] == 1
    assert first["arcserve_order_id"] == "ARC-77"
    assert first["licenses"] == [{"license_id": lic, "key_ends_with": key[-5:]}
                                 for lic, key in zip(licenses, KEYS, strict=False)]
    assert not any(key in json.dumps(first) for key in KEYS)  # a key's last group, never the key
    # Not confirmed: announced again, and again.
    again = (await system.next_task(cancelled["application_id"], "revocation_requested"))["data"]
    assert again["attempt"] >= 2 and {**again, "attempt": 1} == first

    await other.publish(tenant.name, "revocation_confirmed", {"application_id": cancelled["application_id"]})
    refused, = await dead_letters(stack, RESULTS.name, 1)
    assert str((refused.headers or {})[REASON_HEADER]).startswith("unauthorized_publisher")
    await system.publish(tenant.name, "revocation_confirmed", {"application_id": str(uuid.uuid4())})
    unknown, = await dead_letters(stack, RESULTS.name, 1)
    assert str((unknown.headers or {})[REASON_HEADER]).startswith("unknown_task: no revocation")

    confirmed = await system.publish(tenant.name, "revocation_confirmed", {"application_id": cancelled["application_id"]})
    await _handled(stack, tenant, confirmed)

    async def settled() -> bool:
        metrics = (await stack.http.get(stack.operator_url("license_issuer", "/metrics"))).text
        return 'arcserve_revocations_open{source="external"} 0.0' in metrics  # this stack's, read at scrape time

    await eventually(settled, "the revocation to be confirmed")


async def test_the_example_order_system_fulfils_a_task_as_the_operator_onboarded_it(
    new_stack: Callable[..., Any],
) -> None:
    """docs/examples/fulfil_tasks.py, run as the provider's order system runs it: a process of
    its own, as the broker user `python -m services.provisioning system USER --fulfiller` made,
    allowed by `python -m services.tools.publishers allow-fulfilment USER`."""
    stack: Stack = await new_stack(fulfilment="external")
    await stack.start()
    assert stack.deployment is not None
    user = f"{stack.settings.topology_prefix}order-system-{uuid.uuid4().hex[:6]}"
    stack.deployment.extra_users.append(user)
    stack.deployment.extra_queues.append(broker.fulfilment_queue(user))
    url = await system_user(stack, user, "--fulfiller")
    await ok(stack, "publishers", "allow-fulfilment", user)
    tenant = await stack.tenant()
    application_id = (await stack.submit(tenant, new_application())).json()["application_id"]

    async def example(answer: Callable[[dict[str, Any]], bytes]) -> tuple[dict[str, Any], str]:
        """One run of the example: what it printed of the message it took, and what it said."""
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "docs" / "examples" / "fulfil_tasks.py"), cwd=ROOT,
            env={**os.environ, "SYSTEM_AMQP_URL": url, "ARCSERVE_TOPOLOGY_PREFIX": stack.settings.topology_prefix},
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        assert process.stdin is not None and process.stdout is not None and process.stderr is not None
        taken = json.loads(await asyncio.wait_for(process.stdout.readline(), timeout=30))
        process.stdin.write(answer(taken) + b"\n")
        await process.stdin.drain()
        assert await asyncio.wait_for(process.wait(), timeout=30) == 0, await process.stderr.read()
        return taken, (await process.stderr.read()).decode()

    keys: dict[str, str] = {}

    def delivered(task: dict[str, Any]) -> bytes:
        assert task["type"] == "arcserve.fulfilment.requested" and task["data"]["application_id"] == application_id
        keys.update({lic["license_id"]: simulated_license_key() for lic in task["data"]["needs"]["licenses"]})
        return json.dumps({"arcserve_order_id": "ARC-20261207-EXAMPLE", "license_keys": [
            {"license_id": license_id, "license_key": key} for license_id, key in keys.items()]}).encode()

    _, said = await example(delivered)
    assert f"published arcserve.fulfilment.fulfilled for application {application_id}" in said
    application = await stack.wait_application(tenant, application_id, "completed")
    contract = await stack.contract(tenant, application["contract_id"])
    assert contract["arcserve_order_id"]["value"] == "ARC-20261207-EXAMPLE"
    assert {lic["license_id"]: lic["license_key"] for lic in contract["licenses"]} == keys

    # The tenant cancels; the order system revokes at Arcserve, then confirms.
    cancellation = (await stack.submit(tenant, {"kind": "cancellation", "contract_id": contract["contract_id"],
                                                "scope": "all"})).json()["application_id"]
    revocation, said = await example(lambda _: b"revoked")
    assert revocation["type"] == "arcserve.fulfilment.revocation_requested"
    assert revocation["data"]["application_id"] == cancellation
    assert revocation["data"]["arcserve_order_id"] == "ARC-20261207-EXAMPLE"
    assert f"published arcserve.fulfilment.revocation_confirmed for application {cancellation}" in said

    async def confirmed() -> bool:
        metrics = (await stack.http.get(stack.operator_url("license_issuer", "/metrics"))).text
        return 'arcserve_revocations_open{source="external"} 0.0' in metrics

    await eventually(confirmed, "the revocation to be confirmed")


async def test_a_task_past_its_due_time_is_counted_and_logged_once(
    external: tuple[Stack, Fulfiller, Fulfiller], caplog: pytest.LogCaptureFixture,
) -> None:
    stack, system, _ = external
    tenant = await stack.tenant()
    application_id = (await stack.submit(tenant, new_application())).json()["application_id"]
    await system.next_task(application_id)
    # An addition accepted while the license issuer was away for longer than R12's 30 minutes:
    # its task is due already when the issuer records it.
    late = str(uuid.uuid4())
    caplog.set_level(logging.WARNING, logger="services.license_issuer.overdue")
    await stack.publish_event(stack.topology.events, "application.accepted.addition", {
        "specversion": "1.0", "id": str(uuid.uuid4()), "source": "urn:arcserve:status",
        "type": "arcserve.application.accepted.addition", "tenantid": tenant.name, "data": {
            "application_id": late, "contract_id": str(uuid.uuid4()), "kind": "addition", "product": "arcserve-udp-10",
            "licenses": [{"license_id": str(uuid.uuid4()), "usage": "bare_metal", "license_type": "per_server",
                          "status": "preparing"}],
            "expected_completion_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat()}})
    await system.next_task(late)

    def logged() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.getMessage().startswith("fulfilment task overdue: addition")]

    await eventually(lambda: _async(logged()), "the overdue task's log line")
    metrics = (await stack.http.get(stack.operator_url("license_issuer", "/metrics"))).text
    assert 'arcserve_fulfilment_overdue{kind="addition",source="external"} 1.0' in metrics
    assert 'arcserve_fulfilment_open{kind="new",source="external"} 1.0' in metrics
    assert 'arcserve_fulfilment_overdue{kind="new",source="external"} 0.0' in metrics
    await stack.stop("license_issuer")
    await stack.start("license_issuer")
    assert len(logged()) == 1  # once, however often the watch looks again


async def _async(value: Any) -> Any:
    return value
