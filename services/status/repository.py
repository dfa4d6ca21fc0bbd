"""The Postgres side of the service layer's repository port (services/status/service.py):
loads and saves the contract aggregate in the `status` schema, writing only what changed."""
from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.status.domain.commands import Contact, Kind, LicenseType, Usage
from services.status.domain.model import (
    Application,
    ApplicationStatus,
    Contract,
    ContractStatus,
    DomainEvent,
    License,
    LicenseStatus,
    OrderId,
    OrderIdStatus,
    Reason,
    ReasonCode,
    Submitter,
    collect_events,
)
from services.status.service import Detail
from shared import tenancy
from shared.db.pool import Connection


def _license_state(lic: License) -> tuple[Any, ...]:
    return (lic.status, lic.license_key, lic.vm_count, lic.issued_at, lic.charge_start_at, lic.charge_end_at, lic.revoked_at)


def _application_state(app: Application) -> tuple[Any, ...]:
    return (app.status, app.reason, app.completed_at, tuple(app.license_ids), app.cancels_contract)


def _contract_state(c: Contract) -> tuple[Any, ...]:
    order = c.order_id
    return (c.status, c.contact, order.value if order else None, order.status if order else None,
            order.cancel_confirmed_at if order else None)


class PostgresRepository:
    def __init__(self, conn: Connection, now: datetime | None = None):
        self.conn = conn
        self.now = now  # stamps `updated_at` of what `save` writes
        self._seen: dict[UUID, tuple[Any, ...]] = {}  # state as loaded, to write only changes
        self._contracts: dict[UUID, Contract] = {}
        self._applications: list[Application] = []

    # ---- the write side -----------------------------------------------------------------
    async def hold(self, tenant_id: str, application_id: UUID) -> bool:
        # The lock first: `decided` must be read after it, in a statement of its own (a
        # snapshot taken before the lock was granted would miss the decision it waited for).
        return await tenancy.is_known(self.conn, tenant_id, locking=f"{tenant_id}/{application_id}")

    async def decided(self, tenant_id: str, application_id: UUID) -> bool:
        return bool(await self.conn.fetchval(
            "SELECT true FROM status.applications WHERE tenant_id = $1 AND application_id = $2", tenant_id, application_id
        ))

    async def get(self, contract_id: UUID, tenant_id: str) -> Contract | None:
        row = await self.conn.fetchrow(
            "SELECT * FROM status.contracts WHERE contract_id = $1 AND tenant_id = $2 FOR UPDATE", contract_id, tenant_id
        )
        return await self._track(row) if row else None

    async def live_for_product(self, tenant_id: str, product: str) -> Contract | None:
        row = await self.conn.fetchrow(
            """SELECT * FROM status.contracts WHERE tenant_id = $1 AND product_code = $2
               AND status <> 'cancelled' FOR UPDATE""",
            tenant_id,
            product,
        )
        return await self._track(row) if row else None

    def add(self, contract: Contract) -> None:
        self._contracts[contract.contract_id] = contract

    def add_application(self, application: Application) -> None:
        self._applications.append(application)

    async def save(self) -> list[DomainEvent]:
        for contract in self._contracts.values():
            await self._save_contract(contract)
        for application in self._applications:
            await self._save_application(application)
        return collect_events(self._contracts.values(), self._applications)

    async def _track(self, row: asyncpg.Record) -> Contract:
        contract = self._contracts.get(row["contract_id"])
        if contract is None:
            contract = await self._load(row)
            self._contracts[contract.contract_id] = contract
            self._seen[contract.contract_id] = _contract_state(contract)
            self._seen.update({lic.license_id: _license_state(lic) for lic in contract.licenses.values()})
            self._seen.update({a.application_id: _application_state(a) for a in contract.applications.values()})
        return contract

    async def _save_contract(self, contract: Contract) -> None:
        order = contract.order_id
        if self._seen.get(contract.contract_id) != _contract_state(contract):
            await self.conn.execute(
                """INSERT INTO status.contracts (contract_id, tenant_id, product_code, status, contact_email,
                       contact_company_name, arcserve_order_id, order_id_status, order_id_cancel_confirmed_at,
                       created_at, updated_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                   ON CONFLICT (contract_id) DO UPDATE SET status = $4, contact_email = $5,
                       contact_company_name = $6, arcserve_order_id = $7, order_id_status = $8,
                       order_id_cancel_confirmed_at = $9, updated_at = $11""",
                contract.contract_id, contract.tenant_id, contract.product_code, contract.status.value,
                contract.contact.email, contract.contact.company_name,
                order.value if order else None, order.status.value if order else None,
                order.cancel_confirmed_at if order else None, contract.created_at, self.now or contract.created_at,
            )
        licenses = [
            (position, lic) for position, lic in enumerate(contract.licenses.values())
            if self._seen.get(lic.license_id) != _license_state(lic)
        ]
        if licenses:
            await self.conn.executemany(
                """INSERT INTO status.licenses (license_id, contract_id, position, application_id,
                       parent_license_id, usage, license_type, vm_count, billable, status, sealed_key,
                       issued_at, charge_start_at, charge_end_at, revoked_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
                   ON CONFLICT (license_id) DO UPDATE SET vm_count = $8, status = $10, sealed_key = $11,
                       issued_at = $12, charge_start_at = $13, charge_end_at = $14, revoked_at = $15""",
                [
                    (lic.license_id, contract.contract_id, position, lic.application_id, lic.parent_license_id,
                     lic.usage.value, lic.license_type.value, lic.vm_count, lic.billable, lic.status.value,
                     lic.license_key, lic.issued_at, lic.charge_start_at, lic.charge_end_at, lic.revoked_at)
                    for position, lic in licenses
                ],
            )
        for app in contract.applications.values():
            if self._seen.get(app.application_id) != _application_state(app):
                await self._save_application(app)

    async def _save_application(self, app: Application) -> None:
        command = json.dumps(dataclasses.asdict(app.command), default=str) if app.command is not None else None
        await self.conn.execute(
            """INSERT INTO status.applications (application_id, tenant_id, kind, contract_id, status,
                   reason_code, reason_message, body, license_ids, cancels_contract, submitted_at,
                   expected_completion_at, completed_at, submitted_by_kind, submitted_by_id)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11, $12, $13, $14, $15)
               ON CONFLICT (tenant_id, application_id) DO UPDATE SET status = $5, reason_code = $6,
                   reason_message = $7, license_ids = $9, cancels_contract = $10, completed_at = $13""",
            app.application_id, app.tenant_id, app.kind.value, app.contract_id, app.status.value,
            app.reason.code.value if app.reason else None, app.reason.message if app.reason else None,
            command, app.license_ids, app.cancels_contract, app.submitted_at, app.expected_completion_at,
            app.completed_at, app.submitted_by.kind if app.submitted_by else None,
            app.submitted_by.id if app.submitted_by else None,
        )

    # ---- the read side ------------------------------------------------------------------
    async def snapshot(self, contract_id: UUID, tenant_id: str, history: int) -> Detail | None:
        # One snapshot: a decision committed between the reads would show a contract whose
        # status disagrees with its keys.
        async with self.conn.transaction(isolation="repeatable_read", readonly=True):
            row = await self.conn.fetchrow(
                "SELECT * FROM status.contracts WHERE contract_id = $1 AND tenant_id = $2", contract_id, tenant_id
            )
            if row is None:
                return None
            newest = [application_from_row(r) for r in await self.conn.fetch(
                """SELECT * FROM status.applications WHERE contract_id = $1 AND tenant_id = $2
                   ORDER BY submitted_at DESC, application_id DESC LIMIT $3""",
                contract_id, tenant_id, history,
            )]
            total = await self.conn.fetchval(
                "SELECT count(*) FROM status.applications WHERE contract_id = $1 AND tenant_id = $2", contract_id, tenant_id
            )
            return Detail(await self._load(row), newest[::-1], total)

    async def application(self, application_id: UUID, tenant_id: str) -> Application | None:
        row = await self.conn.fetchrow(
            "SELECT * FROM status.applications WHERE application_id = $1 AND tenant_id = $2", application_id, tenant_id
        )
        return application_from_row(row) if row else None

    async def _load(self, row: asyncpg.Record) -> Contract:
        """The contract of `row` with its keys and its applications still open (what the rules
        allow now depends on them, R6): one statement, run after the contract's row was
        locked, so that it sees what the lock's previous holder committed."""
        held = await self.conn.fetchrow(
            """SELECT ARRAY(SELECT a FROM status.applications a WHERE a.contract_id = $1 AND a.status = 'processing') AS open,
                      ARRAY(SELECT l FROM status.licenses l WHERE l.contract_id = $1 ORDER BY l.position) AS licenses""",
            row["contract_id"],
        )
        assert held is not None  # a SELECT without FROM has its one row
        contract = contract_from_row(row, [application_from_row(a) for a in held["open"]])
        for r in held["licenses"]:
            contract.licenses[r["license_id"]] = License(
                license_id=r["license_id"], application_id=r["application_id"], usage=Usage(r["usage"]),
                license_type=LicenseType(r["license_type"]), vm_count=r["vm_count"], billable=r["billable"],
                status=LicenseStatus(r["status"]), license_key=r["sealed_key"],
                parent_license_id=r["parent_license_id"], issued_at=r["issued_at"],
                charge_start_at=r["charge_start_at"], charge_end_at=r["charge_end_at"], revoked_at=r["revoked_at"],
            )
        return contract


