"""The lists behind the main menu (docs/architecture.md, "Public contract"): every column of a menu row in one call
to GET /v1/contracts, the tenant's applications with filters and a cursor, and the Japanese
labels beside the English values."""
from __future__ import annotations

import uuid
from typing import Any

from tests.support.stack import Stack, Tenant

VIRTUAL = {"usage": "virtual_server", "license_type": "per_server", "quantity": 2}
DEDICATED = {"usage": "hypervisor", "license_type": "dedicated_hypervisor", "quantity": 1, "vm_count": 10}


async def listed(stack: Stack, tenant: Tenant, path: str) -> dict[str, Any]:
    response = await stack.get(tenant, path)
    assert response.status_code == 200, response.text
    return response.json()


async def summary_of(stack: Stack, tenant: Tenant, contract_id: str) -> dict[str, Any]:
    items = (await listed(stack, tenant, "/v1/contracts"))["items"]
    return next(c for c in items if c["contract_id"] == contract_id)


async def test_a_summary_carries_every_column_of_a_main_menu_row(stack: Stack, tenant: Tenant) -> None:
    contract = await stack.active_contract(tenant, [VIRTUAL, DEDICATED])
    cid = contract["contract_id"]
    dedicated = next(lic for lic in contract["licenses"] if lic["license_type"] == "dedicated_hypervisor")
    virtual = [lic["license_id"] for lic in contract["licenses"] if lic["usage"] == "virtual_server"]
    for body in (
        {"kind": "addition", "contract_id": cid, "licenses": [{"usage": "bare_metal", "license_type": "per_server", "quantity": 1}]},
        {"kind": "vm_count_increase", "contract_id": cid, "license_id": dedicated["license_id"], "additional_vms": 5},
        {"kind": "cancellation", "contract_id": cid, "license_ids": virtual[:1]},
    ):
        assert (await stack.apply(tenant, body))["status"] == "completed"
    detail = await stack.contract(tenant, cid)

    row = await summary_of(stack, tenant, cid)
    assert (row["status"], row["status_label"]) == ("active", "提供中")
    assert row["product"] == {"code": "arcserve-udp-10", "name": detail["product"]["name"], "version": detail["product"]["version"]}
    assert row["support_desk"] == detail["support_desk"] and row["support_desk"]["phone"]
    assert row["arcserve_order_id"] == detail["arcserve_order_id"] == {"value": contract["arcserve_order_id"]["value"], "status": "active"}
    assert row["license_types"] == [  # in the order the keys were issued, VM keys counted with their type
        {"usage": "virtual_server", "usage_label": "仮想サーバー", "license_type": "per_server",
         "license_type_label": "サーバー単位ライセンス", "active": 1, "preparing": 0, "cancelled": 1},
        {"usage": "hypervisor", "usage_label": "ハイパーバイザー基盤", "license_type": "dedicated_hypervisor",
         "license_type_label": "専用ハイパーバイザーライセンス", "active": 2, "preparing": 0, "cancelled": 0},
        {"usage": "bare_metal", "usage_label": "ベアメタル(物理)サーバー", "license_type": "per_server",
         "license_type_label": "サーバー単位ライセンス", "active": 1, "preparing": 0, "cancelled": 0},
    ]
    history = (await listed(stack, tenant, f"/v1/applications?contract_id={cid}"))["items"]
    assert row["application_ids"] == [a["application_id"] for a in history] and len(history) == 4
    assert row["applications_total"] == 4
    assert row["applied_at"] == detail["created_at"]
    assert row["charge_start_at"] == min(lic["charge_start_at"] for lic in detail["licenses"] if lic["charge_start_at"])
    assert row["cancelled_at"] is None and row["charge_end_at"] is None  # a key's end is not the contract's
    assert {kind: a["allowed"] for kind, a in row["actions"].items()} == {
        "addition": True, "vm_count_increase": True, "contact_change": True, "cancellation": True}
    assert "license_key" not in str(row)  # keys are for the detail view only

    cancelled = await stack.apply(tenant, {"kind": "cancellation", "contract_id": cid, "scope": "all"})
    row = await summary_of(stack, tenant, cid)
    detail = await stack.contract(tenant, cid)
    assert (row["status"], row["status_label"]) == ("cancelled", "廃止済")
    assert cancelled["status"] == "completed"
    assert row["cancelled_at"] == row["charge_end_at"] == max(
        lic["charge_end_at"] for lic in detail["licenses"] if lic["charge_end_at"])  # R8: at once
    assert row["actions"]["addition"] == {"allowed": False, "reason": {
        "code": "contract_cancelled", "message": "the contract is cancelled; apply for a new contract instead"}}
    assert row["actions"] == detail["actions"]


