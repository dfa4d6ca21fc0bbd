"""Tenancy (docs/architecture.md, "Security"): tenants and their API keys, in the `tenancy` schema. Not one
service's data: the provisioning step owns and writes it; the HTTP services read it to
authenticate callers, and the status service to know the tenant of an AMQP submission."""
from __future__ import annotations

import hashlib
from pathlib import Path

from shared.db.migrate import Schema
from shared.db.pool import Connection, Queryable

SCHEMA = Schema("tenancy", Path(__file__).with_name("migrations"))


def hash_api_key(key: str) -> bytes:
    # Keys are long random strings, so a fast hash is enough: nothing to brute-force.
    return hashlib.sha256(key.encode()).digest()


async def tenant_for_key(conn: Queryable, key: str) -> str | None:
    return await conn.fetchval("SELECT tenant_id FROM tenancy.api_keys WHERE key_hash = $1", hash_api_key(key))


async def is_known(conn: Queryable, tenant_id: str) -> bool:
    return bool(await conn.fetchval("SELECT true FROM tenancy.tenants WHERE tenant_id = $1", tenant_id))


async def seed_api_keys(conn: Connection, keys: dict[str, str]) -> None:
    """Register `{key: tenant}` (ARCSERVE_API_KEYS) idempotently. A key never moves to
    another tenant: that would hand one tenant's data to another."""
    if not keys:
        return
    wanted = {hash_api_key(key): tenant for key, tenant in keys.items()}
    async with conn.transaction():
        # In key order: two seeders running at once take their row locks in the same order.
        await conn.executemany(
            "INSERT INTO tenancy.tenants (tenant_id) VALUES ($1) ON CONFLICT DO NOTHING",
            [(tenant,) for tenant in sorted(set(wanted.values()))],
        )
        await conn.executemany(
            "INSERT INTO tenancy.api_keys (key_hash, tenant_id) VALUES ($1, $2) ON CONFLICT (key_hash) DO NOTHING",
            sorted(wanted.items()),
        )
        owners = await conn.fetch(
            "SELECT key_hash, tenant_id FROM tenancy.api_keys WHERE key_hash = ANY($1::bytea[])", list(wanted)
        )
        moved = sorted({wanted[r["key_hash"]] for r in owners if r["tenant_id"] != wanted[r["key_hash"]]})
        if moved:
            raise ValueError(f"ARCSERVE_API_KEYS gives tenant(s) {', '.join(moved)} a key that belongs to another tenant")
