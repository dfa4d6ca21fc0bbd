"""The console's `backoffice.revocations`: each revocation at Arcserve as the license issuer
announced it (`fulfilment.revocation_requested`) and whether an operator confirmed it. An
announcement repeated (the license issuer announces again until confirmed) is kept once and
counted."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import TypeAdapter

from services.backoffice.cursor import Cursor
from shared.contracts import fulfilment
from shared.db.pool import Queryable

State = Literal["open", "confirmed"]
STATES: tuple[State, ...] = ("open", "confirmed")
_LICENSES = TypeAdapter(list[fulfilment.RevokedLicense])


@dataclass(frozen=True)
class Revocation:
    tenant_id: str
    application_id: UUID
    contract_id: UUID
    licenses: tuple[fulfilment.RevokedLicense, ...]
    arcserve_order_id: str | None
    requested_at: datetime
    announced: int
    state: State = "open"
    confirmed_at: datetime | None = None
    confirmed_by: str | None = None

    def view(self) -> dict[str, Any]:
        """As the console's API shows it (docs/architecture.md, "Fulfilment")."""
        return {
            "application_id": str(self.application_id), "tenant": self.tenant_id, "contract_id": str(self.contract_id),
            "state": self.state, "requested_at": self.requested_at.isoformat(),
            "licenses": [lic.model_dump(mode="json") for lic in self.licenses],
            "arcserve_order_id": self.arcserve_order_id, "announced": self.announced,
            "confirmed_at": self.confirmed_at.isoformat() if self.confirmed_at else None,
            "confirmed_by": self.confirmed_by,
        }


def revocation_of(requested: fulfilment.RevocationRequested) -> Revocation:
    return Revocation(requested.tenant, requested.application_id, requested.contract_id, tuple(requested.licenses),
                      requested.arcserve_order_id, requested.requested_at, requested.attempt)


_COLUMNS = """tenant_id, application_id, contract_id, licenses, arcserve_order_id, requested_at, announced, state,
              confirmed_at, confirmed_by"""


def _revocation(row: Any) -> Revocation:
    return Revocation(row["tenant_id"], row["application_id"], row["contract_id"],
                      tuple(_LICENSES.validate_json(row["licenses"])), row["arcserve_order_id"], row["requested_at"],
                      row["announced"], row["state"], row["confirmed_at"], row["confirmed_by"])


class PostgresRevocations:
    def __init__(self, db: Queryable):
        self.db = db

    async def record(self, revocation: Revocation, received_at: datetime) -> None:
        """Keep a revocation announced; one announced before counts the announcement."""
        r = revocation
        await self.db.execute(
            """INSERT INTO backoffice.revocations (tenant_id, application_id, contract_id, licenses, arcserve_order_id,
                                                   requested_at, announced, received_at)
               VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8)
               ON CONFLICT (tenant_id, application_id) DO UPDATE
               SET announced = greatest(backoffice.revocations.announced, excluded.announced)""",
            r.tenant_id, r.application_id, r.contract_id, _LICENSES.dump_json(list(r.licenses)).decode(),
            r.arcserve_order_id, r.requested_at, r.announced, received_at,
        )

    async def page(self, state: State | Literal["all"], tenant: str | None, after: Cursor | None,
                   limit: int) -> list[Revocation]:
        """Revocations in the list's order (oldest request first), after `after`."""
        rows = await self.db.fetch(
            f"""SELECT {_COLUMNS} FROM backoffice.revocations
                WHERE ($1::text = 'all' OR state = $1) AND ($2::text IS NULL OR tenant_id = $2)
                  AND ($3::timestamptz IS NULL OR (requested_at, tenant_id, application_id) > ($3, $4, $5))
                ORDER BY requested_at, tenant_id, application_id LIMIT $6""",
            state, tenant, after.at if after else None, after.tenant_id if after else None,
            after.application_id if after else None, limit,
        )
        return [_revocation(row) for row in rows]

    async def find(self, application_id: UUID, tenant_id: str | None) -> list[Revocation]:
        """The revocations of that application id (one per tenant that chose it)."""
        rows = await self.db.fetch(
            f"""SELECT {_COLUMNS} FROM backoffice.revocations
                WHERE application_id = $1 AND ($2::text IS NULL OR tenant_id = $2)""",
            application_id, tenant_id,
        )
        return [_revocation(row) for row in rows]

    async def locked(self, tenant_id: str, application_id: UUID) -> Revocation | None:
        """The revocation, locked until the transaction ends (a second operator waits, then finds it confirmed)."""
        row = await self.db.fetchrow(
            f"SELECT {_COLUMNS} FROM backoffice.revocations WHERE tenant_id = $1 AND application_id = $2 FOR UPDATE",
            tenant_id, application_id,
        )
        return _revocation(row) if row else None

    async def confirm(self, revocation: Revocation, operator_id: str, at: datetime) -> Revocation:
        row = await self.db.fetchrow(
            f"""UPDATE backoffice.revocations SET state = 'confirmed', confirmed_at = $3, confirmed_by = $4
                WHERE tenant_id = $1 AND application_id = $2 RETURNING {_COLUMNS}""",
            revocation.tenant_id, revocation.application_id, at, operator_id,
        )
        return _revocation(row)
