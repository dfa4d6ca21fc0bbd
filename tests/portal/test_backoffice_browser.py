"""The back-office console end to end in a real headless Chromium (`ARCSERVE_FULFILMENT=back-office`;
docs/architecture.md, "Fulfilment"): a tenant's new application stays 新規準備中 until an operator
fulfils it in the console, then it is 提供中 with exactly the keys typed in, in the tenant's
portal and command line; a field's problem is shown beside it; a rejection shows the operator's
reason to the tenant; a cancellation waits on its page of revocations until an operator
confirms it revoked at Arcserve; the console speaks Japanese and English."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page, expect

from shared.issuance import simulated_license_key
from tests.cli.test_cli import ok as arcserve_ok
from tests.portal.test_portal_browser import CSP_WATCH, row, signed_in
from tests.support.stack import Stack, Tenant, new_application
from tests.support.tools import ok

WAIT_MS = 10_000


async def operator_key(stack: Stack, role: str = "fulfiller") -> str:
    return (await ok(stack, "operators", "create", "佐藤 花子", "--role", role)).splitlines()[-1]


async def console(browser: Browser, stack: Stack, key: str) -> Page:
    page = await (await browser.new_context()).new_page()
    await page.add_init_script(CSP_WATCH)
    await page.goto(stack.url("backoffice", "/"))
    await page.get_by_label("オペレーターキー").fill(key)
    await page.get_by_role("button", name="サインイン").click()
    await expect(page.get_by_role("heading", name="フルフィルメント依頼")).to_be_visible()
    return page


async def test_an_operator_fulfils_a_new_application_in_the_console(
        new_stack: Callable[..., Any], chromium: Browser, screenshots: Path) -> None:
    stack: Stack = await new_stack(fulfilment="back-office")
    await stack.start()
    await stack.start_portal()
    tenant = await stack.tenant()
    application_id = (await stack.submit(tenant, new_application([
        {"usage": "virtual_server", "license_type": "per_server", "quantity": 2}]))).json()["application_id"]
    portal = await signed_in(chromium, stack, tenant)
    contract_id = await portal.locator("tr[data-contract]").first.get_attribute("data-contract")
    assert contract_id
    await expect(row(portal, contract_id).locator(".status")).to_have_text("新規準備中 preparing")

    page = await console(chromium, stack, await operator_key(stack))
    await page.get_by_label("テナント").fill(tenant.name)
    await page.get_by_role("button", name="絞り込む").click()
    task_row = page.locator(f'tr[data-application="{application_id}"]')
    await expect(task_row).to_contain_text("オーダーID, キー 2 件", timeout=WAIT_MS)
    await expect(task_row.locator(".badge.overdue")).to_have_count(0)  # due in five business days
    await page.screenshot(path=screenshots / "backoffice-tasks.png", full_page=True)
    await task_row.get_by_role("link").click()

    keys = [simulated_license_key(), simulated_license_key()]
    await page.get_by_label("Arcserve オーダーID").fill("ARC-20261207-BROWSER")
    await page.get_by_label("ライセンスキー 1").fill("not a key")
    await page.get_by_label("ライセンスキー 2").fill(keys[1])
    await page.get_by_role("button", name="発行を登録する").click()
    first = page.get_by_label("ライセンスキー 1")
    await expect(first).to_have_attribute("aria-invalid", "true")  # beside the field, the rest kept
    await expect(page.locator(".field-error")).to_contain_text("five groups of five")
    await expect(page.get_by_label("ライセンスキー 2")).to_have_value(keys[1])
    # Still waiting: the tenant's contract has not moved.
    await expect(row(portal, contract_id).locator(".status")).to_have_text("新規準備中 preparing")

    await first.fill(keys[0].lower())  # as typed: the console keeps Arcserve's upper case
    await page.screenshot(path=screenshots / "backoffice-task.png", full_page=True)
    await page.get_by_role("button", name="発行を登録する").click()
    await expect(page.locator(".notice")).to_contain_text("発行を登録しました")
    await expect(page.locator("dd.state")).to_contain_text("発行済")

    await expect(row(portal, contract_id).locator(".status")).to_have_text("提供中 active", timeout=WAIT_MS)
    await portal.goto(stack.portal_url + f"/contracts/{contract_id}")
    for key in keys:
        await expect(portal.locator("#contract")).to_contain_text(key)
    shown = (await arcserve_ok(stack, tenant, "contract", contract_id, "--json")).json()
    assert sorted(lic["license_key"] for lic in shown["licenses"]) == sorted(keys)
    assert shown["arcserve_order_id"]["value"] == "ARC-20261207-BROWSER"

    # The tenant cancels: cancelled for them at once; the console asks for the revocation at Arcserve.
    cancellation = (await stack.submit(tenant, {"kind": "cancellation", "contract_id": contract_id,
                                                "scope": "all"})).json()["application_id"]
    await stack.wait_application(tenant, cancellation, "completed")
    await portal.goto(stack.portal_url + "/")
    await expect(row(portal, contract_id).locator(".status")).to_have_text("廃止済 cancelled", timeout=WAIT_MS)
    await page.get_by_role("link", name="Arcserve での失効").click()
    revocation = page.locator(f'tr[data-application="{cancellation}"]')
    await expect(revocation).to_contain_text("ARC-20261207-BROWSER", timeout=WAIT_MS)
    for key in keys:
        await expect(revocation).to_contain_text(f"末尾 {key[-5:]}")
        await expect(revocation).not_to_contain_text(key)
    await page.screenshot(path=screenshots / "backoffice-revocations.png", full_page=True)
    await revocation.get_by_role("button", name="失効を確認済みにする").click()
    await expect(page.locator(".notice")).to_contain_text("確認済みにしました")
    await expect(page.locator(f'tr[data-application="{cancellation}"]')).to_have_count(0)  # open ones only
    await page.goto(stack.url("backoffice", "/revocations?state=confirmed"))
    await expect(page.locator(f'tr[data-application="{cancellation}"] .state')).to_contain_text("確認済")
    assert await page.evaluate("window.cspViolations") == []


async def test_a_rejection_in_the_console_shows_the_reason_to_the_tenant(
        new_stack: Callable[..., Any], chromium: Browser) -> None:
    stack: Stack = await new_stack(fulfilment="back-office")
    await stack.start()
    await stack.start_portal()
    tenant: Tenant = await stack.tenant()
    application_id = (await stack.submit(tenant, new_application())).json()["application_id"]
    viewer = await console(chromium, stack, await operator_key(stack, "viewer"))
    await viewer.goto(stack.url("backoffice", f"/tasks/{tenant.name}/{application_id}"))
    await expect(viewer.get_by_text("閲覧者として表示しています")).to_be_visible(timeout=WAIT_MS)
    await expect(viewer.get_by_role("button", name="発行を登録する")).to_have_count(0)  # a viewer only sees

    page = await console(chromium, stack, await operator_key(stack))
    await page.goto(stack.url("backoffice", f"/tasks/{tenant.name}/{application_id}"))
    await page.get_by_role("button", name="お断りとして登録する").click()  # no reason yet
    await expect(page.get_by_label("理由(テナントに表示されます)")).to_have_attribute("aria-invalid", "true")
    await page.get_by_label("理由(テナントに表示されます)").fill("ご指定の製品は販売を終了しました")
    await page.get_by_role("button", name="お断りとして登録する").click()
    await expect(page.locator(".notice")).to_contain_text("お断りとして登録しました")

    await stack.wait_application(tenant, application_id, "rejected")
    portal = await signed_in(chromium, stack, tenant)
    await portal.goto(stack.portal_url + f"/applications/{application_id}")
    await expect(portal.locator("main")).to_contain_text(
        "Arcserveが申込を受け付けませんでした: ご指定の製品は販売を終了しました")

    await page.get_by_role("link", name="English").click()
    await expect(page.get_by_role("heading", name="new")).to_be_visible()
    await page.goto(stack.url("backoffice", "/tasks?state=rejected"))
    await expect(page.get_by_role("heading", name="Fulfilment tasks")).to_be_visible()
    await expect(page.locator(f'tr[data-application="{application_id}"] .state')).to_have_text("rejected")
