"""The HTTP side of the public contract (docs/architecture.md, "Public contract") and the security rules (§6):
authentication, R4 refusals that publish nothing, size limits, 503 when the broker is
gone, Idempotency-Key, tenant isolation (404, never data), pagination, health and metrics."""
from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest

from shared.tenancy import seed_api_keys
from tests.support.stack import (
    EventTap,
    Stack,
    SubmissionTap,
    Tenant,
    assert_error,
    new_application,
    submission,
)

SERVICES = ("intake", "status", "license_issuer", "order_id")


async def contract_list(stack: Stack, tenant: Tenant, query: str = "") -> dict[str, Any]:
    response = await stack.get(tenant, f"/v1/contracts{query}")
    assert response.status_code == 200, response.text
    return response.json()


# ---- authentication ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-a-key-anyone-has"}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer"}],
    ids=["missing", "wrong-key", "not-bearer", "empty-bearer"],
)
async def test_without_a_valid_api_key_every_endpoint_answers_401(stack: Stack, tenant: Tenant, headers: dict[str, str]) -> None:
    contract = await stack.active_contract(tenant) if headers == {} else None
    intake = await stack.http.post(stack.url("intake", "/v1/applications"), json=new_application(), headers=headers)
    assert_error(intake, 401, "unauthorized")
    assert intake.headers.get("www-authenticate", "").lower().startswith("bearer")
    for path in ("/v1/contracts", f"/v1/applications/{uuid.uuid4()}", f"/v1/contracts/{uuid.uuid4()}"):
        assert_error(await stack.http.get(stack.url("status", path), headers=headers), 401, "unauthorized")
    if contract is not None:  # a real id answers 401 too, never the data
        response = await stack.http.get(stack.url("status", f"/v1/contracts/{contract['contract_id']}"), headers=headers)
        assert_error(response, 401, "unauthorized")
        assert contract["licenses"][0]["license_key"] not in response.text


# ---- R4 refusals at intake publish nothing ------------------------------------------------


async def test_invalid_bodies_are_refused_with_422_and_nothing_is_published(stack: Stack, tenant: Tenant) -> None:
    dated = {**new_application(), "desired_start_date": "2026-12-01"}
    unknown_product = new_application(product="arcserve-backup-17")
    bad_pair = new_application([{"usage": "virtual_server", "license_type": "dedicated_hypervisor", "quantity": 1, "vm_count": 3}])
    cancellation_dated = {"kind": "cancellation", "contract_id": str(uuid.uuid4()), "scope": "all",
                          "desired_cancellation_date": "2026-12-31"}
    async with SubmissionTap(stack) as submissions, EventTap(stack) as events:
        body = assert_error(await stack.submit(tenant, dated), 422, "invalid_application")
        assert "desired_start_date" in body["message"]
        assert any(e["field"] == "desired_start_date" for e in body["errors"]), body

        body = assert_error(await stack.submit(tenant, cancellation_dated), 422, "invalid_application")
        assert any(e["field"] == "desired_cancellation_date" for e in body["errors"]), body

        body = assert_error(await stack.submit(tenant, unknown_product), 422, "invalid_application")
        assert any(e["field"] == "product" for e in body["errors"]) and "arcserve-backup-17" in body["message"], body

        body = assert_error(await stack.submit(tenant, bad_pair), 422, "invalid_application")
        assert any(e["field"].startswith("licenses.0") for e in body["errors"]), body
        assert "virtual_server" in body["message"] and "dedicated_hypervisor" in body["message"]

        not_json = await stack.http.post(
            stack.url("intake", "/v1/applications"), content=b"{not json",
            headers={"Authorization": f"Bearer {tenant.key}", "Content-Type": "application/json"},
        )
        assert_error(not_json, 422, "invalid_application")

        # A good application afterwards: it is the first and only thing the tenant published.
        good = await stack.submit(tenant, new_application())
        assert good.status_code == 202, good.text
        application_id = good.json()["application_id"]
        await submissions.wait_for(application_id)
        application = await stack.wait_application(tenant, application_id, "completed")
        await events.wait_for("application.completed.new", application_id=application_id)
        assert [m["data"]["application_id"] for m in submissions.of(tenant)] == [application_id]
        assert {e["data"].get("application_id") for _, e in events.events if e.get("tenantid") == tenant.name} == {application_id}

    items = (await contract_list(stack, tenant))["items"]
    assert [c["contract_id"] for c in items] == [application["contract_id"]]


