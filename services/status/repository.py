"""Loads and saves the contract aggregate. Only rows that changed are written."""
from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import asyncpg

from shared.contracts.applications import (
    Contact,
    Kind,
    LicenseType,
    Usage,
    parse_application,
)
from shared.contracts.reasons import ReasonCode
from shared.domain.model import (
    Application,
    ApplicationStatus,
    Contract,
    ContractStatus,
    License,
    LicenseStatus,
    OrderId,
    OrderIdStatus,
    Reason,
)


def _license_state(lic: License) -> tuple[Any, ...]:
    return (lic.status, lic.license_key, lic.vm_count, lic.issued_at, lic.charge_start_at, lic.charge_end_at, lic.revoked_at)


def _application_state(app: Application) -> tuple[Any, ...]:
    return (app.status, app.reason, app.completed_at, tuple(app.license_ids), app.cancels_contract)


class ContractRepository:
    def __init__(self, conn: asyncpg.Connection):
        self.conn = conn
        self._seen: dict[UUID, tuple[Any, ...]] = {}  # state as loaded, to write only changes

    async def find_application(self, application_id: UUID) -> asyncpg.Record | None:
        return await self.conn.fetchrow(
            "SELECT tenant_id, reason_code FROM status.applications WHERE application_id = $1", application_id
        )

    async def get(self, contract_id: UUID, tenant_id: str) -> Contract | None:
        """The contract, row-locked until the transaction ends (one writer per contract)."""
        row = await self.conn.fetchrow(
            "SELECT * FROM status.contracts WHERE contract_id = $1 AND tenant_id = $2 FOR UPDATE",
            contract_id,
            tenant_id,
        )
        return await self._load(row) if row else None

    async def live_for_product(self, tenant_id: str, product_code: str) -> Contract | None:
        row = await self.conn.fetchrow(
            """SELECT * FROM status.contracts WHERE tenant_id = $1 AND product_code = $2
               AND status <> 'cancelled' FOR UPDATE""",
            tenant_id,
            product_code,
        )
        return await self._load(row) if row else None

    async def _load(self, row: asyncpg.Record) -> Contract:
        order_id = None
        if row["arcserve_order_id"] is not None:
            order_id = OrderId(
                value=row["arcserve_order_id"],
                status=OrderIdStatus(row["order_id_status"]),
                cancel_confirmed_at=row["order_id_cancel_confirmed_at"],
            )
        contract = Contract(
            contract_id=row["contract_id"],
            tenant_id=row["tenant_id"],
            product_code=row["product_code"],
            contact=Contact(email=row["contact_email"], company_name=row["contact_company_name"]),
            status=ContractStatus(row["status"]),
            created_at=row["created_at"],
            order_id=order_id,
        )
        for r in await self.conn.fetch(
            "SELECT * FROM status.licenses WHERE contract_id = $1 ORDER BY position", contract.contract_id
        ):
            lic = License(
                license_id=r["license_id"],
                application_id=r["application_id"],
                usage=Usage(r["usage"]),
                license_type=LicenseType(r["license_type"]),
                vm_count=r["vm_count"],
                billable=r["billable"],
                status=LicenseStatus(r["status"]),
                license_key=r["license_key"],
                parent_license_id=r["parent_license_id"],
                issued_at=r["issued_at"],
                charge_start_at=r["charge_start_at"],
                charge_end_at=r["charge_end_at"],
                revoked_at=r["revoked_at"],
            )
            contract.licenses[lic.license_id] = lic
            self._seen[lic.license_id] = _license_state(lic)
        for r in await self.conn.fetch(
            "SELECT * FROM status.applications WHERE contract_id = $1 AND status = 'processing'",
            contract.contract_id,
        ):
            app = _application_from_row(r)
            contract.applications[app.application_id] = app
            self._seen[app.application_id] = _application_state(app)
        self._seen[contract.contract_id] = self._contract_state(contract)
        return contract

    @staticmethod
    def _contract_state(c: Contract) -> tuple[Any, ...]:
        order = c.order_id
        return (
            c.status,
            c.contact,
            order.value if order else None,
            order.status if order else None,
            order.cancel_confirmed_at if order else None,
        )

    async def save(self, contract: Contract, now: Any) -> None:
        """Insert or update the contract, then its changed licenses and applications."""
        order = contract.order_id
        if self._seen.get(contract.contract_id) != self._contract_state(contract):
            await self.conn.execute(
                """INSERT INTO status.contracts (contract_id, tenant_id, product_code, status, contact_email,
                       contact_company_name, arcserve_order_id, order_id_status, order_id_cancel_confirmed_at,
                       created_at, updated_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                   ON CONFLICT (contract_id) DO UPDATE SET status = $4, contact_email = $5,
                       contact_company_name = $6, arcserve_order_id = $7, order_id_status = $8,
                       order_id_cancel_confirmed_at = $9, updated_at = $11""",
                contract.contract_id,
                contract.tenant_id,
                contract.product_code,
                contract.status.value,
                str(contract.contact.email),
                contract.contact.company_name,
                order.value if order else None,
                order.status.value if order else None,
                order.cancel_confirmed_at if order else None,
                contract.created_at,
                now,
            )
        licenses = [
            (position, lic)
            for position, lic in enumerate(contract.licenses.values())
            if self._seen.get(lic.license_id) != _license_state(lic)
        ]
        if licenses:
            await self.conn.executemany(
                """INSERT INTO status.licenses (license_id, contract_id, position, application_id,
                       parent_license_id, usage, license_type, vm_count, billable, status, license_key,
                       issued_at, charge_start_at, charge_end_at, revoked_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
                   ON CONFLICT (license_id) DO UPDATE SET vm_count = $8, status = $10, license_key = $11,
                       issued_at = $12, charge_start_at = $13, charge_end_at = $14, revoked_at = $15""",
                [
                    (
                        lic.license_id, contract.contract_id, position, lic.application_id,
                        lic.parent_license_id, lic.usage.value, lic.license_type.value, lic.vm_count,
                        lic.billable, lic.status.value, lic.license_key, lic.issued_at,
                        lic.charge_start_at, lic.charge_end_at, lic.revoked_at,
                    )
                    for position, lic in licenses
                ],
            )
        for app in contract.applications.values():
            if self._seen.get(app.application_id) != _application_state(app):
                await self.save_application(app)

    async def save_application(self, app: Application) -> None:
        body = app.body.model_dump_json() if app.body is not None else None
        await self.conn.execute(
            """INSERT INTO status.applications (application_id, tenant_id, kind, contract_id, status,
                   reason_code, reason_message, body, license_ids, cancels_contract, submitted_at,
                   expected_completion_at, completed_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11, $12, $13)
               ON CONFLICT (application_id) DO UPDATE SET status = $5, reason_code = $6,
                   reason_message = $7, license_ids = $9, cancels_contract = $10, completed_at = $13""",
            app.application_id,
            app.tenant_id,
            app.kind.value,
            app.contract_id,
            app.status.value,
            app.reason.code.value if app.reason else None,
            app.reason.message if app.reason else None,
            body,
            app.license_ids,
            app.cancels_contract,
            app.submitted_at,
            app.expected_completion_at,
            app.completed_at,
        )


def _application_from_row(r: asyncpg.Record) -> Application:
    body = parse_application(json.loads(r["body"]), stored=True) if r["body"] is not None else None
    return Application(
        application_id=r["application_id"],
        tenant_id=r["tenant_id"],
        kind=Kind(r["kind"]),
        contract_id=r["contract_id"],
        body=body,
        submitted_at=r["submitted_at"],
        expected_completion_at=r["expected_completion_at"],
        status=ApplicationStatus(r["status"]),
        reason=Reason(ReasonCode(r["reason_code"]), r["reason_message"]) if r["reason_code"] else None,
        completed_at=r["completed_at"],
        license_ids=list(r["license_ids"]),
        cancels_contract=r["cancels_contract"],
    )
