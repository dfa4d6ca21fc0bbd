"""The back-office console's API (`ARCSERVE_FULFILMENT=back-office`; docs/architecture.md,
"Fulfilment"), on the real broker and database: operators made by the operator command
(`python -m services.tools.operators`) list the tasks, type in what Arcserve delivered or
reject what it refused, and the tenant sees exactly that; a viewer only sees; no tenant key,
wrong or revoked operator key gets in; every action is audited, never with a key."""
from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from shared.contracts import routing
from shared.issuance import simulated_license_key
from tests.support.stack import Stack, Tenant, assert_error, eventually, new_application
from tests.support.tools import ok


class Operator:
    def __init__(self, stack: Stack, operator_id: str, key: str):
        self.stack, self.operator_id, self.key = stack, operator_id, key

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.stack.http.get(self.stack.url("backoffice", path), params=params,
                                         headers={"Authorization": f"Bearer {self.key}"})

    async def post(self, path: str, body: Any) -> httpx.Response:
        return await self.stack.http.post(self.stack.url("backoffice", path), json=body,
                                          headers={"Authorization": f"Bearer {self.key}"})

    async def task(self, application_id: str) -> dict[str, Any]:
        """The application's task, once the console has it."""
        async def probe() -> dict[str, Any] | None:
            response = await self.get(f"/ops/v1/fulfilments/{application_id}")
            return response.json() if response.status_code == 200 else None

        found: dict[str, Any] = await eventually(probe, f"the task of {application_id} in the console")
        return found


async def _operator(stack: Stack, name: str, role: str) -> Operator:
    out = (await ok(stack, "operators", "create", name, "--role", role)).splitlines()
    assert out[0].startswith("operator id: ")
    return Operator(stack, out[0].removeprefix("operator id: "), out[-1])


@pytest.fixture
async def console(new_stack: Callable[..., Any]) -> tuple[Stack, Operator, Operator]:
    stack: Stack = await new_stack(fulfilment="back-office")
    await stack.start()
    return stack, await _operator(stack, "佐藤", "fulfiller"), await _operator(stack, "Viewer", "viewer")


async def test_an_operator_fulfils_what_the_tenant_waits_for_with_exactly_the_keys_typed_in(
    console: tuple[Stack, Operator, Operator],
) -> None:
    stack, sato, viewer = console
    tenant = await stack.tenant()
    application_id = (await stack.submit(tenant, new_application([
        {"usage": "virtual_server", "license_type": "per_server", "quantity": 2}]))).json()["application_id"]

    task = await viewer.task(application_id)
    assert task["tenant"] == tenant.name and task["state"] == "open" and task["overdue"] is False
    assert task["kind"] == "new" and task["needs"]["arcserve_order_id"] is True
    licenses = [lic["license_id"] for lic in task["needs"]["licenses"]]
    listed = (await viewer.get("/ops/v1/fulfilments", tenant=tenant.name)).json()
    assert [t["application_id"] for t in listed["items"]] == [application_id] and listed["next_cursor"] is None
    assert (await stack.get(tenant, f"/v1/applications/{application_id}")).json()["status"] == "processing"

    keys = [simulated_license_key(), simulated_license_key()]
    body = {"arcserve_order_id": "ARC-20261207-CONSOLE",
            "license_keys": [{"license_id": i, "license_key": k} for i, k in zip(licenses, keys, strict=True)]}
    assert_error(await viewer.post(f"/ops/v1/fulfilments/{application_id}/fulfil", body), 403, "forbidden")
    malformed = await sato.post(f"/ops/v1/fulfilments/{application_id}/fulfil", {
        **body, "license_keys": [{"license_id": licenses[0], "license_key": "not-a-key"}, body["license_keys"][1]]})
    assert assert_error(malformed, 422, "invalid_fulfilment")["errors"][0]["field"] == "license_keys.0.license_key"
    assert "not-a-key" not in malformed.text
    twice = await sato.post(f"/ops/v1/fulfilments/{application_id}/fulfil", {
        "license_keys": [{"license_id": licenses[0], "license_key": keys[0]},
                         {"license_id": licenses[0], "license_key": keys[1]}]})
    assert assert_error(twice, 422, "invalid_fulfilment")["errors"] == [
        {"field": "license_keys", "problem": "a license is named twice"}]
    short = await sato.post(f"/ops/v1/fulfilments/{application_id}/fulfil", {"license_keys": body["license_keys"][:1]})
    assert {e["field"] for e in assert_error(short, 422, "invalid_fulfilment")["errors"]} == {
        "arcserve_order_id", "license_keys"}

    done = await sato.post(f"/ops/v1/fulfilments/{application_id}/fulfil", body)
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "fulfilled" and done.json()["closed_by"] == sato.operator_id
    assert_error(await sato.post(f"/ops/v1/fulfilments/{application_id}/reject", {"reason": "x"}), 409, "not_open")

    application = await stack.wait_application(tenant, application_id, "completed")
    contract = await stack.contract(tenant, application["contract_id"])
    assert contract["status"] == "active" and contract["arcserve_order_id"]["value"] == "ARC-20261207-CONSOLE"
    assert {lic["license_id"]: lic["license_key"] for lic in contract["licenses"]} == dict(zip(licenses, keys))
    assert (await viewer.get("/ops/v1/fulfilments", state="fulfilled", tenant=tenant.name)).json()["items"][0][
        "application_id"] == application_id

    # The same key for another license, later: refused, naming the field.
    addition = (await stack.submit(tenant, {"kind": "addition", "contract_id": contract["contract_id"], "licenses": [
        {"usage": "bare_metal", "license_type": "per_server", "quantity": 1}]})).json()["application_id"]
    added = await sato.task(addition)
    reused = await sato.post(f"/ops/v1/fulfilments/{addition}/fulfil", {"license_keys": [
        {"license_id": added["needs"]["licenses"][0]["license_id"], "license_key": keys[0]}]})
    assert assert_error(reused, 422, "invalid_fulfilment")["errors"] == [
        {"field": "license_keys.0.license_key", "problem": "already used for another license"}]

    audit = await _audit(stack, application_id)
    assert audit == [("fulfilments.fulfil", f"operator {sato.operator_id} (佐藤)")]
    assert not any(key in str(audit) for key in keys)


