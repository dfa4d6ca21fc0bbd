"""The rules of docs/architecture.md, "Rules" end to end: intake HTTP → RabbitMQ → status → workers → status
HTTP. Each test reads as a rule and asserts only what a tenant would notice: the HTTP
answers, the application (status, reason code, times) and the contract's detail view.

Nothing sleeps to synchronize: the tests poll the read API (`wait_application`,
`eventually`) and slow the simulator down (`sim_new_delay_s`, `sim_change_delay_s`) on a
private stack where a rule is about something still in progress."""
from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from shared.contracts import routing
from tests.support.stack import EventTap, Stack, Tenant, eventually, new_application

# ---- helpers ---------------------------------------------------------------------------------

VIRTUAL = {"usage": "virtual_server", "license_type": "per_server", "quantity": 2}
DEDICATED = {"usage": "hypervisor", "license_type": "dedicated_hypervisor", "quantity": 1, "vm_count": 10}
HYPERVISOR_PER_SERVER = {"usage": "hypervisor", "license_type": "per_server", "quantity": 1}
# Two virtual-server keys and two hypervisor-platform keys (one of each hypervisor type).
LINES = [VIRTUAL, DEDICATED, HYPERVISOR_PER_SERVER]
NEW_CONTACT = {"email": "billing@example.jp", "company_name": "Example Holdings K.K."}
SLOW_S = 1.5  # the simulator's delay where a rule is about something still in progress
KINDS_ON_A_CONTRACT = ["addition", "vm_count_increase", "contact_change", "cancellation"]


def addition(contract_id: str, lines: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"kind": "addition", "contract_id": contract_id,
            "licenses": lines or [{"usage": "virtual_server", "license_type": "per_server", "quantity": 1}]}


def vm_count_increase(contract_id: str, license_id: str, additional_vms: int = 5) -> dict[str, Any]:
    return {"kind": "vm_count_increase", "contract_id": contract_id, "license_id": license_id,
            "additional_vms": additional_vms}


def cancellation(contract_id: str, license_ids: list[str] | None = None) -> dict[str, Any]:
    if license_ids is None:
        return {"kind": "cancellation", "contract_id": contract_id, "scope": "all"}
    return {"kind": "cancellation", "contract_id": contract_id, "license_ids": license_ids}


def contact_change(contract_id: str, contact: dict[str, str] = NEW_CONTACT) -> dict[str, Any]:
    return {"kind": "contact_change", "contract_id": contract_id, "contact": contact}


def keys(contract: dict[str, Any], **fields: Any) -> list[dict[str, Any]]:
    """The contract's licenses whose fields equal `fields`."""
    return [lic for lic in contract["licenses"] if all(lic.get(k) == v for k, v in fields.items())]


def key(contract: dict[str, Any], **fields: Any) -> dict[str, Any]:
    found = keys(contract, **fields)
    assert found, f"no license with {fields} in {contract['licenses']}"
    return found[0]


def body_for(kind: str, contract: dict[str, Any]) -> dict[str, Any]:
    """A well-formed application of `kind` on `contract` (made with LINES)."""
    cid = contract["contract_id"]
    return {
        "addition": lambda: addition(cid),
        "vm_count_increase": lambda: vm_count_increase(cid, key(contract, license_type="dedicated_hypervisor")["license_id"]),
        "contact_change": lambda: contact_change(cid),
        "cancellation": lambda: cancellation(cid),
    }[kind]()


def at(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp)


async def submitted(stack: Stack, tenant: Tenant, body: dict[str, Any]) -> str:
    """Submit through intake; the application id of the 202."""
    response = await stack.submit(tenant, body)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "received"
    return response.json()["application_id"]


async def assert_rejected(stack: Stack, tenant: Tenant, body: dict[str, Any], code: str) -> dict[str, Any] | None:
    """The application is refused with `code`: a fast 409 from intake (allowed by §4), or a
    202 and then the application `rejected` with that reason. Returns the application."""
    response = await stack.submit(tenant, body)
    if response.status_code == 409:
        assert response.json()["code"] == code, response.text
        return None
    assert response.status_code == 202, response.text
    application = await stack.wait_application(tenant, response.json()["application_id"])
    assert application["status"] == "rejected", application
    assert application["reason"]["code"] == code, application
    assert application["reason"]["message"]
    assert application["completed_at"] is not None
    return application


