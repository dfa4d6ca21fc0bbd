"""The read side of the lists (docs/architecture.md, "Public contract"): the contract summaries of the main
menu and the tenant's applications, each page in a fixed number of queries however many
rows it holds. Plain reads, scoped to the tenant; nothing here decides anything."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from services.status.cursor import Cursor
from services.status.domain.commands import LicenseType, Usage
from services.status.domain.model import Application, ApplicationStatus, Contract, ContractStatus
from services.status.repository import application_from_row, contract_from_row
from shared.db.pool import Connection

SUMMARY_APPLICATION_IDS = 20  # a row of the menu shows the newest; the detail view has the history


@dataclass(frozen=True)
class LicenseCount:
    usage: Usage
    license_type: LicenseType
    active: int
    preparing: int
    cancelled: int


@dataclass(frozen=True)
class Summary:
    """A row of the main menu: the contract (with its open changes, for what the rules allow
    now) and what its keys and applications add up to."""

    contract: Contract
    license_types: list[LicenseCount]
    application_ids: list[UUID]  # newest first, at most SUMMARY_APPLICATION_IDS
    applications_total: int
    cancelled_at: datetime | None
    charge_start_at: datetime | None
    charge_end_at: datetime | None
    takes_vms: bool  # an active dedicated hypervisor key is there (R7)


_SUMMARIES = """
SELECT c.*, lic.license_types, lic.charge_start_at, lic.charge_end_at, lic.takes_vms,
       apps.application_ids, apps.applications_total,
       -- R8, R9: the keys end when the cancellation is decided; that is when the contract ended
       CASE WHEN c.status = 'cancelled' THEN coalesce(lic.charge_end_at, apps.cancelling_ended) END AS cancelled_at
FROM status.contracts c
LEFT JOIN LATERAL (
    SELECT json_agg(json_build_array(usage, license_type, active, preparing, cancelled) ORDER BY first)
               AS license_types,
           min(charge_start) AS charge_start_at,
           CASE WHEN c.status = 'cancelled' THEN max(charge_end) END AS charge_end_at,
           bool_or(license_type = 'dedicated_hypervisor' AND active > 0) AS takes_vms
    FROM (SELECT usage, license_type, min(position) AS first,
                 count(*) FILTER (WHERE status = 'active') AS active,
                 count(*) FILTER (WHERE status = 'preparing') AS preparing,
                 count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
                 min(charge_start_at) AS charge_start, max(charge_end_at) AS charge_end
          FROM status.licenses WHERE contract_id = c.contract_id
          GROUP BY usage, license_type) per_type
) lic ON true
LEFT JOIN LATERAL (
    SELECT (SELECT array_agg(application_id) FROM (
                SELECT application_id FROM status.applications
                WHERE tenant_id = c.tenant_id AND contract_id = c.contract_id
                ORDER BY submitted_at DESC, application_id DESC LIMIT $6) newest) AS application_ids,
           count(*) AS applications_total,
           max(completed_at) FILTER (WHERE cancels_contract AND status <> 'rejected') AS cancelling_ended
    FROM status.applications WHERE tenant_id = c.tenant_id AND contract_id = c.contract_id
) apps ON true
WHERE c.tenant_id = $1 AND ($2::text IS NULL OR c.status = $2) AND ($3::text IS NULL OR c.product_code = $3)
  AND ($4::timestamptz IS NULL OR (c.created_at, c.contract_id) < ($4, $5))
ORDER BY c.created_at DESC, c.contract_id DESC LIMIT $7
"""


async def summaries(conn: Connection, tenant_id: str, *, status: ContractStatus | None, product: str | None,
                    after: Cursor | None, limit: int) -> list[Summary]:
    """The tenant's contracts, newest first, after the cursor; one snapshot for the page."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        rows = await conn.fetch(
            _SUMMARIES, tenant_id, status.value if status else None, product,
            after[0] if after else None, after[1] if after else None, SUMMARY_APPLICATION_IDS, limit,
        )
        open_rows = await conn.fetch(
            """SELECT * FROM status.applications
               WHERE tenant_id = $1 AND contract_id = ANY($2::uuid[]) AND status = 'processing'""",
            tenant_id, [row["contract_id"] for row in rows],
        ) if rows else []
    open_by_contract: dict[UUID, list[Application]] = {}
    for r in open_rows:
        open_by_contract.setdefault(r["contract_id"], []).append(application_from_row(r))
    return [
        Summary(
            contract=contract_from_row(row, open_by_contract.get(row["contract_id"], [])),
            license_types=[
                LicenseCount(Usage(u), LicenseType(t), a, p, c)
                for u, t, a, p, c in json.loads(row["license_types"] or "[]")
            ],
            application_ids=list(row["application_ids"] or []),
            applications_total=row["applications_total"],
            cancelled_at=row["cancelled_at"],
            charge_start_at=row["charge_start_at"],
            charge_end_at=row["charge_end_at"],
            takes_vms=bool(row["takes_vms"]),
        )
        for row in rows
    ]


async def applications(conn: Connection, tenant_id: str, *, contract_id: UUID | None,
                       status: ApplicationStatus | None, after: Cursor | None, limit: int) -> list[Application]:
    """The tenant's applications, newest first, after the cursor."""
    rows = await conn.fetch(
        """SELECT * FROM status.applications
           WHERE tenant_id = $1 AND ($2::uuid IS NULL OR contract_id = $2) AND ($3::text IS NULL OR status = $3)
             AND ($4::timestamptz IS NULL OR (submitted_at, application_id) < ($4, $5))
           ORDER BY submitted_at DESC, application_id DESC LIMIT $6""",
        tenant_id, contract_id, status.value if status else None,
        after[0] if after else None, after[1] if after else None, limit,
    )
    return [application_from_row(r) for r in rows]
