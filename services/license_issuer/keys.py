"""The license issuer's tables: `license_issuer.keys`, one key per license, sealed at rest,
the first one stored for a license kept for good (a redelivery never issues a second key);
and `license_issuer.requests`, one per accepted application that needs keys: its fulfilment
task (the keys and, for a new contract, the order ID), open until a result fulfils it or
Arcserve refuses it."""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol, cast
from uuid import UUID

from shared.contracts import events
from shared.contracts.applications import Kind
from shared.db.pool import Queryable


@dataclass(frozen=True)
class IssuedKey:
    license_id: UUID
    contract_id: UUID
    application_id: UUID
    sealed_key: str
    issued_at: datetime
    fingerprint: bytes | None = None  # the key's under the keyring: a key is taken once


@dataclass(frozen=True)
class Request:
    """The keys an accepted application waits for: one per license."""

    application_id: UUID
    contract_id: UUID
    tenant_id: str
    kind: Kind
    licenses: tuple[events.LicenseSummary, ...]
    requested_at: datetime
    due_at: datetime | None  # R12's expected completion
    simulate_at: datetime | None  # when the simulator answers it; None: another source does
    traceparent: str | None = None  # of the acceptance's trace, which its result continues
    submitted_at: datetime | None = None  # the application's (its requested_at when not known)
    needs_order_id: bool = False  # a new contract's: the order ID comes with the keys

    @property
    def since(self) -> datetime:
        return self.submitted_at or self.requested_at


RequestState = Literal["open", "fulfilled", "refused"]


class Keys(Protocol):
    async def keep(self, issued: Sequence[IssuedKey]) -> dict[UUID, str]:
        """Store each key whose license has none yet; the sealed key stored for each license."""

    async def stored(self, license_ids: Sequence[UUID]) -> dict[UUID, str]:
        """The sealed keys stored for those licenses."""

    async def unrevoked(self, license_ids: Sequence[UUID]) -> dict[UUID, str]:
        """The sealed keys of those licenses that are not revoked yet."""

    async def revoke(self, license_ids: Sequence[UUID], at: datetime) -> None:
        """Mark the licenses' keys revoked (those revoked before keep their time)."""

    async def request(self, request: Request) -> RequestState:
        """Record the request unless the application has one; the state of the one it has."""

    async def task(self, tenant_id: str, application_id: UUID) -> tuple[Request, RequestState] | None:
        """The tenant's request of that application and its state, locked until the unit of
        work ends (a second result for it waits, then finds it closed); None if there is none."""

    async def used(self, fingerprints: Sequence[bytes]) -> bool:
        """Whether a key of one of these fingerprints was stored before."""

    async def to_simulate(self, now: datetime, limit: int) -> list[Request]:
        """Open requests the simulator answers by `now`, oldest first, locked until the unit of
        work ends (another replica skips them)."""

    async def next_simulation(self) -> datetime | None:
        """When the next open request is the simulator's to answer."""

    async def fulfilled(self, request: Request, at: datetime) -> None:
        """Close the request (closed before: it keeps its time)."""

    async def refused(self, request: Request, reason: str, at: datetime) -> None:
        """Close the request as Arcserve refused it (closed before: it stays as it was)."""


_COLUMNS = """application_id, contract_id, tenant_id, kind, licenses, requested_at, due_at, simulate_at, traceparent,
              submitted_at, needs_order_id"""