async def test_a_contract_without_a_key_that_takes_vms_offers_no_vm_count_increase(stack: Stack, tenant: Tenant) -> None:
    contract = await stack.active_contract(tenant, [VIRTUAL])
    row = await summary_of(stack, tenant, contract["contract_id"])
    refused = {"allowed": False, "reason": {"code": "not_dedicated_hypervisor", "message":
               "no key of the contract is an active hypervisor license of type dedicated_hypervisor"}}
    assert row["actions"]["vm_count_increase"] == contract["actions"]["vm_count_increase"] == refused
    assert row["actions"]["addition"]["allowed"] is True
    gate = await stack.apply(tenant, {"kind": "vm_count_increase", "contract_id": contract["contract_id"],
                                      "license_id": contract["licenses"][0]["license_id"], "additional_vms": 1})
    assert gate["reason"]["code"] == "not_dedicated_hypervisor"  # the gate agrees


async def test_the_contract_list_filters_by_product(stack: Stack, tenant: Tenant) -> None:
    ten = await stack.active_contract(tenant, product="arcserve-udp-10")
    nine = await stack.active_contract(tenant, product="arcserve-udp-9")
    for product, expected in (("arcserve-udp-10", ten), ("arcserve-udp-9", nine)):
        items = (await listed(stack, tenant, f"/v1/contracts?product={product}"))["items"]
        assert [c["contract_id"] for c in items] == [expected["contract_id"]]
    assert (await listed(stack, tenant, "/v1/contracts?product=no-such-product"))["items"] == []
    both = (await listed(stack, tenant, "/v1/contracts?status=active&product=arcserve-udp-9"))["items"]
    assert [c["contract_id"] for c in both] == [nine["contract_id"]]
    assert (await stack.get(tenant, "/v1/contracts?product=")).status_code == 422


async def test_the_application_list_pages_newest_first_with_filters(
        stack: Stack, tenant: Tenant, other_tenant: Tenant) -> None:
    contract = await stack.active_contract(tenant)
    cid = contract["contract_id"]
    contact = await stack.apply(tenant, {"kind": "contact_change", "contract_id": cid,
                                         "contact": {"email": "new@example.co.jp", "company_name": "New K.K."}})
    refused = await stack.apply(tenant, {"kind": "new", "product": "arcserve-udp-10", "licenses": [VIRTUAL],
                                         "contact": {"email": "a@example.co.jp", "company_name": "A"}})
    assert refused["status"] == "rejected" and refused["reason"]["code"] == "contract_exists"
    newest_first = [refused["application_id"], contact["application_id"], contract["applications"][0]["application_id"]]

    everything = await listed(stack, tenant, "/v1/applications")
    assert [a["application_id"] for a in everything["items"]] == newest_first and everything["next_cursor"] is None
    first = everything["items"][-1]
    assert (first["kind"], first["kind_label"], first["status"], first["status_label"]) == ("new", "新規申込", "completed", "完了")
    assert everything["items"][0]["status_label"] == "却下"

    seen, cursor = [], ""
    while True:
        page = await listed(stack, tenant, f"/v1/applications?limit=1{cursor}")
        seen += [a["application_id"] for a in page["items"]]
        if page["next_cursor"] is None:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert seen == newest_first

    rejected = await listed(stack, tenant, "/v1/applications?status=rejected")
    assert [a["application_id"] for a in rejected["items"]] == [refused["application_id"]]
    of_contract = await listed(stack, tenant, f"/v1/applications?contract_id={cid}&status=completed")
    assert [a["application_id"] for a in of_contract["items"]] == newest_first[1:]
    assert (await listed(stack, tenant, f"/v1/applications?contract_id={uuid.uuid4()}"))["items"] == []
    assert (await listed(stack, other_tenant, "/v1/applications"))["items"] == []
    assert (await listed(stack, other_tenant, f"/v1/applications?contract_id={cid}"))["items"] == []

    for query in ("?status=lost", "?contract_id=not-a-uuid", "?limit=0", "?limit=101", "?cursor=not-a-cursor"):
        response = await stack.get(tenant, f"/v1/applications{query}")
        assert response.status_code == 422, (query, response.text)
        assert response.json()["code"] == "invalid_request"