async def test_a_rejection_shows_the_operator_s_reason_to_the_tenant(console: tuple[Stack, Operator, Operator]) -> None:
    stack, sato, _ = console
    tenant: Tenant = await stack.tenant()
    application_id = (await stack.submit(tenant, new_application())).json()["application_id"]
    await sato.task(application_id)

    assert_error(await sato.post(f"/ops/v1/fulfilments/{application_id}/reject", {"reason": ""}), 422,
                 "invalid_fulfilment")
    refused = await sato.post(f"/ops/v1/fulfilments/{application_id}/reject", {"reason": "ご指定の製品は販売終了です"})
    assert refused.status_code == 200 and refused.json()["state"] == "rejected"

    application = await stack.wait_application(tenant, application_id, "rejected")
    assert application["reason"] == {"code": "vendor_refused", "message": "ご指定の製品は販売終了です"}
    assert await _audit(stack, application_id) == [("fulfilments.reject", f"operator {sato.operator_id} (佐藤)")]


async def test_only_a_valid_operator_key_gets_in(console: tuple[Stack, Operator, Operator]) -> None:
    stack, sato, viewer = console
    tenant = await stack.tenant()
    for key in (None, tenant.key, sato.key + "x"):
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        answer = await stack.http.get(stack.url("backoffice", "/ops/v1/fulfilments"), headers=headers)
        assert_error(answer, 401, "unauthorized")
    assert (await viewer.get("/ops/v1/fulfilments")).status_code == 200

    await ok(stack, "operators", "revoke", viewer.operator_id)
    assert_error(await viewer.get("/ops/v1/fulfilments"), 401, "unauthorized")
    listed = await ok(stack, "operators", "list")
    assert viewer.operator_id in listed and sato.key not in listed and viewer.key not in listed


