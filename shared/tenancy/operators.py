"""The provider's operators of the back-office console (docs/architecture.md, "Fulfilment"),
in `tenancy.operators`: a viewer sees the fulfilment tasks, a fulfiller also fulfils and
rejects them. An operator key is `ops_<operator id>_<43 random characters>` (256 random bits),
shown once, and stored only as its HMAC-SHA256 under the server pepper, as tenants' API keys
are (shared/tenancy: `api_key_hmac`); revoked, it stops working at once (it is looked up on
every request: operators are few)."""
from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from shared.db.pool import Queryable
from shared.tenancy import api_key_hmac


class OperatorRole(StrEnum):
    FULFILLER = "fulfiller"  # sees, fulfils and rejects
    VIEWER = "viewer"  # sees


@dataclass(frozen=True)
class Operator:
    operator_id: str
    name: str
    role: OperatorRole
    created_at: datetime
    revoked_at: datetime | None

    @property
    def may_fulfil(self) -> bool:
        return self.role is OperatorRole.FULFILLER and self.revoked_at is None


def new_operator_key() -> tuple[str, str]:
    """(operator id, key): `ops_<id>_<secret>`."""
    operator_id = base64.b32encode(secrets.token_bytes(10)).decode().lower()[:10]
    return operator_id, f"ops_{operator_id}_{secrets.token_urlsafe(32)}"


def _operator(r: Any) -> Operator:
    return Operator(r["operator_id"], r["name"], OperatorRole(r["role"]), r["created_at"], r["revoked_at"])


async def create_operator(conn: Queryable, pepper: bytes, name: str, role: OperatorRole) -> tuple[Operator, str]:
    """A new operator; (operator, key). The key is shown once, by the caller."""
    operator_id, key = new_operator_key()
    row = await conn.fetchrow(
        """INSERT INTO tenancy.operators (operator_id, name, role, key_hmac) VALUES ($1, $2, $3, $4)
           RETURNING operator_id, name, role, created_at, revoked_at""",
        operator_id, name, role.value, api_key_hmac(pepper, key),
    )
    return _operator(row), key


async def operator_for_key(conn: Queryable, pepper: bytes, key: str) -> Operator | None:
    """The operator whose key this is, unless revoked."""
    row = await conn.fetchrow(
        """SELECT operator_id, name, role, created_at, revoked_at FROM tenancy.operators
           WHERE key_hmac = $1 AND revoked_at IS NULL""",
        api_key_hmac(pepper, key),
    )
    return _operator(row) if row else None


async def operator_named(conn: Queryable, name: str) -> Operator | None:
    """The one unrevoked operator of that name (an authenticating proxy names its user); None
    when there is none, or more than one (a name that says no one person)."""
    rows = await conn.fetch(
        """SELECT operator_id, name, role, created_at, revoked_at FROM tenancy.operators
           WHERE name = $1 AND revoked_at IS NULL LIMIT 2""",
        name,
    )
    return _operator(rows[0]) if len(rows) == 1 else None


async def operators(conn: Queryable) -> list[Operator]:
    rows = await conn.fetch(
        "SELECT operator_id, name, role, created_at, revoked_at FROM tenancy.operators ORDER BY created_at, operator_id")
    return [_operator(r) for r in rows]


async def revoke_operator(conn: Queryable, operator_id: str) -> Operator | None:
    """Revoke an operator (a second revocation changes nothing); None for no such id."""
    row = await conn.fetchrow(
        """UPDATE tenancy.operators SET revoked_at = coalesce(revoked_at, now()) WHERE operator_id = $1
           RETURNING operator_id, name, role, created_at, revoked_at""",
        operator_id,
    )
    return _operator(row) if row else None
