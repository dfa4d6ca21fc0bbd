"""The workload of a fault run: tenants going through every application kind, as a
careful client would: resubmit with the same Idempotency-Key until intake answers 202, then
poll until the application has ended. Every 202 is recorded; the checker accounts for each."""
from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.faults.processes import ProcessStack

STEP_DEADLINE_S = 180.0
VIRTUAL = {"usage": "virtual_server", "license_type": "per_server"}
DEDICATED = {"usage": "hypervisor", "license_type": "dedicated_hypervisor"}


@dataclass
class Ledger:
    """What the clients saw."""

    accepted: dict[str, str] = field(default_factory=dict)  # application id → tenant
    ended: dict[str, dict[str, Any]] = field(default_factory=dict)  # application id → last view
    unfinished: list[str] = field(default_factory=list)  # scenarios that could not go on
    steps_done: int = 0


class Client:
    def __init__(self, stack: ProcessStack, http: httpx.AsyncClient, ledger: Ledger, duplicate: Callable[[], bool]):
        self.stack, self.http, self.ledger = stack, http, ledger
        self.duplicate = duplicate  # submit everything twice (same Idempotency-Key)

    async def submit(self, key: str, body: dict[str, Any], idempotency_key: str) -> str:
        deadline = time.monotonic() + STEP_DEADLINE_S
        while True:
            try:
                response = await self.http.post(
                    self.stack.url("intake", "/v1/applications"), json=body,
                    headers={"Authorization": f"Bearer {key}", "Idempotency-Key": idempotency_key},
                )
                if response.status_code == 202:
                    return response.json()["application_id"]
                if response.status_code not in (500, 502, 503):
                    raise AssertionError(f"intake answered {response.status_code}: {response.text}")
            except httpx.HTTPError:
                pass  # intake down or restarting: a client retries with the same key
            if time.monotonic() > deadline:
                raise TimeoutError("intake did not accept the application")
            await asyncio.sleep(0.2)

    async def get(self, key: str, path: str) -> dict[str, Any] | None:
        try:
            response = await self.http.get(self.stack.url("status", path), headers={"Authorization": f"Bearer {key}"})
        except httpx.HTTPError:
            return None
        return response.json() if response.status_code == 200 else None

    async def read(self, key: str, path: str) -> dict[str, Any]:
        """GET, retried while the status service is down or cut off."""
        deadline = time.monotonic() + STEP_DEADLINE_S
        while (view := await self.get(key, path)) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"GET {path} kept failing")
            await asyncio.sleep(0.2)
        return view

    async def wait_ended(self, key: str, application_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + STEP_DEADLINE_S
        while time.monotonic() < deadline:
            view = await self.get(key, f"/v1/applications/{application_id}")
            if view is not None and view["status"] in ("completed", "rejected"):
                return view
            await asyncio.sleep(0.1)
        raise TimeoutError(f"application {application_id} did not end")

    async def apply(self, tenant: str, key: str, body: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        application_id = await self.submit(key, body, idempotency_key)
        if self.duplicate():
            again = await self.submit(key, body, idempotency_key)
            assert again == application_id, "the same Idempotency-Key named another application"
        self.ledger.accepted[application_id] = tenant
        view = await self.wait_ended(key, application_id)
        self.ledger.ended[application_id] = view
        self.ledger.steps_done += 1
        return view


def steps(contract: dict[str, Any]) -> list[dict[str, Any]]:
    """The applications that follow an active contract, each needing the one before."""
    cid = contract["contract_id"]
    virtual = [lic for lic in contract["licenses"] if lic["usage"] == "virtual_server"]
    dedicated = next(lic for lic in contract["licenses"] if lic["license_type"] == "dedicated_hypervisor")
    return [
        {"kind": "addition", "contract_id": cid, "licenses": [{"usage": "bare_metal", "license_type": "per_server", "quantity": 1}]},
        {"kind": "contact_change", "contract_id": cid, "contact": {"email": "new@example.co.jp", "company_name": "Renamed K.K."}},
        {"kind": "vm_count_increase", "contract_id": cid, "license_id": dedicated["license_id"], "additional_vms": 3},
        {"kind": "cancellation", "contract_id": cid, "license_ids": [virtual[0]["license_id"]]},
        {"kind": "cancellation", "contract_id": cid, "scope": "all"},
    ]


APPLICATIONS_PER_SCENARIO = 7  # new, a rejected second new (R2), then the five steps


async def scenario(client: Client, tenant: str, key: str, index: int) -> None:
    new = {"kind": "new", "product": "arcserve-udp-10",
           "contact": {"email": "ops@example.co.jp", "company_name": "Example K.K."},
           "licenses": [{**VIRTUAL, "quantity": 2}, {**DEDICATED, "quantity": 1, "vm_count": 5}]}
    try:
        first = await client.apply(tenant, key, new, f"{index}-new")
        if first["status"] != "completed":
            raise AssertionError(f"new ended {first['status']}: {first['reason']}")
        await client.apply(tenant, key, new, f"{index}-new-again")  # R2: contract_exists
        contract = await client.read(key, f"/v1/contracts/{first['contract_id']}")
        for n, body in enumerate(steps(contract)):
            await client.apply(tenant, key, body, f"{index}-step-{n}")
    except (TimeoutError, AssertionError) as exc:
        client.ledger.unfinished.append(f"scenario {index}: {exc!r}")


async def seed_tenants(stack: ProcessStack, count: int) -> list[tuple[str, str]]:
    import asyncpg

    from shared.db.migrate import seed_api_keys

    tenants = [(f"faults-{uuid.uuid4().hex[:10]}", secrets.token_urlsafe(18)) for _ in range(count)]
    conn = await asyncpg.connect(stack.database_url)
    try:
        await seed_api_keys(conn, {key: tenant for tenant, key in tenants})
    finally:
        await conn.close()
    return tenants


async def run(stack: ProcessStack, applications: int, ledger: Ledger, on_progress: Callable[[float], Any],
              duplicate: Callable[[], bool], concurrency: int = 40) -> None:
    """Drive about `applications` applications; call on_progress(fraction) as steps end."""
    count = max(1, -(-applications // APPLICATIONS_PER_SCENARIO))
    tenants = await seed_tenants(stack, count)
    total = count * APPLICATIONS_PER_SCENARIO
    gate = asyncio.Semaphore(concurrency)

    async def one(index: int, tenant: str, key: str) -> None:
        async with gate:
            await scenario(client, tenant, key, index)

    async def progress() -> None:
        while True:
            on_progress(ledger.steps_done / total)
            await asyncio.sleep(0.05)

    limits = httpx.Limits(max_connections=concurrency * 2, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=10, limits=limits) as http:
        client = Client(stack, http, ledger, duplicate)
        watcher = asyncio.create_task(progress())
        try:
            await asyncio.gather(*(one(i, t, k) for i, (t, k) in enumerate(tenants)))
        finally:
            watcher.cancel()
