"""The license main menu end to end in a real headless Chromium: a tenant signs in, applies,
watches 新規準備中 turn into 提供中 without a reload, adds keys, meets a rule that forbids an
action and reads why, cancels one key and then all, and a second tenant sees none of it."""
from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Locator, Page, expect

from tests.support.stack import Stack, Tenant

LIVE_S = 1.0  # "within a second of the event"
# The simulated vendor: slow enough that each step reads the state in between, fast enough for a test.
SLOW_NEW_S = 4.0
SLOW_CHANGE_S = 8.0
# Every page reports what the Content-Security-Policy blocked (nothing, if no page breaks it).
CSP_WATCH = """window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => window.cspViolations.push(e.violatedDirective));"""


async def signed_in(browser: Browser, stack: Stack, tenant: Tenant, **context: Any) -> Page:
    page = await (await browser.new_context(**context)).new_page()
    await page.add_init_script(CSP_WATCH)
    await page.goto(stack.portal_url + "/")
    await page.get_by_label("APIキー").fill(tenant.key)
    await page.get_by_label("APIキー").press("Enter")  # by keyboard
    await expect(page.get_by_role("heading", name="メインメニュー")).to_be_visible()
    return page


def row(page: Page, contract_id: str) -> Locator:
    return page.locator(f'tr[data-contract="{contract_id}"]')


async def test_a_tenant_runs_the_contract_process_in_the_browser(
        new_stack: Callable[..., Any], chromium: Browser, screenshots: Path) -> None:
    stack: Stack = await new_stack(sim_new_delay_s=SLOW_NEW_S, sim_change_delay_s=SLOW_CHANGE_S)
    await stack.start()
    await stack.start_portal()
    tenant, other = await stack.tenant(), await stack.tenant()
    page = await signed_in(chromium, stack, tenant)

    # 1. a new contract
    await page.get_by_role("link", name="新規申込").click()
    await expect(page.get_by_text("希望日は指定できません")).to_be_visible()  # R4, said on the form
    await page.get_by_label("連絡先メールアドレス").fill("ops@example.co.jp")
    await page.get_by_label("連絡先会社名").fill("Example K.K.")
    await page.locator('[name="licenses.0.quantity"]').fill("2")
    await page.get_by_role("button", name="申し込む").click()
    await expect(page.get_by_role("heading", name="申込")).to_be_visible()
    await page.get_by_role("link", name="メインメニューへ戻る").click()

    # 2. 新規準備中 turns into 提供中 on screen, with no reload
    contract_id = await page.locator("tr[data-contract]").first.get_attribute("data-contract")
    assert contract_id
    await expect(row(page, contract_id).locator(".status")).to_have_text("新規準備中 preparing")  # both labels
    await page.evaluate("window.notReloaded = true")
    # 4 (while it lasts). a forbidden action says why: R3
    await expect(row(page, contract_id).locator(".button.disabled", has_text="追加")).to_have_attribute("aria-disabled", "true")
    await expect(row(page, contract_id)).to_contain_text("新規準備中のため")
    status = await stack.wait_application(tenant, (await stack.get(tenant, "/v1/applications")).json()["items"][0]["application_id"])
    assert status["status"] == "completed"
    await expect(row(page, contract_id).locator(".status")).to_have_text("提供中 active", timeout=LIVE_S * 1000 + 500)
    assert await page.evaluate("window.notReloaded") is True
    await expect(row(page, contract_id).locator(".order-id code")).to_have_text(re.compile(r"\S+"))
    await page.screenshot(path=screenshots / "main-menu.png", full_page=True)

    # 3. more keys; while they are issued, cancelling is refused: R6
    await row(page, contract_id).get_by_role("link", name="追加").click()
    await page.locator('[name="licenses.0.quantity"]').fill("1")
    await page.get_by_role("button", name="申し込む").click()
    await page.get_by_role("link", name="契約の詳細へ").click()
    await expect(page.locator("#contract")).to_contain_text("処理中")
    await expect(page.locator(".button.disabled", has_text="廃止")).to_be_visible()
    await expect(page.locator("#contract")).to_contain_text("追加または仮想サーバー数追加の処理中は廃止できません")
    await expect(page.locator("tr[data-license] .status", has_text="提供中")).to_have_count(3, timeout=(SLOW_CHANGE_S + 5) * 1000)
    await expect(page.locator("button.copy")).to_have_count(3)
    await expect(page.locator(".button", has_text="廃止").and_(page.locator("a"))).to_be_visible()
    await page.screenshot(path=screenshots / "detail-view.png", full_page=True)

    # 5. cancel one key, then all
    first_key = await page.locator("tr[data-license]").first.get_attribute("data-license")
    assert first_key
    await page.get_by_role("link", name="廃止").click()
    await expect(page.get_by_text("廃止は受付と同時に反映されます")).to_be_visible()
    await page.get_by_label("選択したライセンスキー").check()
    await page.get_by_label(re.compile(re.escape(first_key[:8]))).check()
    await page.get_by_role("button", name="申し込む").click()
    await expect(page.locator("#application .status")).to_have_text("完了 completed", timeout=10_000)
    await page.get_by_role("link", name="契約の詳細へ").click()
    await expect(page.locator("tr[data-license] .status", has_text="廃止済")).to_have_count(1)
    await page.get_by_role("link", name="廃止").click()
    await page.get_by_label(re.compile("すべてのライセンスキー")).check()
    await page.get_by_role("button", name="申し込む").click()
    await expect(page.locator("#application .status")).to_have_text("完了 completed", timeout=10_000)
    await page.get_by_role("link", name="メインメニューへ戻る").click()
    await expect(row(page, contract_id).locator(".status")).to_have_text("廃止済 cancelled")
    await expect(row(page, contract_id).locator(".button.disabled", has_text="追加")).to_be_visible()
    await expect(row(page, contract_id)).to_contain_text("廃止済の契約には申し込めません")  # R10

    # 6. a second tenant sees none of it
    theirs = await signed_in(chromium, stack, other)
    await expect(theirs.get_by_text("ご契約はまだありません")).to_be_visible()
    answer = await theirs.goto(f"{stack.portal_url}/contracts/{contract_id}")
    assert answer is not None and answer.status == 404
    assert contract_id not in await theirs.locator("main").inner_html()
    for seen in (page, theirs):
        assert await seen.evaluate("window.cspViolations") == []


