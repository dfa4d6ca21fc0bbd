"""The tenants' command line `arcserve` (docs/architecture.md, "Portal and command line") against the real
stack, through the portal's one base URL. The CLI runs as a real process (the services run in
this test's event loop, so nothing here may block it), configured as a tenant configures it:
ARCSERVE_URL and ARCSERVE_API_KEY. The tests assert what a user notices: the exit status, the
words on the screen (English values with their Japanese labels), and that --json is the API's
own answer."""
from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.ports import free_ports
from tests.support.stack import Stack, Tenant

ROOT = Path(__file__).resolve().parents[2]
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
DEDICATED = {"usage": "hypervisor", "license_type": "dedicated_hypervisor", "quantity": 1, "vm_count": 10}
VIRTUAL = {"usage": "virtual_server", "license_type": "per_server", "quantity": 2}
NEW = ["apply", "new", "--email", "ops@example.co.jp", "--company", "Example K.K."]
RUN_TIMEOUT_S = 30.0  # a watch has no deadline of its own; a test does


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    @property
    def said(self) -> str:
        """stdout and stderr as one line of words: rich's boxes and line breaks removed."""
        return " ".join(re.sub(r"[│╭╮╰╯─┃━┏┓┗┛┡┩└┘┌┐├┤┬┴┼╇╈╿╽]", " ", self.out + "\n" + self.err).split())


async def run(url: str, key: str | None, *args: str, program: list[str] | None = None) -> Run:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCSERVE_") and k != "COLUMNS"}
    env.update(ARCSERVE_URL=url, PYTHONIOENCODING="utf-8")
    if key is not None:
        env["ARCSERVE_API_KEY"] = key
    process = await asyncio.create_subprocess_exec(
        *(program or [sys.executable, "-m", "services.cli"]), *args,
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout=RUN_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"arcserve {' '.join(args)} did not end within {RUN_TIMEOUT_S}s") from None
    assert process.returncode is not None
    return Run(process.returncode, out.decode(), err.decode())


async def arcserve(stack: Stack, tenant: Tenant, *args: str) -> Run:
    return await run(stack.portal_url, tenant.key, *args)


async def ok(stack: Stack, tenant: Tenant, *args: str) -> Run:
    result = await arcserve(stack, tenant, *args)
    assert result.code == 0, (args, result)
    assert "Traceback" not in result.err, result.err
    return result


async def api(stack: Stack, tenant: Tenant, path: str) -> Any:
    response = await stack.get(tenant, path)
    assert response.status_code == 200, response.text
    return response.json()


def ids(text: str) -> list[str]:
    return UUID.findall(text)


# ---- tests ---------------------------------------------------------------------------------


async def test_installed_entry_point_shows_help_without_the_key() -> None:
    secret = "never-shown-" + secrets.token_urlsafe(12)
    program = [str(Path(sys.executable).parent / "arcserve")]
    result = await run("http://127.0.0.1:8084", secret, "--help", program=program)
    assert result.code == 0, result
    for command in ("apply", "contracts", "contract", "application", "applications", "ARCSERVE_API_KEY"):
        assert command in result.out
    new_help = await run("http://127.0.0.1:8084", secret, "apply", "new", "--help", program=program)
    assert new_help.code == 0 and "--license" in new_help.out and "--watch" in new_help.out
    assert secret not in result.out + result.err + new_help.out + new_help.err


async def test_new_application_watched_until_completed(stack: Stack, tenant: Tenant) -> None:
    result = await ok(stack, tenant, *NEW, "--product", "arcserve-udp-10", "--license", "virtual_server:per_server:2",
                      "--license", "hypervisor:dedicated_hypervisor:1:10", "--watch")
    assert "completed 完了" in result.said
    application_id = ids(result.out)[0]
    application = await api(stack, tenant, f"/v1/applications/{application_id}")
    assert application["status"] == "completed" and application["kind"] == "new"
    contract = await stack.contract(tenant, application["contract_id"])
    assert contract["status"] == "active"
    assert sorted((lic["usage"], lic["vm_count"]) for lic in contract["licenses"]) == [
        ("hypervisor", 10), ("virtual_server", None), ("virtual_server", None)]

    # Without --watch: the id and status at once; with --json: the API's 202 answer.
    submitted = await ok(stack, tenant, *NEW, "--product", "arcserve-udp-9", "--license", "bare_metal:per_server:1",
                         "--json", "--idempotency-key", "cli-test-1")
    answer = submitted.json()
    assert answer["status"] == "received" and UUID.fullmatch(answer["application_id"])
    again = await ok(stack, tenant, *NEW, "--product", "arcserve-udp-9", "--license", "bare_metal:per_server:1",
                     "--idempotency-key", "cli-test-1")
    assert answer["application_id"] in again.out and "received 受付済" in again.said  # same key, same application
    watched = await ok(stack, tenant, "application", answer["application_id"], "--watch", "--json")
    assert watched.json() == await api(stack, tenant, f"/v1/applications/{answer['application_id']}")
    assert watched.json()["status"] == "completed"


