"""R1, R9, R11, R12 end to end: a new application becomes an active contract with keys and
an order ID; cancelling every key cancels the contract and its order ID."""
from __future__ import annotations

import re
from datetime import datetime

from tests.support.stack import EventTap, Stack, Tenant, new_application

KEY = re.compile(r"^[0-9A-HJKMNP-TV-Z]{5}(-[0-9A-HJKMNP-TV-Z]{5}){4}$")
ORDER_ID = re.compile(r"^ARC-\d{8}-[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}$")

LINES = [
    {"usage": "virtual_server", "license_type": "per_server", "quantity": 2},
    {"usage": "bare_metal", "license_type": "per_server", "quantity": 1},
    {"usage": "hypervisor", "license_type": "dedicated_hypervisor", "quantity": 1, "vm_count": 10},
]


async def test_new_application_becomes_an_active_contract_with_keys_and_order_id(stack: Stack, tenant: Tenant) -> None:
    async with EventTap(stack) as tap:
        response = await stack.submit(tenant, new_application(LINES))
        assert response.status_code == 202
        body = response.json()
        assert body["status"] == "received"
        assert response.headers["location"] == f"/v1/applications/{body['application_id']}"

        application = await stack.wait_application(tenant, body["application_id"], "completed")
        contract = await stack.contract(tenant, application["contract_id"])
        await tap.wait_for("contract.status_changed", contract_id=contract["contract_id"], to="active")

    # R1: one key per unit, every key active, one order ID.
    assert contract["status"] == "active" and contract["status_label"] == "提供中"
    assert len(contract["licenses"]) == 4
    assert all(lic["status"] == "active" and KEY.match(lic["license_key"]) for lic in contract["licenses"])
    assert len({lic["license_key"] for lic in contract["licenses"]}) == 4
    assert ORDER_ID.match(contract["arcserve_order_id"]["value"])
    assert contract["arcserve_order_id"]["status"] == "active"
    # R11: product, version, support desk, charges, history.
    assert contract["product"] == {"code": "arcserve-udp-10", "name": "Arcserve Unified Data Protection", "version": "10.0"}
    assert contract["support_desk"]["name"]
    assert all(lic["charge_start_at"] and lic["charge_end_at"] is None for lic in contract["licenses"])
    hypervisor = [lic for lic in contract["licenses"] if lic["license_type"] == "dedicated_hypervisor"]
    assert hypervisor[0]["vm_count"] == 10
    assert [a["application_id"] for a in contract["applications"]] == [body["application_id"]]
    # R12: five business days, shown, not slept.
    submitted = datetime.fromisoformat(application["submitted_at"])
    expected = datetime.fromisoformat(application["expected_completion_at"])
    assert 5 <= (expected - submitted).days <= 14
    assert application["completed_at"] is not None and application["reason"] is None

    # The events carry the CloudEvents envelope of docs/architecture.md, "Public contract".
    accepted = tap.matching("application.accepted.new", application_id=body["application_id"])
    assert len(accepted) == 1
    event = accepted[0]
    assert event["specversion"] == "1.0" and event["type"] == "arcserve.application.accepted.new"
    assert event["source"] == "urn:arcserve:status" and event["tenantid"] == tenant.name
    assert event["subject"] == contract["contract_id"]
    assert len(tap.matching("order_id.issued", contract_id=contract["contract_id"])) == 1
    assert len(tap.matching("application.completed.new", application_id=body["application_id"])) == 1


async def test_full_cancellation_cancels_contract_and_order_id(stack: Stack, tenant: Tenant) -> None:
    contract = await stack.active_contract(tenant, LINES)
    async with EventTap(stack) as tap:
        application = await stack.apply(tenant, {"kind": "cancellation", "contract_id": contract["contract_id"], "scope": "all"})
        await tap.wait_for("order_id.cancelled", contract_id=contract["contract_id"])
    assert application["status"] == "completed"
    assert application["expected_completion_at"] == application["submitted_at"]  # R12: immediate

    after = await stack.contract(tenant, contract["contract_id"])
    assert after["status"] == "cancelled" and after["status_label"] == "廃止済"  # R9
    assert after["arcserve_order_id"] == {"value": contract["arcserve_order_id"]["value"], "status": "cancelled"}
    assert all(lic["status"] == "cancelled" and lic["charge_end_at"] for lic in after["licenses"])
    assert len(tap.matching("license.revoked", contract_id=contract["contract_id"])) == 1
    assert tap.matching("contract.status_changed", contract_id=contract["contract_id"], to="cancelled")
