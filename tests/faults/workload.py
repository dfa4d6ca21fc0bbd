"""The workload of a fault run: tenants going through every application kind, as a
careful client would: resubmit with the same Idempotency-Key until intake answers 202, then
poll until the application has ended. Every 202 is recorded, with the step it was for; the
checker holds each step, and each tenant's contract at the end, to what the scenario expects.
"""
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
COMPLETED = "completed"


@dataclass(frozen=True)
class Step:
    label: str
    expected: str  # "completed", or the reason code it must be rejected with


# One scenario per tenant, in this order; each step needs the one before it. `expected`
# is what a correct system answers, whatever the fault.
STEPS = (
    Step("new", COMPLETED),  # R1: 2 virtual keys and 1 dedicated hypervisor key (5 VMs)
    Step("new again", "contract_exists"),  # R2
    Step("addition", COMPLETED),  # R5: 1 bare-metal key
    Step("contact change", COMPLETED),
    Step("vm count increase", COMPLETED),  # R7: +3 VMs: one VM key, not billable
    Step("partial cancellation", COMPLETED),  # R8: one of the virtual keys
    Step("cancel all", COMPLETED),  # R9: the rest; the contract and its order ID are cancelled
)
APPLICATIONS_PER_SCENARIO = len(STEPS)

# The contract each scenario ends with.
INITIAL_VMS, ADDED_VMS = 5, 3
END_STATE = {
    "contract_status": "cancelled",
    "order_id_status": "cancelled",
    "keys": 5,  # 2 virtual + 1 dedicated + 1 bare metal + 1 VM key
    "parent_vm_count": INITIAL_VMS + ADDED_VMS,
    "status_history": [("preparing", "active"), ("active", "cancelled")],
}


@dataclass
class Scenario:
    """One tenant's way through the steps, as its client saw it."""

    index: int
    tenant: str
    applications: dict[str, str] = field(default_factory=dict)  # step label → application id
    contract_id: str | None = None
    unfinished: str | None = None  # why the client could not go on


@dataclass
class Ledger:
    """What the clients saw."""

    scenarios: list[Scenario] = field(default_factory=list)
    accepted: dict[str, str] = field(default_factory=dict)  # application id → tenant
    steps_done: int = 0
    step_ends: list[float] = field(default_factory=list)  # when each step ended (monotonic)
    refusals: list[float] = field(default_factory=list)  # when intake answered 5xx or not at all (monotonic)

    def refused_seconds(self, gap_s: float = 1.0) -> float:
        """How long intake refused work: refusals less than `gap_s` apart (clients retry every
        0.2 s) make one outage, from its first refusal to its last; the outages summed."""
        total, times = 0.0, sorted(self.refusals)
        start = previous = times[0] if times else 0.0
        for at in times[1:]:
            if at - previous > gap_s:
                total, start = total + previous - start, at
            previous = at
        return total + previous - start

    def longest_pause(self) -> float:
        """The longest wait between one step ending and the next: how long work stood still."""
        ends = sorted(self.step_ends)
        return max((b - a for a, b in zip(ends, ends[1:], strict=False)), default=0.0)

    @property
    def unfinished(self) -> list[str]:
        return [f"scenario {s.index} ({s.tenant}): {s.unfinished}" for s in self.scenarios if s.unfinished]


