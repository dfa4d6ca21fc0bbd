"""Tenancy (docs/architecture.md, "Security"): tenants, their API keys and the direct
publishers that may act for them, in the `tenancy` schema. Not one service's data: the
provisioning step and the operator commands write it; the HTTP services read it to
authenticate callers, and the status service to know who may submit for a tenant."""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from shared.db.migrate import Schema
from shared.db.pool import Connection, Queryable

SCHEMA = Schema("tenancy", Path(__file__).with_name("migrations"))


# ---- API keys (migrations/0003_api_keys.sql) -------------------------------------------------

REVOKED_CHANNEL = "arcserve_api_key_revoked"  # NOTIFY payload: the key id


@dataclass(frozen=True)
class Caller:
    tenant_id: str
    key_id: str


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    tenant_id: str
    created_at: datetime
    revoked_at: datetime | None


def api_key_hmac(pepper: bytes, key: str) -> bytes:
    return hmac.new(pepper, key.encode(), hashlib.sha256).digest()


def new_api_key() -> tuple[str, str]:
    """(key id, key): `arc_<id>_<secret>`, 256 random bits behind an id anyone may see."""
    key_id = base64.b32encode(secrets.token_bytes(10)).decode().lower()[:10]
    return key_id, f"arc_{key_id}_{secrets.token_urlsafe(32)}"


def _seeded_key_id(digest: bytes) -> str:
    """Keys seeded from ARCSERVE_API_KEYS are any string: their id comes from their HMAC."""
    return f"seed-{digest.hex()[:12]}"


async def caller_for_key(conn: Queryable, pepper: bytes, key: str) -> Caller | None:
    row = await conn.fetchrow(
        "SELECT tenant_id, key_id FROM tenancy.api_keys WHERE key_hmac = $1 AND revoked_at IS NULL",
        api_key_hmac(pepper, key),
    )
    return Caller(row["tenant_id"], row["key_id"]) if row else None


async def create_api_key(conn: Connection, pepper: bytes, tenant_id: str) -> tuple[str, str]:
    """A new key for the tenant (made if new); (key id, key). The key is shown once, by the caller."""
    key_id, key = new_api_key()
    async with conn.transaction():
        await conn.execute("INSERT INTO tenancy.tenants (tenant_id) VALUES ($1) ON CONFLICT DO NOTHING", tenant_id)
        await conn.execute("INSERT INTO tenancy.api_keys (key_id, key_hmac, tenant_id) VALUES ($1, $2, $3)",
                           key_id, api_key_hmac(pepper, key), tenant_id)
    return key_id, key


async def api_keys(conn: Queryable, tenant_id: str | None = None) -> list[ApiKey]:
    rows = await conn.fetch(
        """SELECT key_id, tenant_id, created_at, revoked_at FROM tenancy.api_keys
           WHERE $1::text IS NULL OR tenant_id = $1 ORDER BY tenant_id, created_at, key_id""",
        tenant_id,
    )
    return [ApiKey(r["key_id"], r["tenant_id"], r["created_at"], r["revoked_at"]) for r in rows]


async def revoke_api_key(conn: Connection, key_id: str) -> ApiKey | None:
    """Revoke a key (a second revocation changes nothing); every replica hears of it at commit."""
    async with conn.transaction():
        row = await conn.fetchrow(
            """UPDATE tenancy.api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE key_id = $1
               RETURNING key_id, tenant_id, created_at, revoked_at""",
            key_id,
        )
        if row is not None:
            await conn.execute("SELECT pg_notify($1, $2)", REVOKED_CHANNEL, key_id)
    return ApiKey(row["key_id"], row["tenant_id"], row["created_at"], row["revoked_at"]) if row else None


async def is_known(conn: Queryable, tenant_id: str, *, locking: str) -> bool:
    """Whether the tenant is registered, once the transaction holds the advisory lock named
    `locking`: both in one round trip (the status gate's first statement)."""
    return bool(await conn.fetchval(
        """SELECT EXISTS (SELECT 1 FROM tenancy.tenants WHERE tenant_id = $1)
           FROM pg_advisory_xact_lock(hashtextextended($2, 0))""",
        tenant_id, locking,
    ))