async def test_bodies_over_64_kib_are_refused_with_413(stack: Stack, tenant: Tenant) -> None:
    big = {**new_application(), "contact": {"email": "ops@example.co.jp", "company_name": "x" * (65 * 1024)}}
    payload = json.dumps(big).encode()
    headers = {"Authorization": f"Bearer {tenant.key}", "Content-Type": "application/json"}
    async with SubmissionTap(stack) as submissions:
        assert_error(await stack.http.post(stack.url("intake", "/v1/applications"), content=payload, headers=headers),
                     413, "payload_too_large")

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
            for start in range(0, len(payload), 8192):
                yield payload[start:start + 8192]

        assert_error(await stack.http.post(stack.url("intake", "/v1/applications"), content=chunks(), headers=headers),
                     413, "payload_too_large")
        application = await stack.apply(tenant, new_application())
        await submissions.wait_for(application["application_id"])
        assert len(submissions.of(tenant)) == 1


async def test_broker_down_answers_503_and_accepts_nothing(new_stack: Callable[..., Any]) -> None:
    stack: Stack = await new_stack()
    await stack.start()
    tenant = await stack.tenant()
    async with SubmissionTap(stack) as submissions:
        await stack.services["intake"].broker.close()
        response = await stack.submit(tenant, new_application(), idempotency_key="after-the-broker-went")
        body = assert_error(response, 503, "unavailable")
        assert "application_id" not in body
        ready = await stack.http.get(stack.url("intake", "/readyz"))
        assert ready.status_code == 503, "intake must not claim readiness without its broker"

        # Another system's submission goes through; it is the only one that arrives.
        barrier = submission(tenant.name, new_application(product="arcserve-udp-9"))
        await stack.publish_event(stack.topology.applications, "new", barrier)
        application_id = barrier["data"]["application_id"]
        await submissions.wait_for(application_id)
        application = await stack.wait_application(tenant, application_id, "completed")
        assert [m["data"]["application_id"] for m in submissions.messages] == [application_id]

    items = (await contract_list(stack, tenant))["items"]
    assert [(c["contract_id"], c["product"]["code"]) for c in items] == [(application["contract_id"], "arcserve-udp-9")]


# ---- Idempotency-Key ----------------------------------------------------------------------


async def test_idempotency_key_returns_the_same_application(stack: Stack, tenant: Tenant, other_tenant: Tenant) -> None:
    key = f"order-{uuid.uuid4()}"
    first = await stack.submit(tenant, new_application(), idempotency_key=key)
    again = await stack.submit(tenant, new_application(), idempotency_key=key)
    assert first.status_code == again.status_code == 202
    application_id = first.json()["application_id"]
    assert again.json()["application_id"] == application_id
    assert again.headers["location"] == first.headers["location"] == f"/v1/applications/{application_id}"
    application = await stack.wait_application(tenant, application_id, "completed")

    # A different key is a different application (here a second `new`, so R2 rejects it).
    other = await stack.submit(tenant, new_application(), idempotency_key=f"order-{uuid.uuid4()}")
    assert other.status_code == 202 and other.json()["application_id"] != application_id
    rejected = await stack.wait_application(tenant, other.json()["application_id"])
    assert rejected["status"] == "rejected" and rejected["reason"]["code"] == "contract_exists"

    # The same key from another tenant is theirs alone.
    theirs = await stack.submit(other_tenant, new_application(), idempotency_key=key)
    assert theirs.status_code == 202 and theirs.json()["application_id"] != application_id
    assert (await stack.wait_application(other_tenant, theirs.json()["application_id"]))["status"] == "completed"

    # The same key with another body: refused, not silently the first application.
    reused = await stack.submit(tenant, new_application(product="arcserve-udp-9"), idempotency_key=key)
    body = assert_error(reused, 409, "idempotency_key_reused")
    assert "another body" in body["message"]

    items = (await contract_list(stack, tenant))["items"]
    assert [c["contract_id"] for c in items] == [application["contract_id"]]
    contract = await stack.contract(tenant, application["contract_id"])
    assert [a["application_id"] for a in contract["applications"]] == [application_id]
    assert (await stack.wait_application(tenant, application_id)) == application