async def test_contracts_and_contract_detail(stack: Stack, tenant: Tenant) -> None:
    contract = await stack.active_contract(tenant, [VIRTUAL, DEDICATED])
    contract_id, order_id = contract["contract_id"], contract["arcserve_order_id"]["value"]

    menu = await ok(stack, tenant, "contracts")
    assert contract_id in menu.out and order_id in menu.out
    assert "active 提供中" in menu.said and "仮想サーバー" in menu.said
    assert (await ok(stack, tenant, "contracts", "--json")).json() == await api(stack, tenant, "/v1/contracts")
    cancelled_only = await ok(stack, tenant, "contracts", "--status", "cancelled", "--json")
    assert cancelled_only.json()["items"] == []

    detail = await ok(stack, tenant, "contract", contract_id)
    assert contract_id in detail.out and order_id in detail.out and "提供中" in detail.out
    assert all(lic["license_key"] in detail.out for lic in contract["licenses"])
    assert "JST" in detail.out and "Arcserve Unified Data Protection 10.0" in detail.said
    assert (await ok(stack, tenant, "contract", contract_id, "--json")).json() == await stack.contract(tenant, contract_id)


async def test_addition_vm_count_and_contact_change(stack: Stack, tenant: Tenant) -> None:
    contract = await stack.active_contract(tenant, [VIRTUAL, DEDICATED])
    contract_id = contract["contract_id"]
    hypervisor = next(lic for lic in contract["licenses"] if lic["license_type"] == "dedicated_hypervisor")

    added = await ok(stack, tenant, "apply", "addition", contract_id, "--license", "bare_metal:per_server:1", "--watch")
    assert "completed 完了" in added.said and "追加申込" in added.said
    raised = await ok(stack, tenant, "apply", "vm", contract_id, hypervisor["license_id"], "--add", "5",
                      "--watch", "--json")
    assert raised.json()["status"] == "completed" and raised.json()["kind"] == "vm_count_increase"
    changed = await ok(stack, tenant, "apply", "contact", contract_id, "--email", "billing@example.jp",
                       "--company", "Example Holdings K.K.", "--watch")
    assert "completed 完了" in changed.said

    after = await stack.contract(tenant, contract_id)
    assert [lic["usage"] for lic in after["licenses"]].count("bare_metal") == 1
    vms = {lic["license_id"]: lic["vm_count"] for lic in after["licenses"]}
    assert vms[hypervisor["license_id"]] == 15
    assert after["contact"] == {"email": "billing@example.jp", "company_name": "Example Holdings K.K."}
    detail = await ok(stack, tenant, "contract", contract_id)
    assert "Example Holdings K.K. <billing@example.jp>" in detail.said


async def test_cancel_some_then_all(stack: Stack, tenant: Tenant) -> None:
    contract = await stack.active_contract(tenant, [VIRTUAL])
    contract_id = contract["contract_id"]
    first, second = (lic["license_id"] for lic in contract["licenses"])

    some = await ok(stack, tenant, "apply", "cancel", contract_id, "--license-id", first, "--watch")
    assert "completed 完了" in some.said and "廃止申込" in some.said
    partly = await stack.contract(tenant, contract_id)
    assert {lic["license_id"]: lic["status"] for lic in partly["licenses"]} == {first: "cancelled", second: "active"}
    assert partly["status"] == "active"

    everything = await ok(stack, tenant, "apply", "cancel", contract_id, "--all", "--watch")
    assert "completed 完了" in everything.said
    detail = await ok(stack, tenant, "contract", contract_id)
    assert "cancelled 廃止済" in detail.said  # R9: the contract and its order ID
    assert (await ok(stack, tenant, "contract", contract_id, "--json")).json()["status"] == "cancelled"
    menu = await ok(stack, tenant, "contracts", "--status", "cancelled", "--json")
    assert [item["contract_id"] for item in menu.json()["items"]] == [contract_id]


async def test_rejected_application_shows_its_code_and_fails(stack: Stack, tenant: Tenant) -> None:
    contract = await stack.active_contract(tenant, [VIRTUAL])
    contract_id = contract["contract_id"]
    await stack.apply(tenant, {"kind": "cancellation", "contract_id": contract_id, "scope": "all"}, "completed")

    refused = await arcserve(stack, tenant, "apply", "addition", contract_id, "--license", "virtual_server:per_server:1",
                             "--watch")
    assert refused.code == 1, refused
    assert "contract_cancelled" in refused.err and "rejected 却下" in refused.said
    assert "Traceback" not in refused.err
    application_id = ids(refused.out)[0]
    as_json = await arcserve(stack, tenant, "application", application_id, "--watch", "--json")
    assert as_json.code == 1 and as_json.json()["reason"]["code"] == "contract_cancelled"
    shown = await ok(stack, tenant, "application", application_id)  # not watched: just shown
    assert "contract_cancelled" in shown.out and "rejected 却下" in shown.said