async def completed(stack: Stack, tenant: Tenant, body: dict[str, Any]) -> dict[str, Any]:
    application = await stack.apply(tenant, body)
    assert application["status"] == "completed", application
    assert application["reason"] is None
    return application


async def contract_when(stack: Stack, tenant: Tenant, contract_id: str,
                        condition: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
    """Poll the detail view until `condition` holds."""
    async def probe() -> dict[str, Any] | None:
        contract = await stack.contract(tenant, contract_id)
        return contract if condition(contract) else None

    return await eventually(probe, what)


async def started(new_stack: Callable[..., Any], *services: str, **settings: Any) -> Stack:
    stack = await new_stack(**settings)
    await stack.start(*services)
    return stack


# ---- R5 addition -------------------------------------------------------------------------


async def test_r5_addition_on_an_active_contract_issues_new_active_keys(stack: Stack, tenant: Tenant) -> None:
    contract = await stack.active_contract(tenant, LINES)
    lines = [{"usage": "bare_metal", "license_type": "per_server", "quantity": 2},
             {"usage": "hypervisor", "license_type": "dedicated_hypervisor", "quantity": 1, "vm_count": 3}]

    application = await completed(stack, tenant, addition(contract["contract_id"], lines))

    after = await stack.contract(tenant, contract["contract_id"])
    assert after["status"] == "active" and after["status_label"] == "提供中"
    assert after["arcserve_order_id"] == contract["arcserve_order_id"]
    before_ids = {lic["license_id"] for lic in contract["licenses"]}
    added = [lic for lic in after["licenses"] if lic["license_id"] not in before_ids]
    assert sorted((lic["usage"], lic["vm_count"]) for lic in added) == [("bare_metal", None), ("bare_metal", None), ("hypervisor", 3)]
    assert all(lic["status"] == "active" and lic["license_key"] and lic["billable"] and lic["charge_start_at"]
               for lic in added)
    assert len({lic["license_key"] for lic in after["licenses"]}) == len(after["licenses"]) == 7
    assert [lic for lic in after["licenses"] if lic["license_id"] in before_ids] == contract["licenses"]
    # R12: thirty minutes, shown, not slept.
    assert at(application["expected_completion_at"]) - at(application["submitted_at"]) == timedelta(minutes=30)
    assert application["application_id"] in [a["application_id"] for a in after["applications"]]


# ---- R7 VM-count increase ----------------------------------------------------------------


async def test_r7_vm_count_increase_issues_an_unbillable_vm_key_and_raises_the_parent(stack: Stack, tenant: Tenant) -> None:
    contract = await stack.active_contract(tenant, LINES)
    parent = key(contract, license_type="dedicated_hypervisor")

    application = await completed(stack, tenant, vm_count_increase(contract["contract_id"], parent["license_id"], 5))

    after = await stack.contract(tenant, contract["contract_id"])
    assert after["status"] == "active"
    assert key(after, license_id=parent["license_id"])["vm_count"] == 15
    vm_key = key(after, parent_license_id=parent["license_id"])
    assert vm_key["status"] == "active" and vm_key["license_key"]
    assert vm_key["usage"] == "hypervisor" and vm_key["license_type"] == "dedicated_hypervisor"
    assert vm_key["vm_count"] == 5
    assert vm_key["billable"] is False and vm_key["charge_start_at"] is None  # no billing effect
    assert len(after["licenses"]) == len(contract["licenses"]) + 1
    assert at(application["expected_completion_at"]) - at(application["submitted_at"]) == timedelta(minutes=30)


@pytest.mark.parametrize("target", [
    pytest.param({"usage": "hypervisor", "license_type": "per_server"}, id="hypervisor-per-server"),
    pytest.param({"usage": "virtual_server"}, id="virtual-server"),
])
async def test_r7_vm_count_increase_on_a_per_server_license_is_rejected(stack: Stack, tenant: Tenant, target: dict[str, str]) -> None:
    contract = await stack.active_contract(tenant, LINES)
    license_id = key(contract, **target)["license_id"]

    await assert_rejected(stack, tenant, vm_count_increase(contract["contract_id"], license_id), "not_dedicated_hypervisor")

    after = await stack.contract(tenant, contract["contract_id"])
    assert after["licenses"] == contract["licenses"]  # nothing issued, no vm_count changed


async def test_r7_vm_count_increase_of_an_unknown_license_is_not_found(stack: Stack, tenant: Tenant) -> None:
    contract = await stack.active_contract(tenant, LINES)
    elsewhere = await stack.active_contract(tenant, LINES, product="arcserve-udp-9")
    foreign = key(elsewhere, license_type="dedicated_hypervisor")["license_id"]  # the tenant's, on another contract

    for license_id in (str(uuid.uuid4()), foreign):
        await assert_rejected(stack, tenant, vm_count_increase(contract["contract_id"], license_id), "not_found")

    assert (await stack.contract(tenant, contract["contract_id"]))["licenses"] == contract["licenses"]
    assert (await stack.contract(tenant, elsewhere["contract_id"]))["licenses"] == elsewhere["licenses"]


# ---- contact change ----------------------------------------------------------------------


async def test_contact_change_completes_at_once_and_shows_in_the_detail_view(stack: Stack, tenant: Tenant) -> None:
    contract = await stack.active_contract(tenant, LINES)

    application = await completed(stack, tenant, contact_change(contract["contract_id"]))

    assert application["expected_completion_at"] == application["submitted_at"]  # R12: immediate
    after = await stack.contract(tenant, contract["contract_id"])
    assert after["contact"] == NEW_CONTACT
    assert after["status"] == "active" and after["licenses"] == contract["licenses"]
    listed = (await stack.get(tenant, "/v1/contracts")).json()["items"]
    assert [c["contact"] for c in listed if c["contract_id"] == contract["contract_id"]] == [NEW_CONTACT]


# ---- R8 partial cancellation -------------------------------------------------------------


async def test_r8_partial_cancellation_cancels_the_named_keys_at_once(stack: Stack, tenant: Tenant) -> None:
    contract = await stack.active_contract(tenant, LINES)
    named = key(contract, usage="virtual_server")

    application_id = await submitted(stack, tenant, cancellation(contract["contract_id"], [named["license_id"]]))
    # Effective when accepted: the key is cancelled however far the application has got.
    application = await stack.wait_application(tenant, application_id, "processing", "completed")
    after = await stack.contract(tenant, contract["contract_id"])
    cancelled = key(after, license_id=named["license_id"])
    assert cancelled["status"] == "cancelled" and cancelled["charge_end_at"]
    assert at(cancelled["charge_end_at"]) >= at(application["submitted_at"])
    others = [lic for lic in after["licenses"] if lic["license_id"] != named["license_id"]]
    assert len(others) == 3 and all(lic["status"] == "active" and lic["charge_end_at"] is None for lic in others)
    assert after["status"] == "active"
    assert after["arcserve_order_id"] == {"value": contract["arcserve_order_id"]["value"], "status": "active"}

    application = await stack.wait_application(tenant, application_id)
    assert application["status"] == "completed"
    assert application["expected_completion_at"] == application["submitted_at"]  # R12: immediate
    final = await stack.contract(tenant, contract["contract_id"])
    assert final["status"] == "active" and final["arcserve_order_id"]["status"] == "active"


async def test_r8_naming_an_already_cancelled_key_is_rejected(stack: Stack, tenant: Tenant) -> None:
    contract = await stack.active_contract(tenant, LINES)
    named = key(contract, usage="virtual_server")["license_id"]
    await completed(stack, tenant, cancellation(contract["contract_id"], [named]))
    before = await stack.contract(tenant, contract["contract_id"])

    await assert_rejected(stack, tenant, cancellation(contract["contract_id"], [named]), "license_not_active")

    assert (await stack.contract(tenant, contract["contract_id"]))["licenses"] == before["licenses"]


async def test_r8_hypervisor_keys_are_cancelled_only_all_together(stack: Stack, tenant: Tenant) -> None:
    contract = await stack.active_contract(tenant, LINES)
    dedicated = key(contract, license_type="dedicated_hypervisor")["license_id"]
    hypervisor = [lic["license_id"] for lic in keys(contract, usage="hypervisor")]
    virtual = key(contract, usage="virtual_server")["license_id"]
    assert len(hypervisor) == 2

    # Some but not all hypervisor keys, alone or beside another key: refused, nothing changes.
    await assert_rejected(stack, tenant, cancellation(contract["contract_id"], [dedicated]), "hypervisor_partial_cancellation")
    await assert_rejected(stack, tenant, cancellation(contract["contract_id"], [virtual, dedicated]),
                          "hypervisor_partial_cancellation")
    assert (await stack.contract(tenant, contract["contract_id"]))["licenses"] == contract["licenses"]

    # All of them together: accepted; the virtual-server keys and the contract stay active.
    await completed(stack, tenant, cancellation(contract["contract_id"], hypervisor))
    after = await stack.contract(tenant, contract["contract_id"])
    assert {lic["status"] for lic in keys(after, usage="hypervisor")} == {"cancelled"}
    assert {lic["status"] for lic in keys(after, usage="virtual_server")} == {"active"}
    assert after["status"] == "active" and after["arcserve_order_id"]["status"] == "active"


async def test_r8_r9_cancelling_the_last_keys_by_name_cancels_the_contract(stack: Stack, tenant: Tenant) -> None:
    contract = await stack.active_contract(tenant, LINES)
    virtual = [lic["license_id"] for lic in keys(contract, usage="virtual_server")]
    hypervisor = [lic["license_id"] for lic in keys(contract, usage="hypervisor")]
    await completed(stack, tenant, cancellation(contract["contract_id"], virtual))
    assert (await stack.contract(tenant, contract["contract_id"]))["status"] == "active"

    await completed(stack, tenant, cancellation(contract["contract_id"], hypervisor))

    after = await stack.contract(tenant, contract["contract_id"])
    assert after["status"] == "cancelled" and after["status_label"] == "廃止済"
    assert after["arcserve_order_id"] == {"value": contract["arcserve_order_id"]["value"], "status": "cancelled"}


# ---- R2 one live contract per tenant and product -----------------------------------------


async def test_r2_a_second_new_for_a_held_product_is_rejected_another_product_is_fine(stack: Stack, tenant: Tenant) -> None:
    contract = await stack.active_contract(tenant)

    rejection = await assert_rejected(stack, tenant, new_application(), "contract_exists")
    other = await completed(stack, tenant, new_application(product="arcserve-udp-9"))

    assert rejection is None or rejection["contract_id"] in (None, contract["contract_id"])
    assert other["contract_id"] != contract["contract_id"]
    assert (await stack.contract(tenant, other["contract_id"]))["product"]["code"] == "arcserve-udp-9"
    assert (await stack.contract(tenant, contract["contract_id"]))["status"] == "active"
    listed = (await stack.get(tenant, "/v1/contracts?status=active")).json()["items"]
    assert sorted(c["product"]["code"] for c in listed) == ["arcserve-udp-10", "arcserve-udp-9"]


async def test_r2_other_tenants_are_not_counted(stack: Stack, tenant: Tenant, other_tenant: Tenant) -> None:
    await stack.active_contract(tenant)
    await stack.active_contract(other_tenant)  # the same product, another tenant: fine


async def test_r2_two_simultaneous_new_applications_yield_one_contract(stack: Stack, tenant: Tenant) -> None:
    ids = await asyncio.gather(*(submitted(stack, tenant, new_application()) for _ in range(2)))
    ended = [await stack.wait_application(tenant, application_id) for application_id in ids]

    assert sorted(a["status"] for a in ended) == ["completed", "rejected"], ended
    assert [a["reason"]["code"] for a in ended if a["status"] == "rejected"] == ["contract_exists"]
    listed = (await stack.get(tenant, "/v1/contracts")).json()["items"]
    assert len(listed) == 1 and listed[0]["status"] == "active"


async def test_r2_r10_after_full_cancellation_a_new_contract_may_be_started(stack: Stack, tenant: Tenant) -> None:
    first = await stack.active_contract(tenant)
    await completed(stack, tenant, cancellation(first["contract_id"]))

    second = await stack.active_contract(tenant)

    assert second["contract_id"] != first["contract_id"]
    assert second["arcserve_order_id"]["value"] != first["arcserve_order_id"]["value"]
    assert (await stack.contract(tenant, first["contract_id"]))["status"] == "cancelled"


async def test_r2_a_new_is_rejected_while_the_first_contract_is_preparing(new_stack: Callable[..., Any]) -> None:
    stack = await started(new_stack, "intake", "status", "license_issuer")  # no order ID yet: stays preparing
    tenant = await stack.tenant()
    first = await stack.wait_application(tenant, await submitted(stack, tenant, new_application()), "processing")
    assert (await stack.contract(tenant, first["contract_id"]))["status"] == "preparing"

    await assert_rejected(stack, tenant, new_application(), "contract_exists")


# ---- R10 cancelled is final --------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS_ON_A_CONTRACT)
async def test_r10_any_application_on_a_cancelled_contract_is_rejected(stack: Stack, tenant: Tenant, kind: str) -> None:
    contract = await stack.active_contract(tenant, LINES)
    await completed(stack, tenant, cancellation(contract["contract_id"]))
    before = await stack.contract(tenant, contract["contract_id"])
    assert before["status"] == "cancelled"

    await assert_rejected(stack, tenant, body_for(kind, before), "contract_cancelled")

    after = await stack.contract(tenant, contract["contract_id"])
    assert after["status"] == "cancelled"
    assert after["licenses"] == before["licenses"] and after["contact"] == before["contact"]
    assert after["arcserve_order_id"] == before["arcserve_order_id"]


# ---- not_found -----------------------------------------------------------------------------


async def test_an_addition_on_an_unknown_contract_is_not_found(stack: Stack, tenant: Tenant) -> None:
    await assert_rejected(stack, tenant, addition(str(uuid.uuid4())), "not_found")


# ---- R3 locked while preparing (slow new issuance) -----------------------------------------


@pytest.mark.parametrize("kind", KINDS_ON_A_CONTRACT)
async def test_r3_every_application_on_a_preparing_contract_is_rejected(new_stack: Callable[..., Any], kind: str) -> None:
    stack = await started(new_stack, sim_new_delay_s=SLOW_S)
    tenant = await stack.tenant()
    new_id = await submitted(stack, tenant, new_application(LINES))
    accepted = await stack.wait_application(tenant, new_id, "processing")
    preparing = await stack.contract(tenant, accepted["contract_id"])
    assert preparing["status"] == "preparing" and preparing["status_label"] == "新規準備中"
    assert preparing["arcserve_order_id"] is None
    assert {lic["status"] for lic in preparing["licenses"]} == {"preparing"}

    rejection = await assert_rejected(stack, tenant, body_for(kind, preparing), "contract_preparing")

    new = await stack.wait_application(tenant, new_id)
    assert new["status"] == "completed"
    if rejection is not None:  # decided while the contract was still preparing
        assert at(rejection["completed_at"]) < at(new["completed_at"])
    after = await stack.contract(tenant, accepted["contract_id"])
    assert after["status"] == "active"
    assert after["contact"] == preparing["contact"]
    assert len(after["licenses"]) == 4 and {lic["status"] for lic in after["licenses"]} == {"active"}
    assert all(lic["vm_count"] in (None, 10) for lic in after["licenses"])


# ---- R6 no cancellation during a change (slow change issuance) -----------------------------


@pytest.mark.parametrize("change_kind", ["addition", "vm_count_increase"])
async def test_r6_cancellation_during_a_change_is_rejected_then_accepted(new_stack: Callable[..., Any], change_kind: str) -> None:
    stack = await started(new_stack, sim_change_delay_s=SLOW_S)
    tenant = await stack.tenant()
    contract = await stack.active_contract(tenant, LINES)
    cid = contract["contract_id"]

    change_id = await submitted(stack, tenant, body_for(change_kind, contract))
    await stack.wait_application(tenant, change_id, "processing")
    during = await stack.contract(tenant, cid)
    assert during["status"] == "active"  # R5: the contract stays active; the new key is preparing
    assert [lic["status"] for lic in during["licenses"][len(contract["licenses"]):]] == ["preparing"]

    rejection = await assert_rejected(stack, tenant, cancellation(cid), "change_in_progress")
    assert (await stack.contract(tenant, cid))["licenses"] == during["licenses"]  # nothing cancelled

    change = await stack.wait_application(tenant, change_id)
    assert change["status"] == "completed"
    if rejection is not None:  # decided while the change was still processing
        assert at(rejection["completed_at"]) < at(change["completed_at"])
    await completed(stack, tenant, cancellation(cid))
    after = await stack.contract(tenant, cid)
    assert after["status"] == "cancelled"
    assert {lic["status"] for lic in after["licenses"]} == {"cancelled"}


# ---- R1 the join of keys and order ID, in either order ---------------------------------------


async def test_r1_keys_first_then_order_id(new_stack: Callable[..., Any]) -> None:
    stack = await started(new_stack, "intake", "status", "license_issuer")
    tenant = await stack.tenant()
    async with EventTap(stack, "license.keys", exchange=routing.LICENSE_KEYS_EXCHANGE) as tap:
        new_id = await submitted(stack, tenant, new_application(LINES))
        cid = (await stack.wait_application(tenant, new_id, "processing"))["contract_id"]
        issued = await tap.wait_for("license.keys", contract_id=cid)
    announced = stack.opened(issued)
    assert len(announced) == 4 and all(announced.values())

    # The keys exist, but the contract and its keys wait for the order ID (R1).
    keys_only = await stack.contract(tenant, cid)
    assert keys_only["status"] == "preparing" and keys_only["status_label"] == "新規準備中"
    assert keys_only["arcserve_order_id"] is None
    assert all(lic["status"] == "preparing" and lic["license_key"] is None for lic in keys_only["licenses"])
    assert (await stack.get(tenant, f"/v1/applications/{new_id}")).json()["status"] == "processing"

    await stack.start("order_id")

    application = await stack.wait_application(tenant, new_id)
    assert application["status"] == "completed"
    after = await stack.contract(tenant, cid)
    assert after["status"] == "active" and after["status_label"] == "提供中"
    assert after["arcserve_order_id"]["value"] and after["arcserve_order_id"]["status"] == "active"
    assert all(lic["status"] == "active" and lic["charge_start_at"] for lic in after["licenses"])
    # The same keys, not issued twice.
    assert {lic["license_id"]: lic["license_key"] for lic in after["licenses"]} == announced


async def test_r1_order_id_first_then_keys(new_stack: Callable[..., Any]) -> None:
    stack = await started(new_stack, "intake", "status", "order_id")
    tenant = await stack.tenant()
    new_id = await submitted(stack, tenant, new_application(LINES))
    cid = (await stack.wait_application(tenant, new_id, "processing"))["contract_id"]

    order_only = await contract_when(stack, tenant, cid, lambda c: c["arcserve_order_id"] is not None, "the order ID")
    assert order_only["arcserve_order_id"]["status"] == "active"
    assert order_only["status"] == "preparing" and order_only["status_label"] == "新規準備中"
    assert all(lic["status"] == "preparing" and lic["license_key"] is None for lic in order_only["licenses"])
    assert (await stack.get(tenant, f"/v1/applications/{new_id}")).json()["status"] == "processing"

    await stack.start("license_issuer")

    application = await stack.wait_application(tenant, new_id)
    assert application["status"] == "completed"
    after = await stack.contract(tenant, cid)
    assert after["status"] == "active"
    assert after["arcserve_order_id"] == order_only["arcserve_order_id"]
    assert len(after["licenses"]) == 4
    assert all(lic["status"] == "active" and lic["license_key"] and lic["charge_start_at"] for lic in after["licenses"])
