"""`python -m tests.bench.waiting [--waiting 1000]`: nothing else waits while fulfilment does
(issue 24). On a stack of its own in back-office mode, one tenant's contract goes through a
cycle (new, addition, cancellation), each result typed in through the console's API as soon as
its task is there, first on an idle system, then with `--waiting` new applications of other
tenants waiting for fulfilment. Printed: how long each step of the cycle took both times, and
the most unacknowledged messages any queue held while they waited, beside its prefetch.
AMQP_URL and DATABASE_URL: the administrator's (as `make bench`)."""
from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import time
from typing import Any

import asyncpg

from services.provisioning import broker
from shared.issuance import simulated_license_key
from shared.tenancy import seed_api_keys
from shared.tenancy.operators import OperatorRole, create_operator
from tests.support.infra import servers
from tests.support.stack import Stack, Tenant, eventually, new_application

DEADLINE_S = 120.0


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class Cycle:
    def __init__(self, stack: Stack, operator_key: str, tenant: Tenant):
        self.stack, self.key, self.tenant = stack, operator_key, tenant
        self.took: dict[str, float] = {}

    async def _task(self, application_id: str) -> dict[str, Any]:
        async def probe() -> dict[str, Any] | None:
            answer = await self.stack.http.get(self.stack.url("backoffice", f"/ops/v1/fulfilments/{application_id}"),
                                               headers={"Authorization": f"Bearer {self.key}"})
            return answer.json() if answer.status_code == 200 else None
        found: dict[str, Any] = await eventually(probe, f"the task of {application_id}", DEADLINE_S)
        return found

    async def _fulfil(self, task: dict[str, Any]) -> None:
        body: dict[str, Any] = {"license_keys": [{"license_id": lic["license_id"], "license_key": simulated_license_key()}
                                                 for lic in task["needs"]["licenses"]]}
        if task["needs"]["arcserve_order_id"]:
            body["arcserve_order_id"] = f"ARC-BENCH-{secrets.token_hex(4).upper()}"
        answer = await self.stack.http.post(
            self.stack.url("backoffice", f"/ops/v1/fulfilments/{task['application_id']}/fulfil"), json=body,
            headers={"Authorization": f"Bearer {self.key}"})
        assert answer.status_code == 200, answer.text

    async def step(self, name: str, body: dict[str, Any], fulfilled: bool) -> str:
        """Submit; the time until its task is in the console (if it needs one), then until it ends."""
        started = time.monotonic()
        answer = await self.stack.submit(self.tenant, body)
        assert answer.status_code == 202, answer.text
        application_id: str = answer.json()["application_id"]
        if fulfilled:
            task = await self._task(application_id)
            self.took[f"{name}: accepted and in the console"] = time.monotonic() - started
            fulfilled_at = time.monotonic()
            await self._fulfil(task)
            application = await self.stack.wait_application(self.tenant, application_id)
            self.took[f"{name}: fulfilled → completed"] = time.monotonic() - fulfilled_at
        else:
            application = await self.stack.wait_application(self.tenant, application_id)
            self.took[f"{name}: submitted → completed"] = time.monotonic() - started
        assert application["status"] == "completed", application
        return str(application["contract_id"])

    async def run(self) -> dict[str, float]:
        contract_id = await self.step("new", new_application(), True)
        await self.step("addition", {"kind": "addition", "contract_id": contract_id, "licenses": [
            {"usage": "bare_metal", "license_type": "per_server", "quantity": 1}]}, True)
        await self.step("cancellation", {"kind": "cancellation", "contract_id": contract_id, "scope": "all"}, False)
        return self.took


async def unacked(management: broker.Management, prefix: str) -> dict[str, int]:
    queues = await asyncio.to_thread(management._call, "GET", "queues?columns=name,messages_unacknowledged")
    return {q["name"].removeprefix(prefix): int(q.get("messages_unacknowledged") or 0)
            for q in queues if q["name"].startswith(prefix)}


async def measure(waiting: int) -> dict[str, Any]:
    async with servers() as infrastructure:
        stack = await Stack.create(infrastructure, fulfilment="back-office")
        try:
            await stack.start()
            keys = {f"bench-{i:05d}-{secrets.token_urlsafe(18)}": f"bench-{i:05d}" for i in range(waiting + 2)}
            conn = await asyncpg.connect(stack.settings.database_url)
            try:
                await seed_api_keys(conn, keys, stack.pepper)
                _, operator_key = await create_operator(conn, stack.pepper, "bench", OperatorRole.FULFILLER)
            finally:
                await conn.close()
            tenants = [Tenant(tenant, key) for key, tenant in keys.items()]
            say("an idle system: one tenant's new contract, an addition, a cancellation")
            idle = await Cycle(stack, operator_key, tenants[0]).run()

            say(f"{waiting} new applications of other tenants, left waiting for fulfilment")
            gate = asyncio.Semaphore(32)

            async def submit(tenant: Tenant) -> None:
                async with gate:
                    answer = await stack.submit(tenant, new_application())
                    assert answer.status_code == 202, answer.text

            await asyncio.gather(*(submit(t) for t in tenants[2:]))
            management = broker.Management.for_amqp_url(stack.settings.amqp_url, stack.servers.management_url)
            prefix = stack.topology.prefix
            most: dict[str, int] = {}

            async def in_console() -> bool:
                for name, count in (await unacked(management, prefix)).items():
                    most[name] = max(most.get(name, 0), count)
                conn = await asyncpg.connect(stack.settings.database_url)
                try:
                    return bool(await conn.fetchval("SELECT count(*) FROM backoffice.tasks") >= waiting + 2)
                finally:
                    await conn.close()

            waited = time.monotonic()
            await eventually(in_console, f"{waiting} tasks in the console", 600)
            say(f"all {waiting} waiting in the console after {time.monotonic() - waited:.1f} s")
            loaded = await Cycle(stack, operator_key, tenants[1]).run()
            for name, count in (await unacked(management, prefix)).items():
                most[name] = max(most.get(name, 0), count)
            return {"waiting": waiting, "idle_s": idle, "while_waiting_s": loaded,
                    "most_unacked": {k: v for k, v in sorted(most.items()) if not k.endswith(("dead-letter",))},
                    "prefetch": stack.settings.prefetch}
        finally:
            await stack.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--waiting", type=int, default=1000, help="new applications left waiting (default 1000)")
    args = parser.parse_args()
    result = asyncio.run(measure(args.waiting))
    print(json.dumps(result, indent=2))
    width = max(len(k) for k in result["idle_s"])
    print(f"\n{'step':<{width}}  idle     with {result['waiting']} waiting")
    for step, seconds in result["idle_s"].items():
        print(f"{step:<{width}}  {seconds:6.2f} s  {result['while_waiting_s'][step]:6.2f} s")
    worst = max(result["most_unacked"].values(), default=0)
    print(f"most unacknowledged in any queue: {worst} (prefetch {result['prefetch']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
