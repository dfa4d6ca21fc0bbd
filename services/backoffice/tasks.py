"""The console's tables: `backoffice.tasks`, each fulfilment task as the license issuer
announced it and what an operator did with it, and `backoffice.used_keys`, the fingerprints
of the keys typed in (a key is taken once)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from services.backoffice.cursor import Cursor
from shared.contracts import fulfilment
from shared.contracts.applications import Kind
from shared.db.pool import Queryable

State = Literal["open", "fulfilled", "rejected"]
STATES: tuple[State, ...] = ("open", "fulfilled", "rejected")


@dataclass(frozen=True)
class Task:
    tenant_id: str
    application_id: UUID
    contract_id: UUID
    kind: Kind
    submitted_at: datetime
    due_at: datetime
    needs: fulfilment.Needs
    state: State = "open"
    closed_at: datetime | None = None
    closed_by: str | None = None
    reason: str | None = None

    def overdue(self, now: datetime) -> bool:
        """Still open past its due time (R12's expected completion)."""
        return self.state == "open" and now > self.due_at

    def view(self, now: datetime) -> dict[str, Any]:
        """As the console's API shows it (docs/architecture.md, "Fulfilment")."""
        return {
            "application_id": str(self.application_id), "tenant": self.tenant_id, "contract_id": str(self.contract_id),
            "kind": self.kind.value, "state": self.state, "submitted_at": self.submitted_at.isoformat(),
            "due_at": self.due_at.isoformat(), "overdue": self.overdue(now),
            "needs": self.needs.model_dump(mode="json"),
            "closed_at": self.closed_at.isoformat() if self.closed_at else None, "closed_by": self.closed_by,
            "reason": self.reason,
        }


def task_of(requested: fulfilment.FulfilmentRequested) -> Task:
    return Task(requested.tenant, requested.application_id, requested.contract_id, requested.kind,
                requested.submitted_at, requested.due_at or requested.submitted_at, requested.needs)


@dataclass(frozen=True)
class Filters:
    state: State | Literal["all"] = "open"
    tenant: str | None = None
    kind: Kind | None = None
    overdue: bool = False


_COLUMNS = """tenant_id, application_id, contract_id, kind, submitted_at, due_at, needs, state, closed_at, closed_by,
              reason"""


def _task(row: Any) -> Task:
    return Task(row["tenant_id"], row["application_id"], row["contract_id"], Kind(row["kind"]), row["submitted_at"],
                row["due_at"], fulfilment.Needs.model_validate_json(row["needs"]), row["state"], row["closed_at"],
                row["closed_by"], row["reason"])


class PostgresTasks:
    def __init__(self, db: Queryable):
        self.db = db

    async def record(self, task: Task, received_at: datetime) -> None:
        """Keep a task announced; one announced before stays as it is."""
        await self.db.execute(
            """INSERT INTO backoffice.tasks (tenant_id, application_id, contract_id, kind, submitted_at, due_at, needs,
                                             received_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8) ON CONFLICT DO NOTHING""",
            task.tenant_id, task.application_id, task.contract_id, task.kind.value, task.submitted_at, task.due_at,
            task.needs.model_dump_json(), received_at,
        )

    async def page(self, filters: Filters, now: datetime, after: Cursor | None, limit: int) -> list[Task]:
        """Tasks in the list's order (due first), after `after`."""
        rows = await self.db.fetch(
            f"""SELECT {_COLUMNS} FROM backoffice.tasks
                WHERE ($1::text = 'all' OR state = $1) AND ($2::text IS NULL OR tenant_id = $2)
                  AND ($3::text IS NULL OR kind = $3) AND (NOT $4 OR (state = 'open' AND due_at < $5))
                  AND ($6::timestamptz IS NULL OR (due_at, tenant_id, application_id) > ($6, $7, $8))
                ORDER BY due_at, tenant_id, application_id LIMIT $9""",
            filters.state, filters.tenant, filters.kind.value if filters.kind else None, filters.overdue, now,
            after.at if after else None, after.tenant_id if after else None,
            after.application_id if after else None, limit,
        )
        return [_task(row) for row in rows]

    async def find(self, application_id: UUID, tenant_id: str | None) -> list[Task]:
        """The tasks of that application id (one per tenant that chose it)."""
        rows = await self.db.fetch(
            f"SELECT {_COLUMNS} FROM backoffice.tasks WHERE application_id = $1 AND ($2::text IS NULL OR tenant_id = $2)",
            application_id, tenant_id,
        )
        return [_task(row) for row in rows]

    async def locked(self, tenant_id: str, application_id: UUID) -> Task | None:
        """The task, locked until the transaction ends (a second operator waits, then finds it closed)."""
        row = await self.db.fetchrow(
            f"SELECT {_COLUMNS} FROM backoffice.tasks WHERE tenant_id = $1 AND application_id = $2 FOR UPDATE",
            tenant_id, application_id,
        )
        return _task(row) if row else None

    async def close(self, task: Task, state: State, operator_id: str, at: datetime, reason: str | None = None) -> Task:
        row = await self.db.fetchrow(
            f"""UPDATE backoffice.tasks SET state = $3, closed_at = $4, closed_by = $5, reason = $6
                WHERE tenant_id = $1 AND application_id = $2 RETURNING {_COLUMNS}""",
            task.tenant_id, task.application_id, state, at, operator_id, reason,
        )
        return _task(row)

    async def used(self, fingerprints: Sequence[bytes]) -> bool:
        return bool(await self.db.fetchval(
            "SELECT true FROM backoffice.used_keys WHERE fingerprint = ANY($1::bytea[]) LIMIT 1", list(fingerprints)))

    async def use(self, task: Task, fingerprints: Sequence[bytes], at: datetime) -> None:
        await self.db.executemany(
            "INSERT INTO backoffice.used_keys (fingerprint, tenant_id, application_id, used_at) VALUES ($1, $2, $3, $4)",
            [(fingerprint, task.tenant_id, task.application_id, at) for fingerprint in fingerprints],
        )