async def test_forms_show_the_apis_errors_next_to_their_fields(stack: Stack, tenant: Tenant, chromium: Browser) -> None:
    page = await signed_in(chromium, stack, tenant)
    await page.goto(stack.portal_url + "/apply/new")
    await page.get_by_label("連絡先メールアドレス").fill("not-an-email")
    await page.get_by_label("連絡先会社名").fill("Example K.K.")
    await page.locator('[name="licenses.1.usage"]').select_option("virtual_server")
    await page.locator('[name="licenses.1.license_type"]').select_option("dedicated_hypervisor")
    await page.locator('[name="licenses.1.quantity"]').fill("1")
    await page.get_by_role("button", name="申し込む").click()
    await expect(page.get_by_role("alert").first).to_be_visible()
    email = page.get_by_label("連絡先メールアドレス")
    await expect(email).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#err-contact-email")).to_contain_text("email")
    await expect(page.locator("#err-licenses-1")).to_contain_text("cannot take license_type")  # on the row typed
    await expect(email).to_have_value("not-an-email")  # what was typed stays
    assert (await stack.get(tenant, "/v1/applications")).json()["items"] == []  # nothing was applied for
    assert await page.evaluate("window.cspViolations") == []


async def test_english_phone_and_keyboard(stack: Stack, tenant: Tenant, chromium: Browser, screenshots: Path) -> None:
    await stack.active_contract(tenant)
    page = await signed_in(chromium, stack, tenant, viewport={"width": 375, "height": 740}, is_mobile=True)
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "wider than a phone"
    await page.screenshot(path=screenshots / "main-menu-phone.png", full_page=True)
    await page.get_by_role("link", name="English").click()
    await expect(page.get_by_role("heading", name="Main menu")).to_be_visible()
    await expect(page.locator("tr[data-contract] .status")).to_have_text("active 提供中")
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.textContent") == "Skip to content"
    for status in await page.locator(".status").all():  # readable contrast: WCAG AA
        assert await page.evaluate(CONTRAST, await status.element_handle()) >= 4.5
    unlabeled = await page.evaluate("""[...document.querySelectorAll('input:not([type=hidden]), select, button')]
        .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim()).length""")
    assert unlabeled == 0
    assert await page.evaluate("window.cspViolations") == []


CONTRAST = """(element) => {
  const rgb = (c) => c.match(/\\d+(\\.\\d+)?/g).slice(0, 3).map(Number);
  const lum = ([r, g, b]) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
                               return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const style = getComputedStyle(element);
  const [a, b] = [lum(rgb(style.color)), lum(rgb(style.backgroundColor))].sort((x, y) => y - x);
  return (a + 0.05) / (b + 0.05);
}"""