async def test_tasks_past_due_are_marked_and_listed_due_first(console: tuple[Stack, Operator, Operator]) -> None:
    stack, sato, _ = console
    now = datetime.now(UTC)
    tenant = f"tenant-{uuid.uuid4().hex[:8]}"
    ids = []
    for days in (3, 1, -2):  # announced long ago, one still due in two days
        application_id = str(uuid.uuid4())
        ids.append(application_id)
        await stack.publish_event(stack.topology.name(routing.FULFILMENT_EXCHANGE), "fulfilment.requested", {
            "specversion": "1.0", "id": str(uuid.uuid4()), "source": "urn:arcserve:license-issuer",
            "type": "arcserve.fulfilment.requested", "tenantid": tenant, "data": {
                "application_id": application_id, "tenant": tenant, "contract_id": str(uuid.uuid4()),
                "kind": "addition", "submitted_at": (now - timedelta(days=days + 1)).isoformat(),
                "due_at": (now - timedelta(days=days)).isoformat(),
                "needs": {"arcserve_order_id": False, "licenses": []}}})
    await eventually(lambda: _count(sato, tenant, 3), "the three tasks in the console")

    first = (await sato.get("/ops/v1/fulfilments", tenant=tenant, limit=2)).json()
    assert [t["application_id"] for t in first["items"]] == ids[:2]  # due first
    rest = (await sato.get("/ops/v1/fulfilments", tenant=tenant, limit=2, cursor=first["next_cursor"])).json()
    assert [t["application_id"] for t in rest["items"]] == ids[2:] and rest["next_cursor"] is None
    overdue = (await sato.get("/ops/v1/fulfilments", tenant=tenant, overdue="true")).json()["items"]
    assert [t["application_id"] for t in overdue] == ids[:2] and all(t["overdue"] for t in overdue)
    assert (await sato.get("/ops/v1/fulfilments", tenant=tenant, kind="new")).json()["items"] == []
    assert_error(await sato.get("/ops/v1/fulfilments", cursor="garbage"), 422, "invalid_request")


async def test_a_cancellation_waits_in_the_console_until_an_operator_confirms_it_revoked_at_arcserve(
    console: tuple[Stack, Operator, Operator],
) -> None:
    stack, sato, viewer = console
    tenant = await stack.tenant()
    applied = (await stack.submit(tenant, new_application())).json()["application_id"]
    licenses = [lic["license_id"] for lic in (await sato.task(applied))["needs"]["licenses"]]
    keys = [simulated_license_key() for _ in licenses]
    fulfilled = await sato.post(f"/ops/v1/fulfilments/{applied}/fulfil", {"arcserve_order_id": "ARC-20261207-BYE",
        "license_keys": [{"license_id": i, "license_key": k} for i, k in zip(licenses, keys, strict=True)]})
    assert fulfilled.status_code == 200, fulfilled.text
    contract_id = (await stack.wait_application(tenant, applied, "completed"))["contract_id"]

    cancelled = (await stack.submit(tenant, {"kind": "cancellation", "contract_id": contract_id, "scope": "all"})).json()
    cancellation = cancelled["application_id"]
    await stack.wait_application(tenant, cancellation, "completed")  # for the tenant, at once (R8, R9)
    assert (await stack.contract(tenant, contract_id))["status"] == "cancelled"

    async def listed() -> dict[str, Any] | None:
        items = (await viewer.get("/ops/v1/revocations", tenant=tenant.name)).json()["items"]
        return items[0] if items else None

    revocation = await eventually(listed, "the revocation in the console")
    assert (revocation["application_id"], revocation["contract_id"], revocation["state"]) == (
        cancellation, contract_id, "open")
    assert revocation["arcserve_order_id"] == "ARC-20261207-BYE"
    assert revocation["licenses"] == [{"license_id": i, "key_ends_with": k[-5:]} for i, k in zip(licenses, keys, strict=True)]
    assert not any(key in str(revocation) for key in keys)

    assert_error(await viewer.post(f"/ops/v1/revocations/{cancellation}/confirm", None), 403, "forbidden")
    done = await sato.post(f"/ops/v1/revocations/{cancellation}/confirm", None)
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "confirmed" and done.json()["confirmed_by"] == sato.operator_id
    assert_error(await sato.post(f"/ops/v1/revocations/{cancellation}/confirm", None), 409, "not_open")
    assert (await viewer.get("/ops/v1/revocations", tenant=tenant.name)).json()["items"] == []  # open ones only
    assert await _audit(stack, cancellation) == [("revocations.confirm", f"operator {sato.operator_id} (佐藤)")]

    async def settled() -> bool:
        metrics = (await stack.http.get(stack.operator_url("license_issuer", "/metrics"))).text
        return 'arcserve_revocations_open{source="back-office"} 0.0' in metrics  # this stack's, read at scrape time

    await eventually(settled, "the license issuer to have the confirmation")


