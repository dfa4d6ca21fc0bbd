"""Versioned schema migrations (`migrations/NNNN_name.sql`), applied in order at start-up.

Every service calls `migrate()`; an advisory lock makes concurrent starts safe.
Run by hand: `python -m shared.db.migrate`.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
from pathlib import Path

import asyncpg

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).with_name("migrations")
_LOCK_KEY = 0x61726373  # "arcs": one advisory lock for all migrators


async def migrate(conn: asyncpg.Connection) -> list[str]:
    """Apply pending migrations; return the versions applied."""
    applied: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS public.schema_migrations (
                   version    text PRIMARY KEY,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM public.schema_migrations")}
        for path in sorted(MIGRATIONS.glob("*.sql")):
            version = path.stem
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(path.read_text(encoding="utf-8"))
                await conn.execute("INSERT INTO public.schema_migrations (version) VALUES ($1)", version)
            applied.append(version)
            log.info("applied migration %s", version)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    return applied


def hash_api_key(key: str) -> bytes:
    # Keys are long random strings, so a fast hash is enough: nothing to brute-force.
    return hashlib.sha256(key.encode()).digest()


async def seed_api_keys(conn: asyncpg.Connection, keys: dict[str, str]) -> None:
    """Register `{key: tenant}` (ARCSERVE_API_KEYS) idempotently."""
    if not keys:
        return
    async with conn.transaction():
        await conn.executemany(
            "INSERT INTO tenancy.tenants (tenant_id) VALUES ($1) ON CONFLICT DO NOTHING",
            [(tenant,) for tenant in set(keys.values())],
        )
        await conn.executemany(
            "INSERT INTO tenancy.api_keys (key_hash, tenant_id) VALUES ($1, $2) ON CONFLICT (key_hash) DO NOTHING",
            [(hash_api_key(key), tenant) for key, tenant in keys.items()],
        )
        # A key never moves to another tenant: that would hand one tenant's data to another.
        owners = await conn.fetch(
            "SELECT key_hash, tenant_id FROM tenancy.api_keys WHERE key_hash = ANY($1::bytea[])",
            [hash_api_key(key) for key in keys],
        )
        wanted = {hash_api_key(key): tenant for key, tenant in keys.items()}
        moved = sorted({wanted[r["key_hash"]] for r in owners if r["tenant_id"] != wanted[r["key_hash"]]})
        if moved:
            raise ValueError(f"ARCSERVE_API_KEYS gives tenant(s) {', '.join(moved)} a key that belongs to another tenant")


async def _main() -> None:
    from shared.config import Settings

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env()
    conn = await asyncpg.connect(settings.database_url)
    try:
        applied = await migrate(conn)
        await seed_api_keys(conn, settings.api_keys)
        print(f"migrations applied: {', '.join(applied) or 'none (up to date)'}")
    finally:
        await conn.close()


if __name__ == "__main__":
    asyncio.run(_main())