async def test_an_application_id_cannot_be_computed_from_the_idempotency_key(stack: Stack, tenant: Tenant) -> None:
    """The old derivation (a name-based UUID of tenant and key) no longer predicts the id:
    a direct publisher cannot take another tenant's application id ahead of it."""
    key = f"order-{uuid.uuid4()}"
    answered = await stack.submit(tenant, new_application(), idempotency_key=key)
    assert answered.status_code == 202, answered.text
    guessable = uuid.uuid5(uuid.UUID("a3c1e9a4-5b8e-4d36-8d8f-3f0f3e2f7b10"), f"{tenant.name}\n{key}")
    assert answered.json()["application_id"] != str(guessable)
    assert uuid.UUID(answered.json()["application_id"]).version == 4


async def test_a_foreign_submission_under_the_same_application_id_suppresses_nothing(
    stack: Stack, tenant: Tenant, other_tenant: Tenant
) -> None:
    """Another tenant's publisher that got hold of an application id (and the message id)
    publishes first: the tenant's own submission under that id is still decided."""
    application_id = str(uuid.uuid4())
    await stack.publish_event(stack.topology.applications, "new",
                              submission(other_tenant.name, new_application(), application_id=application_id,
                                         event_id=application_id))
    await stack.wait_application(other_tenant, application_id, "completed")
    await stack.publish_event(stack.topology.applications, "new",
                              submission(tenant.name, new_application(), application_id=application_id,
                                         event_id=application_id))
    mine = await stack.wait_application(tenant, application_id, "completed")
    theirs = await stack.wait_application(other_tenant, application_id, "completed")
    assert mine["contract_id"] != theirs["contract_id"]


async def test_idempotency_key_over_the_limit_is_refused(stack: Stack, tenant: Tenant) -> None:
    async with SubmissionTap(stack) as submissions:
        response = await stack.submit(tenant, new_application(), idempotency_key="k" * 256)
        assert response.status_code == 422, response.text
        application = await stack.apply(tenant, new_application())
        await submissions.wait_for(application["application_id"])
        assert len(submissions.of(tenant)) == 1


# ---- tenant isolation -------------------------------------------------------------------


async def test_another_tenant_sees_and_touches_nothing(stack: Stack, tenant: Tenant, other_tenant: Tenant) -> None:
    contract = await stack.active_contract(tenant)
    contract_id = contract["contract_id"]
    application_id = contract["applications"][0]["application_id"]
    secret = contract["licenses"][0]["license_key"]

    for path in (f"/v1/applications/{application_id}", f"/v1/contracts/{contract_id}"):
        response = await stack.get(other_tenant, path)
        assert_error(response, 404, "not_found")
        assert secret not in response.text and contract["arcserve_order_id"]["value"] not in response.text
    assert contract_id not in json.dumps(await contract_list(stack, other_tenant))
    assert (await contract_list(stack, other_tenant, "?status=active"))["items"] == []

    license_id = contract["licenses"][0]["license_id"]
    attempts = [
        {"kind": "addition", "contract_id": contract_id,
         "licenses": [{"usage": "virtual_server", "license_type": "per_server", "quantity": 1}]},
        {"kind": "cancellation", "contract_id": contract_id, "scope": "all"},
        {"kind": "cancellation", "contract_id": contract_id, "license_ids": [license_id]},
        {"kind": "contact_change", "contract_id": contract_id,
         "contact": {"email": "attacker@example.com", "company_name": "Other K.K."}},
    ]
    for body in attempts:
        application = await stack.apply(other_tenant, body)
        assert application["status"] == "rejected", application
        assert application["reason"]["code"] == "not_found", application
        # Their own application is theirs to see; the owner never sees it.
        assert_error(await stack.get(tenant, f"/v1/applications/{application['application_id']}"), 404, "not_found")

    after = await stack.contract(tenant, contract_id)
    assert after["status"] == "active" and after["contact"] == contract["contact"]
    assert after["licenses"] == contract["licenses"]
    assert [a["application_id"] for a in after["applications"]] == [application_id]


# ---- contract list ----------------------------------------------------------------------


