"""The end state of a fault run, checked from Postgres and the event stream (like
RabbitMQ's Jepsen checker: lost, duplicated, unexpected)."""
from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import asyncpg

from tests.faults.processes import ProcessStack
from tests.faults.workload import Ledger


class EventLog:
    """Every event on `arcserve.events`, from a durable queue of its own, so a broker restart
    loses none of them."""

    def __init__(self, stack: ProcessStack):
        self.stack = stack
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.last_at = time.monotonic()

    async def __aenter__(self) -> EventLog:
        self.connection = await aio_pika.connect_robust(self.stack.amqp_url)
        channel = await self.connection.channel()
        self.queue = await channel.declare_queue(
            f"{self.stack.prefix}faults.event-log", durable=True, arguments={"x-queue-type": "quorum"}
        )
        await self.queue.bind(self.stack.topology.events, "#")

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            event = json.loads(message.body)
            if not event.get("faultscopy"):  # copies injected by the fault are not the system's doing
                self.events.append((message.routing_key or "", event))
            self.last_at = time.monotonic()
            await message.ack()

        self.tag = await self.queue.consume(on_message)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.queue.cancel(self.tag)
        await self.queue.delete(if_unused=False, if_empty=False)
        await self.connection.close()

    async def quiet(self, seconds: float = 1.5, timeout: float = 60.0) -> None:
        """Wait until no event has come for `seconds`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() - self.last_at < seconds and time.monotonic() < deadline:
            await asyncio.sleep(0.1)

    def distinct(self, routing_key_prefix: str) -> list[dict[str, Any]]:
        """One per event id: a message delivered twice is one event (at-least-once)."""
        seen: dict[str, dict[str, Any]] = {}
        for key, event in self.events:
            if key.startswith(routing_key_prefix):
                seen.setdefault(event["id"], event)
        return list(seen.values())


@dataclass
class Verdict:
    fault: str
    applications: int = 0
    completed: int = 0
    rejected: int = 0
    lost: int = 0
    duplicated: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.problems)

    def row(self) -> str:
        return f"{self.fault}, {self.applications}, {self.completed}, {self.rejected}, {self.lost}, {self.duplicated}"


async def check(fault: str, stack: ProcessStack, ledger: Ledger, events: EventLog) -> Verdict:
    verdict = Verdict(fault, applications=len(ledger.accepted))
    conn = await asyncpg.connect(stack.database_url)
    try:
        rows = await conn.fetch(
            "SELECT application_id::text AS id, status FROM status.applications WHERE application_id = ANY($1::uuid[])",
            list(ledger.accepted),
        )
        contracts = await conn.fetch("SELECT * FROM status.contracts")
        licenses = await conn.fetch("SELECT * FROM status.licenses")
        open_applications = await conn.fetchval("SELECT count(*) FROM status.applications WHERE status = 'processing'")
    finally:
        await conn.close()

    # Lost: answered 202, but never ended (or never even recorded).
    status = {r["id"]: r["status"] for r in rows}
    verdict.completed = sum(1 for s in status.values() if s == "completed")
    verdict.rejected = sum(1 for s in status.values() if s == "rejected")
    verdict.lost = verdict.applications - verdict.completed - verdict.rejected
    if open_applications:
        verdict.problems.append(f"{open_applications} applications still processing")

    # Duplicated: a second key for a license, a second order ID for a contract, an
    # application accepted/decided/completed twice (by distinct events).
    keys: dict[str, set[str]] = defaultdict(set)
    for event in events.distinct("license.issued"):
        for lic in event["data"]["licenses"]:
            keys[lic["license_id"]].add(lic["license_key"])
    verdict.duplicated += sum(1 for k in keys.values() if len(k) > 1)
    order_ids: dict[str, set[str]] = defaultdict(set)
    for event in events.distinct("order_id.issued"):
        order_ids[event["data"]["contract_id"]].add(event["data"]["arcserve_order_id"])
    verdict.duplicated += sum(1 for v in order_ids.values() if len(v) > 1)
    for stage in ("application.accepted.", "application.rejected.", "application.completed."):
        per_application: dict[str, int] = defaultdict(int)
        for event in events.distinct(stage):
            per_application[event["data"]["application_id"]] += 1
        verdict.duplicated += sum(n - 1 for n in per_application.values() if n > 1)
    license_keys = [r["license_key"] for r in licenses if r["license_key"]]
    verdict.duplicated += len(license_keys) - len(set(license_keys))

    # Unexpected: a contract whose status disagrees with its keys (R1, R9), or an invalid
    # sequence of contract events.
    by_contract: dict[Any, list[asyncpg.Record]] = defaultdict(list)
    for lic in licenses:
        by_contract[lic["contract_id"]].append(lic)
    for contract in contracts:
        own = by_contract[contract["contract_id"]]
        cid = contract["contract_id"]
        if contract["status"] == "active":
            if contract["order_id_status"] != "active" or any(
                lic["status"] == "preparing" or not lic["license_key"] for lic in own
            ):
                verdict.problems.append(f"contract {cid} is active but its order ID or keys are not (R1)")
        elif contract["status"] == "cancelled":
            if contract["order_id_status"] != "cancelled" or any(lic["status"] != "cancelled" for lic in own):
                verdict.problems.append(f"contract {cid} is cancelled but keys or order ID are not (R9)")
        else:
            verdict.problems.append(f"contract {cid} is still {contract['status']}")
    transitions: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for event in events.distinct("contract.status_changed"):
        transitions[event["data"]["contract_id"]].append((event["data"]["from"], event["data"]["to"]))
    for cid, seen in transitions.items():
        if sorted(seen) not in ([("preparing", "active")], [("active", "cancelled"), ("preparing", "active")]):
            verdict.problems.append(f"contract {cid} changed status {seen}")
    verdict.problems += ledger.unfinished
    return verdict
