"""Failed authentication is throttled (shared/http/failures.py), tried as the outside test
attacked: hundreds of wrong API keys in well under a second against intake and status over
real HTTP, and many wrong sign-ins at the portal, while a tenant with a valid key goes on
working. A stack of its own, with the production budget: the shared one is generous (see
tests/support/stack.py).

The attacker and the tenants connect from addresses of their own on loopback (127.0.0.0/8),
so that "per source address" is what is under test, not a shared 127.0.0.1."""
from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import pytest

from shared import tenancy
from shared.http.failures import DEFAULT_BURST, DEFAULT_REFILL_S
from tests.support.stack import Stack, eventually, new_application

ATTACKER = "127.0.0.66"
BYSTANDER = "127.0.0.77"  # a tenant's script on another host
WRONG_KEYS = 300  # per service: 600 in all, as the outside test sent
SIGN_INS = 150
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def client_from(address: str, **kwargs: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(local_address=address), timeout=10, **kwargs)


@pytest.fixture
async def system(new_stack: Callable[..., Awaitable[Stack]]) -> AsyncIterator[Stack]:
    stack = await new_stack(auth_failure_burst=DEFAULT_BURST, auth_failure_refill_s=DEFAULT_REFILL_S)
    await stack.start("intake", "status")
    await stack.start_portal()
    yield stack


def wrong_key() -> str:
    key_id, _ = tenancy.new_api_key()
    return f"arc_{key_id}_{secrets.token_urlsafe(32)}"