def contract_from_row(row: asyncpg.Record, applications: list[Application]) -> Contract:
    """The contract of a `status.contracts` row, with these of its applications and no keys."""
    order_id = None
    if row["arcserve_order_id"] is not None:
        order_id = OrderId(row["arcserve_order_id"], OrderIdStatus(row["order_id_status"]),
                           row["order_id_cancel_confirmed_at"])
    return Contract(
        contract_id=row["contract_id"],
        tenant_id=row["tenant_id"],
        product_code=row["product_code"],
        contact=Contact(row["contact_email"], row["contact_company_name"]),
        status=ContractStatus(row["status"]),
        created_at=row["created_at"],
        order_id=order_id,
        updated_at=row["updated_at"],
        applications={a.application_id: a for a in applications},
    )


def application_from_row(r: asyncpg.Record) -> Application:
    return Application(
        application_id=r["application_id"],
        tenant_id=r["tenant_id"],
        kind=Kind(r["kind"]),
        contract_id=r["contract_id"],
        command=None,  # decided already: only its state matters now
        submitted_at=r["submitted_at"],
        expected_completion_at=r["expected_completion_at"],
        status=ApplicationStatus(r["status"]),
        reason=Reason(ReasonCode(r["reason_code"]), r["reason_message"]) if r["reason_code"] else None,
        completed_at=r["completed_at"],
        license_ids=list(r["license_ids"]),
        cancels_contract=r["cancels_contract"],
        submitted_by=Submitter(r["submitted_by_kind"], r["submitted_by_id"]) if r["submitted_by_kind"] else None,
    )