class PostgresKeys:
    def __init__(self, db: Queryable):
        self.db = db

    async def keep(self, issued: Sequence[IssuedKey]) -> dict[UUID, str]:
        await self.db.executemany(
            """INSERT INTO license_issuer.keys (license_id, contract_id, application_id, sealed_key, issued_at, fingerprint)
               VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (license_id) DO NOTHING""",
            [(k.license_id, k.contract_id, k.application_id, k.sealed_key, k.issued_at, k.fingerprint) for k in issued],
        )
        return await self.stored([k.license_id for k in issued])

    async def stored(self, license_ids: Sequence[UUID]) -> dict[UUID, str]:
        return dict(await self.db.fetch(
            "SELECT license_id, sealed_key FROM license_issuer.keys WHERE license_id = ANY($1::uuid[])", list(license_ids),
        ))

    async def unrevoked(self, license_ids: Sequence[UUID]) -> dict[UUID, str]:
        return dict(await self.db.fetch(
            "SELECT license_id, sealed_key FROM license_issuer.keys WHERE license_id = ANY($1::uuid[]) AND revoked_at IS NULL",
            list(license_ids),
        ))

    async def revoke(self, license_ids: Sequence[UUID], at: datetime) -> None:
        await self.db.execute(
            "UPDATE license_issuer.keys SET revoked_at = $2 WHERE license_id = ANY($1::uuid[]) AND revoked_at IS NULL",
            list(license_ids), at,
        )

    async def request(self, request: Request) -> RequestState:
        state = await self.db.fetchval(
            """WITH made AS (
                   INSERT INTO license_issuer.requests (application_id, contract_id, tenant_id, kind, licenses,
                                                        requested_at, due_at, simulate_at, traceparent, submitted_at,
                                                        needs_order_id)
                   VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $10, $11)
                   ON CONFLICT (tenant_id, application_id) DO NOTHING
                   RETURNING 'open' AS state)
               SELECT state FROM made
               UNION ALL SELECT CASE WHEN fulfilled_at IS NOT NULL THEN 'fulfilled'
                                     WHEN refused_at IS NOT NULL THEN 'refused' ELSE 'open' END
                         FROM license_issuer.requests WHERE tenant_id = $3 AND application_id = $1
               LIMIT 1""",
            request.application_id, request.contract_id, request.tenant_id, request.kind.value,
            json.dumps([lic.model_dump(mode="json") for lic in request.licenses]),
            request.requested_at, request.due_at, request.simulate_at, request.traceparent, request.since,
            request.needs_order_id,
        )
        return cast(RequestState, state)

    async def task(self, tenant_id: str, application_id: UUID) -> tuple[Request, RequestState] | None:
        row = await self.db.fetchrow(
            f"""SELECT {_COLUMNS}, CASE WHEN fulfilled_at IS NOT NULL THEN 'fulfilled'
                                        WHEN refused_at IS NOT NULL THEN 'refused' ELSE 'open' END AS state
                FROM license_issuer.requests WHERE tenant_id = $1 AND application_id = $2 FOR UPDATE""",
            tenant_id, application_id,
        )
        return (_request(row), cast(RequestState, row["state"])) if row else None

    async def used(self, fingerprints: Sequence[bytes]) -> bool:
        return bool(await self.db.fetchval(
            "SELECT true FROM license_issuer.keys WHERE fingerprint = ANY($1::bytea[]) LIMIT 1", list(fingerprints)))

    async def to_simulate(self, now: datetime, limit: int) -> list[Request]:
        rows = await self.db.fetch(
            f"""SELECT {_COLUMNS} FROM license_issuer.requests
                WHERE fulfilled_at IS NULL AND refused_at IS NULL AND simulate_at <= $1
                ORDER BY simulate_at LIMIT $2 FOR UPDATE SKIP LOCKED""",
            now, limit,
        )
        return [_request(row) for row in rows]

    async def next_simulation(self) -> datetime | None:
        at: datetime | None = await self.db.fetchval(
            "SELECT min(simulate_at) FROM license_issuer.requests WHERE fulfilled_at IS NULL AND refused_at IS NULL")
        return at

    async def fulfilled(self, request: Request, at: datetime) -> None:
        await self.db.execute(
            """UPDATE license_issuer.requests SET fulfilled_at = coalesce(fulfilled_at, $3)
               WHERE tenant_id = $1 AND application_id = $2 AND refused_at IS NULL""",
            request.tenant_id, request.application_id, at,
        )

    async def refused(self, request: Request, reason: str, at: datetime) -> None:
        await self.db.execute(
            """UPDATE license_issuer.requests SET refused_at = $3, reason = $4
               WHERE tenant_id = $1 AND application_id = $2 AND fulfilled_at IS NULL AND refused_at IS NULL""",
            request.tenant_id, request.application_id, at, reason,
        )


def _request(row: Any) -> Request:
    return Request(row["application_id"], row["contract_id"], row["tenant_id"], Kind(row["kind"]),
                   tuple(events.LicenseSummary.model_validate(lic) for lic in json.loads(row["licenses"])),
                   row["requested_at"], row["due_at"], row["simulate_at"], row["traceparent"],
                   row["submitted_at"], row["needs_order_id"])
