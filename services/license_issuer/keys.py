"""The license issuer's table, `license_issuer.keys`: one key per license, sealed at rest,
the first one stored for a license kept for good (a redelivery never issues a second key)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from shared.db.pool import Queryable


@dataclass(frozen=True)
class IssuedKey:
    license_id: UUID
    contract_id: UUID
    application_id: UUID
    sealed_key: str
    issued_at: datetime


class Keys(Protocol):
    async def keep(self, issued: Sequence[IssuedKey]) -> dict[UUID, str]:
        """Store each key whose license has none yet; the sealed key stored for each license."""

    async def unrevoked(self, license_ids: Sequence[UUID]) -> dict[UUID, str]:
        """The sealed keys of those licenses that are not revoked yet."""

    async def revoke(self, license_ids: Sequence[UUID], at: datetime) -> None:
        """Mark the licenses' keys revoked (those revoked before keep their time)."""


class PostgresKeys:
    def __init__(self, db: Queryable):
        self.db = db

    async def keep(self, issued: Sequence[IssuedKey]) -> dict[UUID, str]:
        await self.db.executemany(
            """INSERT INTO license_issuer.keys (license_id, contract_id, application_id, sealed_key, issued_at)
               VALUES ($1, $2, $3, $4, $5) ON CONFLICT (license_id) DO NOTHING""",
            [(k.license_id, k.contract_id, k.application_id, k.sealed_key, k.issued_at) for k in issued],
        )
        return dict(await self.db.fetch(
            "SELECT license_id, sealed_key FROM license_issuer.keys WHERE license_id = ANY($1::uuid[])",
            [k.license_id for k in issued],
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