async def _count(operator: Operator, tenant: str, wanted: int) -> bool:
    return len((await operator.get("/ops/v1/fulfilments", tenant=tenant)).json()["items"]) == wanted


async def _audit(stack: Stack, subject: str) -> list[tuple[str, str]]:
    conn = await asyncpg.connect(stack.settings.database_url)
    try:
        rows = await conn.fetch("SELECT action, actor, detail FROM audit.records WHERE subject = $1 ORDER BY record_id",
                                subject)
    finally:
        await conn.close()
    return [(r["action"], r["actor"].split(" as ")[0]) for r in rows]


async def test_behind_an_authenticating_proxy_its_user_header_names_the_operator_and_only_where_configured(
    new_stack: Callable[..., Any], console: tuple[Stack, Operator, Operator],
) -> None:
    plain, _, _ = console  # a console that trusts no header
    answer = await plain.http.get(plain.url("backoffice", "/ops/v1/fulfilments"), headers={"X-Forwarded-User": "sato"})
    assert_error(answer, 401, "unauthorized")

    stack: Stack = await new_stack(fulfilment="back-office", trusted_user_header="X-Forwarded-User")
    await stack.start()
    await _operator(stack, "sato@example.co.jp", "fulfiller")
    tenant = await stack.tenant()
    application_id = (await stack.submit(tenant, new_application([
        {"usage": "bare_metal", "license_type": "per_server", "quantity": 1}]))).json()["application_id"]

    async def as_user(user: str, method: str, path: str, body: Any = None) -> httpx.Response:
        return await stack.http.request(method, stack.url("backoffice", path), json=body,
                                        headers={"X-Forwarded-User": user})

    async def listed() -> dict[str, Any] | None:
        found = (await as_user("sato@example.co.jp", "GET", f"/ops/v1/fulfilments/{application_id}"))
        return found.json() if found.status_code == 200 else None

    task = await eventually(listed, "the task, for the proxy's user")
    assert_error(await as_user("mallory@example.co.jp", "GET", "/ops/v1/fulfilments"), 401, "unauthorized")
    done = await as_user("sato@example.co.jp", "POST", f"/ops/v1/fulfilments/{application_id}/fulfil", {
        "arcserve_order_id": "ARC-PROXY-1",
        "license_keys": [{"license_id": task["needs"]["licenses"][0]["license_id"],
                          "license_key": simulated_license_key()}]})
    assert done.status_code == 200, done.text
    assert (await _audit(stack, application_id))[0][1].endswith("(sato@example.co.jp)")
    await stack.wait_application(tenant, application_id, "completed")


async def test_hostile_input_gets_a_clear_answer_never_a_server_error(console: tuple[Stack, Operator, Operator]) -> None:
    stack, sato, _ = console
    assert_error(await sato.get("/ops/v1/fulfilments", tenant="a\x00b"), 422, "invalid_request")
    assert_error(await sato.get(f"/ops/v1/fulfilments/{uuid.uuid4()}", tenant="a\x00b"), 404, "not_found")
    assert_error(await sato.get("/ops/v1/fulfilments/not-a-uuid"), 404, "not_found")
    assert_error(await sato.get("/ops/v1/revocations", tenant="a\x00b"), 422, "invalid_request")
    assert_error(await sato.get("/ops/v1/revocations", cursor="not-ours"), 422, "invalid_request")
    assert_error(await sato.post(f"/ops/v1/revocations/{uuid.uuid4()}/confirm?tenant=a%00b", None), 404, "not_found")
    assert_error(await sato.post("/ops/v1/revocations/not-a-uuid/confirm", None), 404, "not_found")
    assert_error(await sato.post(f"/ops/v1/fulfilments/{uuid.uuid4()}/fulfil", [1, 2]), 422, "invalid_fulfilment")
    too_big = {"reason": "x" * 70_000}
    assert (await sato.post(f"/ops/v1/fulfilments/{uuid.uuid4()}/reject", too_big)).status_code == 413
    page = await stack.http.get(stack.url("backoffice", "/tasks"), params={"tenant": "a\x00b", "kind": "nonsense"})
    assert page.status_code == 200  # the sign-in page: no key yet
    form = await stack.http.post(stack.url("backoffice", "/signin"), content=b"a=" + b"x" * 70_000,
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert form.status_code == 413