async def seed_api_keys(conn: Connection, keys: dict[str, str], pepper: bytes) -> None:
    """Register `{key: tenant}` (ARCSERVE_API_KEYS, for local runs and tests) idempotently.
    A key never moves to another tenant: that would hand one tenant's data to another."""
    if not keys:
        return
    wanted = {api_key_hmac(pepper, key): tenant for key, tenant in keys.items()}
    async with conn.transaction():
        # In key order: two seeders running at once take their row locks in the same order.
        await conn.executemany(
            "INSERT INTO tenancy.tenants (tenant_id) VALUES ($1) ON CONFLICT DO NOTHING",
            [(tenant,) for tenant in sorted(set(wanted.values()))],
        )
        await conn.executemany(
            """INSERT INTO tenancy.api_keys (key_id, key_hmac, tenant_id) VALUES ($1, $2, $3)
               ON CONFLICT (key_hmac) DO NOTHING""",
            [(_seeded_key_id(digest), digest, tenant) for digest, tenant in sorted(wanted.items())],
        )
        owners = await conn.fetch(
            "SELECT key_hmac, tenant_id FROM tenancy.api_keys WHERE key_hmac = ANY($1::bytea[])", list(wanted)
        )
        moved = sorted({wanted[r["key_hmac"]] for r in owners if r["tenant_id"] != wanted[r["key_hmac"]]})
        if moved:
            raise ValueError(f"ARCSERVE_API_KEYS gives tenant(s) {', '.join(moved)} a key that belongs to another tenant")


# ---- direct publishers (migrations/0002_publishers.sql says what each role may do) ----------


class Role(StrEnum):
    EDGE = "edge"
    RELAY = "relay"
    PUBLISHER = "publisher"


@dataclass(frozen=True)
class Publisher:
    broker_user: str
    role: Role
    tenants: tuple[str, ...]  # those it may act for (an edge: every tenant)


class UnknownTenants(ValueError):
    pass


async def role_of(conn: Queryable, broker_user: str) -> Role | None:
    role = await conn.fetchval("SELECT role FROM tenancy.publishers WHERE broker_user = $1", broker_user)
    return Role(role) if role else None


async def trust(conn: Queryable, broker_user: str, tenant_id: str) -> Role | None:
    """The role in which `broker_user` may act for `tenant_id`, or None if it may not."""
    role = await conn.fetchval(
        """SELECT p.role FROM tenancy.publishers p
           WHERE p.broker_user = $1 AND (p.role = 'edge' OR EXISTS (
               SELECT 1 FROM tenancy.publisher_tenants t WHERE t.broker_user = p.broker_user AND t.tenant_id = $2))""",
        broker_user, tenant_id,
    )
    return Role(role) if role else None


async def relays(conn: Queryable) -> frozenset[str]:
    """The administrators, whose dead-letter replays carry another publisher's message and
    say whose (every consumer may read this; docs/architecture.md, "Security")."""
    rows = await conn.fetch("SELECT broker_user FROM tenancy.publishers WHERE role = 'relay'")
    return frozenset(r["broker_user"] for r in rows)


async def register_publishers(conn: Connection, roles: dict[str, Role]) -> None:
    """The deployment's own publishers (the provisioning step): their roles, made so again,
    and no other edge or relay left from an earlier provisioning."""
    async with conn.transaction():
        await conn.execute("DELETE FROM tenancy.publishers WHERE role IN ('edge', 'relay') AND NOT broker_user = ANY($1::text[])",
                           sorted(roles))
        await conn.executemany(
            """INSERT INTO tenancy.publishers (broker_user, role) VALUES ($1, $2)
               ON CONFLICT (broker_user) DO UPDATE SET role = EXCLUDED.role""",
            sorted(roles.items()),
        )


async def allow(conn: Connection, broker_user: str, tenants: list[str]) -> list[str]:
    """Let `broker_user` act for `tenants`; returns those it may act for now (an error for
    an unknown tenant, and nothing changed)."""
    async with conn.transaction():
        known = {r["tenant_id"] for r in await conn.fetch(
            "SELECT tenant_id FROM tenancy.tenants WHERE tenant_id = ANY($1::text[])", tenants)}
        if unknown := sorted(set(tenants) - known):
            raise UnknownTenants(f"no such tenant: {', '.join(unknown)} (a tenant exists once it has an API key)")
        await conn.execute(
            "INSERT INTO tenancy.publishers (broker_user, role) VALUES ($1, 'publisher') ON CONFLICT DO NOTHING",
            broker_user,
        )
        await conn.executemany(
            "INSERT INTO tenancy.publisher_tenants (broker_user, tenant_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            [(broker_user, tenant) for tenant in sorted(set(tenants))],
        )
        return await _tenants_of(conn, broker_user)