async def records(stack: Stack, action: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(stack.settings.database_url)
    try:
        return await conn.fetch("SELECT actor, subject, detail FROM audit.records WHERE action = $1", action)
    finally:
        await conn.close()


def assert_throttled(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["code"] == "too_many_failures", response.text
    assert 1 <= int(response.headers["retry-after"]) <= DEFAULT_REFILL_S


async def test_hundreds_of_wrong_keys_are_throttled_while_valid_keys_are_served(system: Stack) -> None:
    tenant = await system.tenant()
    bystander = await system.tenant()
    key = {"Authorization": f"Bearer {tenant.key}"}
    intake, status = system.url("intake", "/v1/applications"), system.url("status", "/v1/contracts")
    async with client_from(ATTACKER) as attacker, client_from(BYSTANDER) as elsewhere:
        # The tenant works from the attacker's address too (a shared NAT, say), before and during.
        assert (await attacker.get(status, headers=key)).status_code == 200
        assert (await attacker.post(intake, json=new_application(), headers=key)).status_code == 202
        wrong = [wrong_key() for _ in range(WRONG_KEYS)]

        async def attack(url: str, keys: list[str]) -> list[httpx.Response]:
            send = attacker.post if url == intake else attacker.get
            kwargs: dict[str, Any] = {"json": new_application()} if url == intake else {}
            return await asyncio.gather(*(send(url, headers={"Authorization": f"Bearer {k}"}, **kwargs) for k in keys))

        async def valid_meanwhile() -> list[int]:
            seen = []
            for _ in range(10):
                seen.append((await attacker.get(status, headers=key)).status_code)
                seen.append((await attacker.post(intake, json=new_application(), headers=key)).status_code)
                seen.append((await elsewhere.get(status, headers={"Authorization": f"Bearer {bystander.key}"})).status_code)
            return seen

        on_intake, on_status, served = await asyncio.gather(attack(intake, wrong), attack(status, wrong), valid_meanwhile())

        for service, answers in (("intake", on_intake), ("status", on_status)):
            counted = Counter(r.status_code for r in answers)
            # Each wrong key is checked only while the address has budget left: then 429, unchecked.
            assert counted == {401: DEFAULT_BURST, 429: WRONG_KEYS - DEFAULT_BURST}, (service, counted)
            for response in answers:
                if response.status_code == 429:
                    assert_throttled(response)
        assert set(served) <= {200, 202}, Counter(served)

        # Throttled, the address still may not test a new key, even a valid one nobody used here yet...
        newcomer = await system.tenant()
        assert_throttled(await attacker.get(status, headers={"Authorization": f"Bearer {newcomer.key}"}))
        # ...while that key works from anywhere else, and the known tenant's from here.
        assert (await elsewhere.get(status, headers={"Authorization": f"Bearer {newcomer.key}"})).status_code == 200
        assert (await attacker.get(status, headers=key)).status_code == 200

    # One audit record per service that throttled the address, not one per request; never a key.
    async def audited() -> list[asyncpg.Record]:
        found = [r for r in await records(system, "auth.throttled") if r["subject"] == f"address {ATTACKER}"]
        return found if len(found) == 2 else []

    found = await eventually(audited, "an audit record from intake and from status")
    assert sorted(json.loads(r["detail"])["service"] for r in found) == ["intake", "status"]
    everything = json.dumps([dict(r) for r in await records(system, "auth.throttled")], default=str)
    assert not [k for k in wrong if k.split("_", 2)[2] in everything]


async def test_guessing_at_one_key_id_throttles_that_id_from_every_address_but_not_its_owner(system: Stack) -> None:
    conn = await asyncpg.connect(system.settings.database_url)
    try:
        key_id, key = await tenancy.create_api_key(conn, system.pepper, "guessed")
    finally:
        await conn.close()
    owner = {"Authorization": f"Bearer {key}"}
    status = system.url("status", "/v1/contracts")
    assert (await system.http.get(status, headers=owner)).status_code == 200
    answers = []
    for n in range(3 * DEFAULT_BURST):  # from many addresses, so that only the key id adds up
        async with client_from(f"127.0.1.{n + 1}") as guesser:
            guess = f"arc_{key_id}_{secrets.token_urlsafe(32)}"
            answers.append(await guesser.get(status, headers={"Authorization": f"Bearer {guess}"}))
    assert [r.status_code for r in answers] == [401] * DEFAULT_BURST + [429] * (2 * DEFAULT_BURST)
    assert (await system.http.get(status, headers=owner)).status_code == 200  # the owner is not slowed

    async def audited() -> list[asyncpg.Record]:
        return [r for r in await records(system, "auth.throttled") if r["subject"] == f"key_id {key_id}"]

    await eventually(audited, "an audit record naming the key id")


async def test_wrong_sign_ins_at_the_portal_are_throttled_per_client_not_for_every_tenant(system: Stack) -> None:
    tenant, other = await system.tenant(), await system.tenant()

    async def sign_in(browser: httpx.AsyncClient, key: str) -> httpx.Response:
        page = await browser.get("/")
        found = CSRF.search(page.text)
        assert found, page.text[:300]
        return await browser.post("/signin", data={"csrf": found.group(1), "api_key": key})

    async with client_from(ATTACKER, base_url=system.portal_url) as attacker, \
            client_from(BYSTANDER, base_url=system.portal_url) as browser:
        async def attempt() -> httpx.Response:  # each with a session of its own, as a script would
            async with client_from(ATTACKER, base_url=system.portal_url) as fresh:
                return await sign_in(fresh, wrong_key())

        answers = await asyncio.gather(*(attempt() for _ in range(SIGN_INS)))
        assert Counter(r.status_code for r in answers) == {401: DEFAULT_BURST, 429: SIGN_INS - DEFAULT_BURST}
        # The portal forwards for its clients: another client of it signs in, and uses the API through it.
        assert (await sign_in(browser, tenant.key)).status_code == 303
        forwarded = await browser.get("/v1/contracts", headers={"Authorization": f"Bearer {other.key}"})
        assert forwarded.status_code == 200
        # The portal's /v1 counts the attacker's address as well; the answer passes through as it is.
        through = await attacker.get("/v1/contracts", headers={"Authorization": f"Bearer {wrong_key()}"})
        assert_throttled(through)
        # A client cannot claim another address: whatever it says of itself is not forwarded.
        claimed = await attacker.get("/v1/contracts", headers={
            "Authorization": f"Bearer {wrong_key()}", "X-Forwarded-For": "203.0.113.9",
            "X-Arcserve-Client": "203.0.113.9"})
        assert_throttled(claimed)

    async def audited() -> list[asyncpg.Record]:
        return [r for r in await records(system, "auth.throttled") if r["subject"] == f"address {ATTACKER}"]

    await eventually(audited, "an audit record naming the portal's client")


async def test_many_valid_keys_new_here_sent_at_once_from_one_address_are_all_served(system: Stack) -> None:
    """Four times the budget of first uses at once from one address (a busy NAT, the fault
    run's 40 clients): each look-up holds a token only while it runs, so none is refused."""
    tenants = [await system.tenant() for _ in range(4 * DEFAULT_BURST)]
    status = system.url("status", "/v1/contracts")
    async with client_from("127.0.2.1") as office:
        answers = await asyncio.gather(*(office.get(status, headers={"Authorization": f"Bearer {t.key}"})
                                         for t in tenants))
    assert Counter(r.status_code for r in answers) == {200: len(tenants)}