class Client:
    def __init__(self, stack: ProcessStack, http: httpx.AsyncClient, ledger: Ledger, duplicate: Callable[[], bool],
                 step_deadline_s: float = STEP_DEADLINE_S):
        self.stack, self.http, self.ledger = stack, http, ledger
        self.duplicate = duplicate  # submit everything twice (same Idempotency-Key)
        self.step_deadline_s = step_deadline_s  # how long a client waits on one step

    async def submit(self, key: str, body: dict[str, Any], idempotency_key: str) -> str:
        deadline = time.monotonic() + self.step_deadline_s
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
                self.ledger.refusals.append(time.monotonic())
            except httpx.HTTPError:  # intake down or restarting: a client retries with the same key
                self.ledger.refusals.append(time.monotonic())
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
        deadline = time.monotonic() + self.step_deadline_s
        while (view := await self.get(key, path)) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"GET {path} kept failing")
            await asyncio.sleep(0.2)
        return view

    async def wait_ended(self, key: str, application_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.step_deadline_s
        while time.monotonic() < deadline:
            view = await self.get(key, f"/v1/applications/{application_id}")
            if view is not None and view["status"] in ("completed", "rejected"):
                return view
            await asyncio.sleep(0.1)
        raise TimeoutError(f"application {application_id} did not end")

    async def apply(self, scenario: Scenario, key: str, step: Step, body: dict[str, Any]) -> dict[str, Any]:
        idempotency_key = f"{scenario.index}-{step.label}"
        application_id = await self.submit(key, body, idempotency_key)
        if self.duplicate():
            again = await self.submit(key, body, idempotency_key)
            assert again == application_id, "the same Idempotency-Key named another application"
        scenario.applications[step.label] = application_id
        self.ledger.accepted[application_id] = scenario.tenant
        view = await self.wait_ended(key, application_id)
        self.ledger.steps_done += 1
        self.ledger.step_ends.append(time.monotonic())
        return view


def _bodies(contract: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The applications that follow an active contract, by step label."""
    cid = contract["contract_id"]
    virtual = [lic for lic in contract["licenses"] if lic["usage"] == "virtual_server"]
    dedicated = next(lic for lic in contract["licenses"] if lic["license_type"] == "dedicated_hypervisor")
    return {
        "addition": {"kind": "addition", "contract_id": cid,
                     "licenses": [{"usage": "bare_metal", "license_type": "per_server", "quantity": 1}]},
        "contact change": {"kind": "contact_change", "contract_id": cid,
                           "contact": {"email": "new@example.co.jp", "company_name": "Renamed K.K."}},
        "vm count increase": {"kind": "vm_count_increase", "contract_id": cid,
                              "license_id": dedicated["license_id"], "additional_vms": ADDED_VMS},
        "partial cancellation": {"kind": "cancellation", "contract_id": cid, "license_ids": [virtual[0]["license_id"]]},
        "cancel all": {"kind": "cancellation", "contract_id": cid, "scope": "all"},
    }


NEW = {"kind": "new", "product": "arcserve-udp-10",
       "contact": {"email": "ops@example.co.jp", "company_name": "Example K.K."},
       "licenses": [{**VIRTUAL, "quantity": 2}, {**DEDICATED, "quantity": 1, "vm_count": INITIAL_VMS}]}


async def scenario(client: Client, tenant: str, key: str, index: int) -> None:
    """Every step in turn, whatever the answer to the one before, as long as there is a
    contract to apply to: a wrong answer is the checker's to judge, not the client's."""
    run = Scenario(index, tenant)
    client.ledger.scenarios.append(run)
    try:
        first = await client.apply(run, key, STEPS[0], NEW)
        run.contract_id = first.get("contract_id")
        await client.apply(run, key, STEPS[1], NEW)
        if first["status"] != COMPLETED:
            raise AssertionError(f"new ended {first['status']}: {first['reason']}")
        contract = await client.read(key, f"/v1/contracts/{run.contract_id}")
        bodies = _bodies(contract)
        for step in STEPS[2:]:
            await client.apply(run, key, step, bodies[step.label])
    except (TimeoutError, AssertionError) as exc:
        run.unfinished = repr(exc)


async def seed_tenants(stack: ProcessStack, count: int) -> list[tuple[str, str]]:
    import asyncpg

    from shared.tenancy import seed_api_keys

    tenants = [(f"faults-{uuid.uuid4().hex[:10]}", secrets.token_urlsafe(18)) for _ in range(count)]
    conn = await asyncpg.connect(stack.database_url)
    try:
        await seed_api_keys(conn, {key: tenant for tenant, key in tenants}, stack.pepper.encode())
    finally:
        await conn.close()
    return tenants


async def run(stack: ProcessStack, applications: int, ledger: Ledger, on_progress: Callable[[float], Any],
              duplicate: Callable[[], bool], concurrency: int = 40, step_deadline_s: float = STEP_DEADLINE_S) -> None:
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
        client = Client(stack, http, ledger, duplicate, step_deadline_s)
        watcher = asyncio.create_task(progress())
        try:
            await asyncio.gather(*(one(i, t, k) for i, (t, k) in enumerate(tenants)))
        finally:
            watcher.cancel()