async def revoke(conn: Connection, broker_user: str, tenants: list[str] | None = None) -> list[str]:
    """Take back `tenants` (all of them when None) from a direct publisher; returns the
    tenants it may still act for. The deployment's own publishers are not revoked here."""
    async with conn.transaction():
        if await role_of(conn, broker_user) in (Role.EDGE, Role.RELAY) and tenants is None:
            raise ValueError(f"{broker_user} is one of this deployment's own services or its administrator; "
                             "its role is the provisioning step's")
        if tenants is None:
            await conn.execute("DELETE FROM tenancy.publisher_tenants WHERE broker_user = $1", broker_user)
        else:
            await conn.execute(
                "DELETE FROM tenancy.publisher_tenants WHERE broker_user = $1 AND tenant_id = ANY($2::text[])",
                broker_user, tenants,
            )
        return await _tenants_of(conn, broker_user)


async def _tenants_of(conn: Queryable, broker_user: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT tenant_id FROM tenancy.publisher_tenants WHERE broker_user = $1 ORDER BY tenant_id", broker_user
    )
    return [r["tenant_id"] for r in rows]


async def publishers(conn: Queryable) -> list[Publisher]:
    rows = await conn.fetch(
        """SELECT p.broker_user, p.role,
                  coalesce(array_agg(t.tenant_id ORDER BY t.tenant_id) FILTER (WHERE t.tenant_id IS NOT NULL), '{}') AS tenants
           FROM tenancy.publishers p LEFT JOIN tenancy.publisher_tenants t USING (broker_user)
           GROUP BY p.broker_user, p.role ORDER BY p.broker_user"""
    )
    return [Publisher(r["broker_user"], Role(r["role"]), tuple(r["tenants"])) for r in rows]


# ---- fulfilment results (migrations/0004_fulfillers.sql) -------------------------------------


@dataclass(frozen=True)
class Fulfiller:
    broker_user: str
    own: bool  # the deployment's own console
    allowed_at: datetime


async def may_fulfil(conn: Queryable, broker_user: str) -> bool:
    return bool(await conn.fetchval("SELECT true FROM tenancy.fulfillers WHERE broker_user = $1", broker_user))


async def allow_fulfilment(conn: Queryable, broker_user: str) -> None:
    await conn.execute("INSERT INTO tenancy.fulfillers (broker_user) VALUES ($1) ON CONFLICT DO NOTHING", broker_user)


async def revoke_fulfilment(conn: Connection, broker_user: str) -> bool:
    """Take back fulfilment from another system; whether it had it. The deployment's own
    console is not revoked here."""
    async with conn.transaction():
        own = await conn.fetchval("SELECT own FROM tenancy.fulfillers WHERE broker_user = $1", broker_user)
        if own:
            raise ValueError(f"{broker_user} is this deployment's back-office console; its role is the provisioning step's")
        return await conn.fetchval("DELETE FROM tenancy.fulfillers WHERE broker_user = $1 RETURNING true", broker_user) \
            is not None


async def register_fulfillers(conn: Connection, own: list[str]) -> None:
    """The deployment's own fulfillers (the provisioning step), and no other own one left from
    an earlier provisioning."""
    async with conn.transaction():
        await conn.execute("DELETE FROM tenancy.fulfillers WHERE own AND NOT broker_user = ANY($1::text[])", own)
        await conn.executemany(
            """INSERT INTO tenancy.fulfillers (broker_user, own) VALUES ($1, true)
               ON CONFLICT (broker_user) DO UPDATE SET own = true""",
            [(user,) for user in sorted(own)],
        )


async def fulfillers(conn: Queryable) -> list[Fulfiller]:
    rows = await conn.fetch("SELECT broker_user, own, allowed_at FROM tenancy.fulfillers ORDER BY broker_user")
    return [Fulfiller(r["broker_user"], r["own"], r["allowed_at"]) for r in rows]
