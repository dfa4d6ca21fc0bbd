"""The HTTP API answers what its OpenAPI document says (shared/contracts/answers.py, docs/openapi.json):
real answers of every route, errors included, fit their models with no field left over, and
the portal's origin serves the one merged document."""
from __future__ import annotations

import json
import uuid
from pathlib import Path

from pydantic import BaseModel

from shared.contracts import answers
from tests.support.stack import Stack, Tenant, new_application

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def fits(model: type[BaseModel], body: object) -> None:
    model.model_validate(body)  # extra="forbid": a field the document does not name fails here


async def test_every_answer_fits_the_model_the_document_declares(stack: Stack, tenant: Tenant) -> None:
    contract = await stack.active_contract(tenant, [
        {"usage": "virtual_server", "license_type": "per_server", "quantity": 1},
        {"usage": "hypervisor", "license_type": "dedicated_hypervisor", "quantity": 1, "vm_count": 3}])
    cid = contract["contract_id"]
    submitted = await stack.submit(tenant, {"kind": "cancellation", "contract_id": cid, "scope": "all"})
    assert submitted.status_code == 202
    fits(answers.Received, submitted.json())
    await stack.wait_application(tenant, submitted.json()["application_id"])

    fits(answers.ContractDetail, await stack.contract(tenant, cid))
    fits(answers.ContractPage, (await stack.get(tenant, "/v1/contracts")).json())
    fits(answers.ApplicationPage, (await stack.get(tenant, f"/v1/applications?contract_id={cid}")).json())
    fits(answers.ApplicationView, (await stack.get(tenant, f"/v1/applications/{submitted.json()['application_id']}")).json())

    errors = {
        401: await stack.get(stack_tenant_without_key(tenant), "/v1/contracts"),
        404: await stack.get(tenant, f"/v1/contracts/{uuid.uuid4()}"),
        422: await stack.submit(tenant, {**new_application(), "contact": {"email": "no", "company_name": "A"}}),
    }
    for status, answer in errors.items():
        assert answer.status_code == status, answer.text
        fits(answers.ErrorBody, answer.json())
    assert errors[422].json()["errors"][0]["field"] == "contact.email"


def stack_tenant_without_key(tenant: Tenant) -> Tenant:
    return Tenant(tenant.name, "not-" + tenant.key)


async def test_the_portal_serves_the_one_merged_document(stack: Stack) -> None:
    served = await stack.http.get(f"{stack.portal_url}/openapi.json")
    assert served.status_code == 200
    assert served.json() == json.loads(COMMITTED.read_text(encoding="utf-8"))
    for service in ("intake", "status"):
        assert (await stack.http.get(stack.url(service, "/docs"))).status_code == 200


async def test_a_method_a_route_does_not_serve_answers_405_naming_those_it_does(stack: Stack) -> None:
    """RFC 9110 §15.5.6: a 405 carries `Allow`, directly and through the portal's origin."""
    for url, allowed in ((stack.url("intake", "/v1/applications"), "POST"),
                         (stack.url("status", "/v1/contracts"), "GET"),
                         (f"{stack.portal_url}/v1/contracts/{uuid.uuid4()}", "GET")):
        answer = await stack.http.put(url, json={})
        assert answer.status_code == 405, (url, answer.text)
        assert answer.headers.get("allow") == allowed, (url, answer.headers)
        fits(answers.ErrorBody, answer.json())