async def test_applications_list_and_filters(stack: Stack, tenant: Tenant) -> None:
    first = await stack.active_contract(tenant, [VIRTUAL], product="arcserve-udp-10")
    second = await stack.active_contract(tenant, [VIRTUAL], product="arcserve-udp-9")
    await stack.apply(tenant, {"kind": "addition", "contract_id": first["contract_id"],
                               "licenses": [{"usage": "bare_metal", "license_type": "per_server", "quantity": 1}]})

    mine = await ok(stack, tenant, "applications", "--contract-id", first["contract_id"], "--json")
    listed = mine.json()
    assert listed == await api(stack, tenant, f"/v1/applications?contract_id={first['contract_id']}")
    assert [a["kind"] for a in listed["items"]] == ["addition", "new"]  # newest first
    assert {a["contract_id"] for a in listed["items"]} == {first["contract_id"]}
    page = (await ok(stack, tenant, "applications", "--status", "completed", "--limit", "2", "--json")).json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    assert [a["contract_id"] for a in page["items"]] == [first["contract_id"], second["contract_id"]]
    rest = (await ok(stack, tenant, "applications", "--status", "completed", "--limit", "2",
                     "--cursor", page["next_cursor"], "--json")).json()
    assert [(a["kind"], a["contract_id"]) for a in rest["items"]] == [("new", first["contract_id"])]
    assert rest["next_cursor"] is None

    table = await ok(stack, tenant, "applications")
    assert all(a["application_id"] in table.out for a in listed["items"])
    assert "addition 追加申込" in table.said and "completed 完了" in table.said


async def test_invalid_body_prints_the_field_error(stack: Stack, tenant: Tenant) -> None:
    bad = await arcserve(stack, tenant, *NEW[:2], "--email", "not-an-email", "--company", "Example K.K.",
                         "--product", "arcserve-udp-10", "--license", "virtual_server:per_server:1")
    assert bad.code == 1, bad
    assert "invalid_application" in bad.err and "contact.email" in bad.err and "Traceback" not in bad.err
    as_json = await arcserve(stack, tenant, *NEW[:2], "--email", "not-an-email", "--company", "Example K.K.",
                             "--product", "arcserve-udp-10", "--license", "virtual_server:per_server:1", "--json")
    assert as_json.code == 1 and as_json.json()["errors"][0]["field"] == "contact.email"
    assert (await api(stack, tenant, "/v1/contracts"))["items"] == []  # R4: nothing was accepted


async def test_bad_license_syntax_is_a_usage_error(stack: Stack, tenant: Tenant) -> None:
    for spec, problem in [("virtual_server:per_server", "expected usage:type:quantity"),
                          ("virtual_server:per_server:two", "quantity must be a whole number"),
                          ("cloud:per_server:1", "unknown usage 'cloud'")]:
        result = await arcserve(stack, tenant, *NEW, "--product", "arcserve-udp-10", "--license", spec)
        assert result.code == 2, result
        assert problem in result.said and "--license" in result.said
    both = await arcserve(stack, tenant, "apply", "cancel", "c", "--all", "--license-id", "x")
    assert both.code == 2 and "--all" in both.said


async def test_wrong_key_missing_key_and_unreachable_url(stack: Stack) -> None:
    wrong = "wrong-" + secrets.token_urlsafe(18)
    for args in (["contracts"], ["contracts", "--json"], ["application", "x", "--watch"]):
        refused = await run(stack.portal_url, wrong, *args)
        assert refused.code == 1, refused
        assert "unauthorized" in refused.err and wrong not in refused.out + refused.err
    flag = await run(stack.portal_url, None, "--api-key", wrong, "contracts")
    assert flag.code == 1 and "unauthorized" in flag.err and wrong not in flag.out + flag.err

    missing = await run(stack.portal_url, None, "contracts")
    assert missing.code == 2 and "ARCSERVE_API_KEY" in missing.err
    assert len(missing.err.strip().splitlines()) == 1 and "Traceback" not in missing.err

    (closed,) = free_ports(1)
    gone = await run(f"http://127.0.0.1:{closed}", wrong, "contracts")
    assert gone.code == 1 and "cannot reach" in gone.err and f"127.0.0.1:{closed}" in gone.err
    assert len(gone.err.strip().splitlines()) == 1 and "Traceback" not in gone.err and wrong not in gone.err
