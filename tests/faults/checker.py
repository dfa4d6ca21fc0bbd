"""The end state of a fault run, checked from Postgres and the event stream (like
RabbitMQ's Jepsen checker): nothing lost, nothing done twice, and every tenant's contract
exactly where its scenario must leave it (tests/faults/workload.py: STEPS, END_STATE)."""
from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import asyncpg

from shared.contracts import routing
from shared.messaging import nodes
from shared.sealing import Keyring
from tests.faults.fulfillers import key_for, order_id_for
from tests.faults.processes import ProcessStack
from tests.faults.workload import COMPLETED, END_STATE, STEPS, Ledger, Scenario


class EventLog:
    """Every event on `arcserve.events`, and every `license.keys` on the private exchange
    (the checker is the administrator), from a durable queue of its own, so a broker restart
    loses none of them."""

    def __init__(self, stack: ProcessStack):
        self.stack = stack
        self.queue_name = f"{stack.prefix}faults.event-log"
        self.events: list[tuple[str, dict[str, Any]]] = []

    async def __aenter__(self) -> EventLog:
        self.connection = await nodes.connect_robust(self.stack.amqp_url)  # it follows a node loss too
        channel = await self.connection.channel()
        self.queue = await channel.declare_queue(self.queue_name, durable=True, arguments={"x-queue-type": "quorum"})
        await self.queue.bind(self.stack.topology.events, "#")
        await self.queue.bind(self.stack.topology.name(routing.LICENSE_KEYS_EXCHANGE), "#")

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            event = json.loads(message.body)
            if not event.get("faultscopy"):  # copies injected by the fault are not the system's doing
                self.events.append((message.routing_key or "", event))
            await message.ack()

        self.tag = await self.queue.consume(on_message)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.queue.cancel(self.tag)
        await self.queue.delete(if_unused=False, if_empty=False)
        await self.connection.close()

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
    wrong: int = 0  # end states that differ from what the scenario expects
    refused_s: float = 0.0  # how long intake answered 503 (or not at all): Ledger.refused_seconds
    problems: list[str] = field(default_factory=list)

    HEADER = "fault, applications, completed, rejected, lost, duplicated, wrong, refused s"

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.wrong or self.problems)

    def row(self) -> str:
        return (f"{self.fault}, {self.applications}, {self.completed}, {self.rejected}, "
                f"{self.lost}, {self.duplicated}, {self.wrong}, {self.refused_s:.1f}")

    def found_wrong(self, problem: str) -> None:
        self.wrong += 1
        self.problems.append(problem)


@dataclass(frozen=True)
class Database:
    """The status service's view at the end of the run."""

    applications: dict[str, asyncpg.Record]  # application id → row
    contracts: dict[str, asyncpg.Record]  # contract id → row
    licenses: dict[str, list[asyncpg.Record]]  # contract id → its licenses

    @classmethod
    async def read(cls, database_url: str) -> Database:
        conn = await asyncpg.connect(database_url)
        try:
            applications = await conn.fetch("SELECT *, application_id::text AS id FROM status.applications")
            contracts = await conn.fetch("SELECT *, contract_id::text AS id FROM status.contracts")
            licenses = await conn.fetch(
                """SELECT *, license_id::text AS id, contract_id::text AS contract, parent_license_id::text AS parent
                   FROM status.licenses ORDER BY position"""
            )
        finally:
            await conn.close()
        by_contract: dict[str, list[asyncpg.Record]] = defaultdict(list)
        for lic in licenses:
            by_contract[lic["contract"]].append(lic)
        return cls({r["id"]: r for r in applications}, {r["id"]: r for r in contracts}, by_contract)


async def check(fault: str, stack: ProcessStack, ledger: Ledger, events: EventLog) -> Verdict:
    verdict = Verdict(fault, applications=len(ledger.accepted), refused_s=ledger.refused_seconds())
    db = await Database.read(stack.database_url)
    _lost(verdict, ledger, db)
    await _revocations(verdict, ledger, db, stack)
    _duplicated(verdict, events, db, stack)
    for scenario in ledger.scenarios:
        _scenario(verdict, scenario, db, events)
        if stack.fulfilment != "simulator":
            _as_delivered(verdict, scenario, db, Keyring.parse(stack.keyring))
    _nothing_else(verdict, ledger, db)
    verdict.problems += ledger.unfinished
    return verdict