async def test_contract_list_pages_newest_first_and_filters_by_status(stack: Stack, tenant: Tenant) -> None:
    first = await stack.active_contract(tenant, product="arcserve-udp-10")
    second = await stack.active_contract(tenant, product="arcserve-udp-9")
    cancelled = await stack.apply(tenant, {"kind": "cancellation", "contract_id": first["contract_id"], "scope": "all"})
    assert cancelled["status"] == "completed"
    third = await stack.active_contract(tenant, product="arcserve-udp-10")  # R10: start again
    newest_first = [third["contract_id"], second["contract_id"], first["contract_id"]]

    page = await contract_list(stack, tenant, "?limit=2")
    assert [c["contract_id"] for c in page["items"]] == newest_first[:2]
    assert page["next_cursor"]
    rest = await contract_list(stack, tenant, f"?limit=2&cursor={page['next_cursor']}")
    assert [c["contract_id"] for c in rest["items"]] == newest_first[2:]
    assert rest["next_cursor"] is None
    summary = rest["items"][0]
    assert summary["status"] == "cancelled" and summary["status_label"] == "廃止済"
    assert summary["product"]["code"] == "arcserve-udp-10"
    assert summary["arcserve_order_id"] == {"value": first["arcserve_order_id"]["value"], "status": "cancelled"}

    everything = await contract_list(stack, tenant)
    assert [c["contract_id"] for c in everything["items"]] == newest_first and everything["next_cursor"] is None

    only_cancelled = await contract_list(stack, tenant, "?status=cancelled")
    assert [c["contract_id"] for c in only_cancelled["items"]] == [first["contract_id"]]
    only_active = await contract_list(stack, tenant, "?status=active&limit=1")
    assert [c["contract_id"] for c in only_active["items"]] == [third["contract_id"]]
    following = await contract_list(stack, tenant, f"?status=active&limit=1&cursor={only_active['next_cursor']}")
    assert [c["contract_id"] for c in following["items"]] == [second["contract_id"]]
    assert following["next_cursor"] is None
    assert (await contract_list(stack, tenant, "?status=preparing"))["items"] == []

    for query in ("?status=expired", "?limit=0", "?limit=101", "?limit=many", "?cursor=not-a-cursor"):
        response = await stack.get(tenant, f"/v1/contracts{query}")
        assert response.status_code == 422, (query, response.text)
        assert response.json()["code"] in ("invalid_request", "invalid_application"), response.text


async def test_unknown_and_malformed_ids_answer_404(stack: Stack, tenant: Tenant) -> None:
    for path in (f"/v1/applications/{uuid.uuid4()}", "/v1/applications/not-a-uuid",
                 f"/v1/contracts/{uuid.uuid4()}", "/v1/contracts/not-a-uuid", "/v1/applications/12345"):
        assert_error(await stack.get(tenant, path), 404, "not_found")


# ---- operations ---------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
async def test_health_readiness_and_metrics(stack: Stack, service: str) -> None:
    for url in (stack.url, stack.operator_url):  # the probes on both ports
        healthz = await stack.http.get(url(service, "/healthz"))
        assert healthz.status_code == 200 and healthz.json()["status"] == "ok"
        readyz = await stack.http.get(url(service, "/readyz"))
        assert readyz.status_code == 200 and readyz.json()["status"] == "ready"
    metrics = await stack.http.get(stack.operator_url(service, "/metrics"))
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    assert "# TYPE arcserve_" in metrics.text and "arcserve_messages_total" in metrics.text
    # Metrics are for operators: never on the port the API (and tenants) use.
    public = await stack.http.get(stack.url(service, "/metrics"))
    assert public.status_code == 404 and "arcserve_" not in public.text


async def test_an_api_key_never_moves_to_another_tenant(stack: Stack, tenant: Tenant) -> None:
    contract = await stack.active_contract(tenant)
    conn = await asyncpg.connect(stack.settings.database_url)
    try:
        with pytest.raises(ValueError, match="belongs to another tenant"):
            await seed_api_keys(conn, {tenant.key: "someone-else"}, stack.pepper)
    finally:
        await conn.close()
    listed = (await stack.get(tenant, "/v1/contracts")).json()["items"]
    assert [c["contract_id"] for c in listed] == [contract["contract_id"]]  # still the owner's key
