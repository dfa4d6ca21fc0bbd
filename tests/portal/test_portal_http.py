"""The portal over plain HTTP (no browser): the one origin of the whole /v1 API, sign-in and
its session cookie, CSRF, tenant isolation in pages, and the security headers."""
from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from shared.contracts import asyncapi, catalogue
from shared.http.sessions import COOKIE
from tests.support.stack import EventTap, Stack, Tenant, new_application

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found, f"no CSRF token on the page: {page.text[:300]}"
    return found.group(1)


@pytest.fixture
async def browser(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """A cookie-keeping client on the portal's origin."""
    async with httpx.AsyncClient(base_url=stack.portal_url, timeout=10) as client:
        yield client


async def sign_in(client: httpx.AsyncClient, tenant: Tenant) -> httpx.Response:
    page = await client.get("/")
    return await client.post("/signin", data={"csrf": csrf_of(page), "api_key": tenant.key})


# ---- one origin: /v1 forwarded ----------------------------------------------------------
async def test_the_portal_origin_serves_the_whole_api(stack: Stack, tenant: Tenant) -> None:
    auth = {"Authorization": f"Bearer {tenant.key}"}
    async with httpx.AsyncClient(base_url=stack.portal_url, timeout=10, headers=auth) as api:
        submitted = await api.post("/v1/applications", json=new_application(), headers={"Idempotency-Key": "one"})
        assert submitted.status_code == 202, submitted.text
        application_id = submitted.json()["application_id"]
        assert submitted.headers["location"].endswith(f"/v1/applications/{application_id}")
        again = await api.post("/v1/applications", json=new_application(), headers={"Idempotency-Key": "one"})
        assert again.json()["application_id"] == application_id  # the header went through

        done = await stack.wait_application(tenant, application_id)
        assert (await api.get(f"/v1/applications/{application_id}")).json() == done
        listed = await api.get("/v1/contracts", params={"product": "arcserve-udp-10"})
        assert listed.status_code == 200
        assert [c["contract_id"] for c in listed.json()["items"]] == [done["contract_id"]]
        assert (await api.get(f"/v1/contracts/{done['contract_id']}")).json() == await stack.contract(tenant, done["contract_id"])

        bad = await api.post("/v1/applications", json={**new_application(), "desired_start_date": "2027-01-01"})
        assert bad.status_code == 422 and bad.json()["code"] == "invalid_application"
        assert "desired_start_date" in bad.json()["message"]
        unknown = await api.get(f"/v1/contracts/{uuid.uuid4()}")
        assert unknown.status_code == 404 and unknown.json()["code"] == "not_found"
        detail = await api.get(f"/v1/contracts/{done['contract_id']}")
        assert detail.headers["cache-control"] == "no-store"  # it carries license keys
        assert detail.headers["x-content-type-options"] == "nosniff"
        for climbing in ("/v1/..%2Fmetrics", "/v1/%2e%2e/metrics", "/v1/contracts/..%2F..%2Freadyz"):
            outside = await api.get(climbing)
            assert outside.status_code == 404 and "arcserve_" not in outside.text, climbing  # no metrics
    unauthorized = await stack.http.get(f"{stack.portal_url}/v1/contracts", headers={"Authorization": "Bearer nope"})
    assert unauthorized.status_code == 401 and unauthorized.json()["code"] == "unauthorized"
    assert unauthorized.headers["www-authenticate"] == "Bearer"


# ---- sign-in and the session cookie -----------------------------------------------------
async def test_sign_in_sets_a_sealed_http_only_strict_cookie_and_sign_out_ends_it(
        stack: Stack, tenant: Tenant, browser: httpx.AsyncClient) -> None:
    signed = await sign_in(browser, tenant)
    assert signed.status_code == 303 and signed.headers["location"] == "/"
    cookie = next(h for h in signed.headers.get_list("set-cookie") if h.startswith(f"{COOKIE}="))
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert "httponly" in flags and "samesite=strict" in flags and "path=/" in flags
    assert tenant.key not in cookie  # sealed, not merely encoded

    menu = await browser.get("/")
    assert "メインメニュー" in menu.text and 'name="api_key"' not in menu.text
    assert tenant.key not in menu.text

    out = await browser.post("/signout", data={"csrf": csrf_of(menu)})
    assert out.status_code == 303
    assert 'name="api_key"' in (await browser.get("/")).text  # the sign-in form again


async def test_a_wrong_key_is_refused_at_sign_in(stack: Stack, browser: httpx.AsyncClient) -> None:
    page = await browser.get("/")
    for wrong in ("not-a-key", "ｋｅｙ-全角", "a" * 300, "two words"):
        refused = await browser.post("/signin", data={"csrf": csrf_of(page), "api_key": wrong})
        assert refused.status_code == 401, wrong
        assert "APIキーが正しくないか" in refused.text and wrong not in refused.text


async def test_a_forged_or_tampered_cookie_is_no_session(stack: Stack, tenant: Tenant, browser: httpx.AsyncClient) -> None:
    await sign_in(browser, tenant)
    sealed = browser.cookies[COOKIE]
    browser.cookies.delete(COOKIE)
    browser.cookies.set(COOKIE, sealed[:-8] + "AAAAAAAA")
    assert len(browser.cookies.jar) == 1
    assert 'name="api_key"' in (await browser.get("/")).text


# ---- CSRF ----------------------------------------------------------------------------------
async def test_every_form_refuses_a_post_without_its_token(stack: Stack, tenant: Tenant, browser: httpx.AsyncClient) -> None:
    page = await browser.get("/")
    assert (await browser.post("/signin", data={"api_key": tenant.key})).status_code == 403
    assert (await browser.post("/signin", data={"api_key": tenant.key, "csrf": "forged"})).status_code == 403
    assert (await browser.post("/signin", data={"csrf": csrf_of(page), "api_key": tenant.key})).status_code == 303

    contract = await stack.active_contract(tenant)
    cid = contract["contract_id"]
    new_form = {"product": "arcserve-udp-10", "contact.email": "a@example.co.jp", "contact.company_name": "A",
                "licenses.0.usage": "virtual_server", "licenses.0.license_type": "per_server", "licenses.0.quantity": "1"}
    forms = {
        "/apply/new": new_form,
        f"/contracts/{cid}/addition": new_form,
        f"/contracts/{cid}/contact_change": {"contact.email": "b@example.co.jp", "contact.company_name": "B"},
        f"/contracts/{cid}/cancellation": {"scope": "all"},
        "/signout": {},
    }
    for path, data in forms.items():
        refused = await browser.post(path, data=data)
        assert refused.status_code == 403, path
    after = await stack.contract(tenant, cid)
    assert after["status"] == "active" and after["contact"]["email"] == "ops@example.co.jp"
    assert after["applications_total"] == 1  # nothing was applied for


# ---- tenant isolation in pages ----------------------------------------------------------
async def test_another_tenants_contract_and_application_answer_404_in_pages(
        stack: Stack, tenant: Tenant, other_tenant: Tenant, browser: httpx.AsyncClient) -> None:
    theirs = await stack.active_contract(other_tenant)
    their_application = theirs["applications"][0]["application_id"]
    await sign_in(browser, tenant)
    for path in (f"/contracts/{theirs['contract_id']}", f"/contracts/{theirs['contract_id']}/live",
                 f"/contracts/{theirs['contract_id']}/addition", f"/contracts/{theirs['contract_id']}/cancellation",
                 f"/applications/{their_application}", f"/applications/{their_application}/live",
                 "/contracts/not-a-uuid", f"/applications/{their_application}?since={int(time.time())}&proof=0123456789abcdef",
                 f"/applications/{uuid.uuid4()}?since={int(time.time())}&proof=0123456789abcdef"):
        page = await browser.get(path)
        assert page.status_code == 404, path
        assert theirs["contract_id"] not in page.text.replace(path, "")
    menu = await browser.get("/")
    assert theirs["contract_id"] not in menu.text


# ---- headers ------------------------------------------------------------------------------
async def test_pages_carry_a_strict_content_security_policy_and_are_not_cached(
        stack: Stack, browser: httpx.AsyncClient) -> None:
    page = await browser.get("/")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in page.text and " style=" not in page.text and "onclick" not in page.text
    assert (await browser.get("/static/portal.js")).status_code == 200


async def test_the_language_switch_stays_on_this_site(stack: Stack, browser: httpx.AsyncClient) -> None:
    switched = await browser.get("/lang/en", params={"next": "//evil.example/"})
    assert switched.headers["location"] == "/"
    assert "Sign in" in (await browser.get("/")).text
    await browser.get("/lang/ja")
    assert "サインイン" in (await browser.get("/")).text


# ---- the forms reached from 詳細 ----------------------------------------------------------
async def test_the_vm_count_and_contact_forms_apply_and_a_forbidden_key_says_why(
        stack: Stack, tenant: Tenant, browser: httpx.AsyncClient) -> None:
    contract = await stack.active_contract(tenant, [
        {"usage": "virtual_server", "license_type": "per_server", "quantity": 1},
        {"usage": "hypervisor", "license_type": "dedicated_hypervisor", "quantity": 1, "vm_count": 10}])
    cid = contract["contract_id"]
    dedicated = next(lic for lic in contract["licenses"] if lic["license_type"] == "dedicated_hypervisor")
    await sign_in(browser, tenant)

    detail = await browser.get(f"/contracts/{cid}")
    assert f'/contracts/{cid}/vm_count_increase?license_id={dedicated["license_id"]}' in detail.text
    form = await browser.get(f"/contracts/{cid}/vm_count_increase", params={"license_id": dedicated["license_id"]})
    assert f'<option value="{dedicated["license_id"]}" selected>' in form.text
    applied = await browser.post(f"/contracts/{cid}/vm_count_increase", data={
        "csrf": csrf_of(form), "license_id": dedicated["license_id"], "additional_vms": "5",
        "idempotency_key": "vm-once"})
    assert applied.status_code == 303 and applied.headers["location"].startswith("/applications/")
    again = await browser.post(f"/contracts/{cid}/vm_count_increase", data={  # the same form sent twice
        "csrf": csrf_of(form), "license_id": dedicated["license_id"], "additional_vms": "5",
        "idempotency_key": "vm-once"})
    assert again.headers["location"].split("?")[0] == applied.headers["location"].split("?")[0]
    application_id = applied.headers["location"].split("/")[-1].split("?")[0]
    assert (await stack.wait_application(tenant, application_id))["status"] == "completed"
    after = await stack.contract(tenant, cid)
    assert next(lic for lic in after["licenses"] if lic["license_id"] == dedicated["license_id"])["vm_count"] == 15
    assert after["applications_total"] == 2  # once, however often the form was sent

    form = await browser.get(f"/contracts/{cid}/contact_change")
    assert 'value="ops@example.co.jp"' in form.text  # the current contact to start from
    changed = await browser.post(f"/contracts/{cid}/contact_change", data={
        "csrf": csrf_of(form), "contact.email": "new@example.co.jp", "contact.company_name": "New K.K.",
        "idempotency_key": "contact-once"})
    assert changed.status_code == 303
    await stack.wait_application(tenant, changed.headers["location"].split("/")[-1].split("?")[0])
    assert (await stack.contract(tenant, cid))["contact"] == {"email": "new@example.co.jp", "company_name": "New K.K."}

    # R7 through the form: a per-server key cannot take VMs; the API's reason is shown
    per_server = next(lic for lic in contract["licenses"] if lic["license_type"] == "per_server")
    refused = await browser.post(f"/contracts/{cid}/vm_count_increase", data={
        "csrf": csrf_of(form), "license_id": per_server["license_id"], "additional_vms": "5"})
    assert refused.status_code == 303
    await stack.wait_application(tenant, refused.headers["location"].split("/")[-1].split("?")[0])
    page = await browser.get(refused.headers["location"].split("?")[0])
    assert "却下" in page.text and "not_dedicated_hypervisor" in page.text
    assert "提供中の専用ハイパーバイザーライセンスのみ仮想サーバー数を追加できます" in page.text


async def test_a_form_with_odd_input_answers_with_the_field_errors_and_keeps_what_was_typed(
        stack: Stack, tenant: Tenant, browser: httpx.AsyncClient) -> None:
    await sign_in(browser, tenant)
    form = await browser.get("/apply/new")
    answer = await browser.post("/apply/new", data={
        "csrf": csrf_of(form), "idempotency_key": "odd", "product": "arcserve-udp-10",
        "contact.email": "ops@example.co.jp", "contact.company_name": "Example",
        "licenses.0.usage": "virtual_server", "licenses.0.license_type": "per_server", "licenses.0.quantity": "²",
        "licenses.1.usage": "virtual_server", "licenses.1.license_type": "per_server", "licenses.1.quantity": "9" * 40})
    assert answer.status_code == 422
    assert 'id="err-licenses-0-quantity"' in answer.text and 'id="err-licenses-1-quantity"' in answer.text
    assert 'value="²"' in answer.text and 'value="ops@example.co.jp"' in answer.text
    assert (await stack.get(tenant, "/v1/applications")).json()["items"] == []


async def test_the_portal_serves_the_amqp_contract_every_event_points_into(stack: Stack, tenant: Tenant) -> None:
    served = await stack.http.get(f"{stack.portal_url}/asyncapi.json")
    assert served.status_code == 200 and served.json() == asyncapi.document()
    async with EventTap(stack, "application.accepted.new") as tap:
        contract = await stack.active_contract(tenant)
        event = await tap.wait_for("application.accepted.new", contract_id=contract["contract_id"])
    schema = event["dataschema"].removeprefix(catalogue.DATASCHEMA + "#/components/schemas/")
    assert schema in served.json()["components"]["schemas"]


async def test_a_form_past_the_size_limit_or_of_unknown_length_is_refused_before_it_is_read(
        stack: Stack, browser: httpx.AsyncClient) -> None:
    page = await browser.get("/")
    huge = await browser.post("/signin", data={"csrf": csrf_of(page), "api_key": "k" * (70 * 1024)})
    assert huge.status_code == 413 and "64 KiB" in huge.text

    async def chunks() -> AsyncIterator[bytes]:
        yield f"csrf={csrf_of(page)}&api_key=k".encode()

    unknown = await browser.post("/signin", content=chunks(),
                                 headers={"content-type": "application/x-www-form-urlencoded"})
    assert unknown.status_code == 411
    assert (await browser.get("/")).status_code == 200  # the portal carries on


# ---- hostile query parameters -------------------------------------------------------------
@pytest.mark.parametrize("value", [["2024-01-01T00:00:00+00:00", 5], ["9999-12-31T23:59:59-14:00", str(uuid.UUID(int=0))]],
                         ids=["int-id", "year-9999-minus-14h"])
async def test_the_menu_refuses_a_crafted_cursor_with_a_4xx(stack: Stack, tenant: Tenant, browser: httpx.AsyncClient,
                                                            value: list[object]) -> None:
    """A cursor the API never returned (the status API answered 500 to both, the menu 503)."""
    cursor = base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")
    await sign_in(browser, tenant)
    for page in ("/", "/menu/rows"):
        response = await browser.get(page, params={"cursor": cursor})
        assert response.status_code == 422, (page, response.status_code, response.text[:500])
        assert "cursor" in response.text
    forwarded = await browser.get("/v1/contracts", params={"cursor": cursor}, headers={"Authorization": f"Bearer {tenant.key}"})
    assert forwarded.status_code == 422 and forwarded.json()["code"] == "invalid_request", forwarded.text