def _lost(verdict: Verdict, ledger: Ledger, db: Database) -> None:
    """Answered 202, but never ended (or never even recorded)."""
    statuses = {a: db.applications[a]["status"] if a in db.applications else "never recorded" for a in ledger.accepted}
    verdict.completed = sum(1 for s in statuses.values() if s == "completed")
    verdict.rejected = sum(1 for s in statuses.values() if s == "rejected")
    lost = {a: s for a, s in statuses.items() if s not in ("completed", "rejected")}
    verdict.lost = len(lost)
    if lost:
        first = next(iter(lost))
        verdict.problems.append(f"{len(lost)} applications answered 202 never ended, e.g. {first} ({lost[first]})")


CANCELLATIONS = ("partial cancellation", "cancel all")


async def _unconfirmed(stack: ProcessStack) -> int:
    conn = await asyncpg.connect(stack.database_url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM license_issuer.revocations WHERE confirmed_at IS NULL"))
    finally:
        await conn.close()


async def revocations_settled(stack: ProcessStack, deadline_s: float) -> None:
    """Wait until every revocation at Arcserve is confirmed (by the simulator or the run's
    fulfiller); AssertionError naming how many are not, past the deadline."""
    deadline = time.monotonic() + deadline_s
    while (waiting := await _unconfirmed(stack)) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    if waiting:
        raise AssertionError(f"{waiting} revocations at Arcserve still unconfirmed after {deadline_s:g} s")


async def _revocations(verdict: Verdict, ledger: Ledger, db: Database, stack: ProcessStack) -> None:
    """Each completed cancellation asked Arcserve to revoke its keys, once, and it was confirmed:
    one missing or never confirmed leaves keys live at Arcserve that nobody pays for (lost)."""
    conn = await asyncpg.connect(stack.database_url)
    try:
        rows = {r["id"]: r for r in await conn.fetch(
            """SELECT application_id::text AS id, confirmed_at, cardinality(license_ids) AS keys, arcserve_order_id
               FROM license_issuer.revocations""")}
    finally:
        await conn.close()
    missing = []
    for scenario in ledger.scenarios:
        for label in CANCELLATIONS:
            application_id = scenario.applications.get(label)
            application = db.applications.get(application_id or "")
            done = application is not None and application["status"] == "completed"
            row = rows.get(application_id or "")
            if done and (row is None or row["confirmed_at"] is None or not row["keys"]):
                missing.append(f"tenant {scenario.tenant}: {label} {application_id} "
                               f"{'never asked Arcserve' if row is None else 'never confirmed'}")
            if done and row is not None and (row["arcserve_order_id"] is not None) != (label == "cancel all"):
                verdict.found_wrong(f"tenant {scenario.tenant}: {label} asked Arcserve to cancel the order ID "
                                    f"{row['arcserve_order_id']!r} (R9: only when the contract ends)")
    verdict.lost += len(missing)
    if missing:
        verdict.problems.append(f"{len(missing)} revocations at Arcserve missing or unconfirmed, e.g. {missing[0]}")


def _as_delivered(verdict: Verdict, scenario: Scenario, db: Database, keyring: Keyring) -> None:
    """Outside simulator mode: each license holds the key the fulfiller delivered for it, and
    the contract the order ID (tests/faults/fulfillers.py)."""
    contract = db.contracts.get(scenario.contract_id or "")
    if contract is None:
        return  # said already
    if contract["arcserve_order_id"] != order_id_for(contract["id"]):
        verdict.found_wrong(f"tenant {scenario.tenant}: order ID {contract['arcserve_order_id']!r}, "
                            f"delivered {order_id_for(contract['id'])!r}")
    for lic in db.licenses.get(contract["id"], []):
        if lic["sealed_key"] and keyring.open(lic["sealed_key"], context=lic["id"]) != key_for(lic["id"]):
            verdict.found_wrong(f"tenant {scenario.tenant}: license {lic['id']} holds a key nobody delivered")


def _duplicated(verdict: Verdict, events: EventLog, db: Database, stack: ProcessStack) -> None:
    """A second key for a license, a second order ID for a contract, an application
    accepted, rejected or completed twice (by distinct events)."""
    twice: list[str] = []
    keys: dict[str, set[str]] = defaultdict(set)
    keyring = Keyring.parse(stack.keyring)
    for event in events.distinct("license.keys"):
        for key in event["data"]["keys"]:
            keys[key["license_id"]].add(keyring.open(key["sealed_key"], context=key["license_id"]))
    twice += [f"license {i} got {len(k)} keys" for i, k in keys.items() if len(k) > 1]
    order_ids: dict[str, set[str]] = defaultdict(set)
    for event in events.distinct("order_id.issued"):
        order_ids[event["data"]["contract_id"]].add(event["data"]["arcserve_order_id"])
    twice += [f"contract {c} got {len(v)} order IDs" for c, v in order_ids.items() if len(v) > 1]
    for stage in ("application.accepted.", "application.rejected.", "application.completed."):
        per_application: dict[str, int] = defaultdict(int)
        for event in events.distinct(stage):
            per_application[event["data"]["application_id"]] += 1
        twice += [f"application {a}: {stage}* {n} times" for a, n in per_application.items() for _ in range(n - 1)]
    stored = [keyring.open(lic["sealed_key"], context=lic["id"])
              for own in db.licenses.values() for lic in own if lic["sealed_key"]]
    twice += ["one key stored on two licenses"] * (len(stored) - len(set(stored)))
    verdict.duplicated = len(twice)
    if twice:
        verdict.problems.append(f"{len(twice)} things done twice, e.g. {twice[0]}")


def _scenario(verdict: Verdict, scenario: Scenario, db: Database, events: EventLog) -> None:
    """Each step answered as the scenario expects, and the contract where it must end."""
    who = f"tenant {scenario.tenant}"
    for step in STEPS:
        application_id = scenario.applications.get(step.label)
        row = db.applications.get(application_id) if application_id else None
        if row is None or row["status"] == "processing":
            continue  # never submitted, or lost: counted as such already
        outcome = COMPLETED if row["status"] == "completed" else row["reason_code"]
        if outcome != step.expected:
            why = f" ({row['reason_message']})" if row["reason_message"] else ""
            verdict.found_wrong(f"{who}: {step.label} ended {outcome}{why}, expected {step.expected}")
    contract = db.contracts.get(scenario.contract_id or "")
    if contract is None:
        verdict.found_wrong(f"{who}: no contract")
        return
    where = f"{who}, contract {contract['id']}"
    if contract["status"] != END_STATE["contract_status"]:
        verdict.found_wrong(f"{where} is {contract['status']}, expected {END_STATE['contract_status']}")
    if contract["order_id_status"] != END_STATE["order_id_status"] or contract["order_id_cancel_confirmed_at"] is None:
        verdict.found_wrong(f"{where}: order ID {contract['arcserve_order_id']} is {contract['order_id_status']}"
                            f"{'' if contract['order_id_cancel_confirmed_at'] else ', its cancellation never confirmed'} (R9)")
    licenses = db.licenses.get(contract["id"], [])
    if len(licenses) != END_STATE["keys"]:
        verdict.found_wrong(f"{where} has {len(licenses)} keys, expected {END_STATE['keys']}")
    for lic in licenses:
        if lic["status"] != "cancelled" or not lic["sealed_key"] or lic["revoked_at"] is None:
            verdict.found_wrong(f"{where}: key {lic['id']} is {lic['status']}, "
                                f"{'issued' if lic['sealed_key'] else 'never issued'}, "
                                f"{'revoked' if lic['revoked_at'] else 'never revoked'}; expected cancelled and revoked")
    vm_keys = [lic for lic in licenses if lic["parent"]]
    parents = {lic["id"]: lic for lic in licenses}
    if len(vm_keys) != 1 or vm_keys[0]["billable"] or vm_keys[0]["parent"] not in parents:
        verdict.found_wrong(f"{where}: VM keys {[(k['id'], k['billable']) for k in vm_keys]}, "
                            "expected one, not billable, on the dedicated hypervisor key (R7)")
    else:
        parent = parents[vm_keys[0]["parent"]]
        if parent["vm_count"] != END_STATE["parent_vm_count"]:
            verdict.found_wrong(f"{where}: the dedicated hypervisor key counts {parent['vm_count']} VMs, "
                                f"expected {END_STATE['parent_vm_count']} (R7)")
    history = sorted(
        (e for e in events.distinct("contract.status_changed") if e["data"]["contract_id"] == contract["id"]),
        key=lambda e: e["time"],
    )
    seen = [(e["data"]["from"], e["data"]["to"]) for e in history]
    if seen != END_STATE["status_history"]:
        verdict.found_wrong(f"{where} changed status {seen}, expected {END_STATE['status_history']}")


def _nothing_else(verdict: Verdict, ledger: Ledger, db: Database) -> None:
    """No application or contract beyond what the clients submitted."""
    extra_applications = sorted(set(db.applications) - set(ledger.accepted))
    if extra_applications:
        verdict.found_wrong(f"{len(extra_applications)} applications nobody submitted, e.g. {extra_applications[:3]}")
    expected_contracts = {s.contract_id for s in ledger.scenarios if s.contract_id}
    extra_contracts = sorted(set(db.contracts) - expected_contracts)
    if extra_contracts:
        verdict.found_wrong(f"{len(extra_contracts)} contracts beyond one per tenant, e.g. "
                            f"{[(c, db.contracts[c]['tenant_id'], db.contracts[c]['status']) for c in extra_contracts[:3]]}")
