"""Versioned schema migrations, one schema at a time (generic: each owner keeps its own
`migrations/NNNN_name.sql`, applied in order, recorded in `<schema>.schema_migrations`).

Migrations run only in the one-shot provisioning step, under the owner role; a service only
checks, at start, that its schemas are at the versions it was built with (`missing`).
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from shared.db.pool import Connection, Queryable

log = logging.getLogger(__name__)
MESSAGING_MIGRATIONS = Path(__file__).resolve().parents[1] / "messaging" / "migrations"


@dataclass(frozen=True)
class Schema:
    """A database schema and its migrations. `messaging`: it also holds its service's inbox
    and outbox (shared/messaging/migrations, applied with the schema's name)."""

    name: str
    migrations: Path
    messaging: bool = False

    def steps(self) -> list[tuple[str, str]]:
        """(version, SQL) in the order they apply."""
        steps = []
        if self.messaging:
            for path in sorted(MESSAGING_MIGRATIONS.glob("*.sql")):
                sql = path.read_text(encoding="utf-8").replace("{schema}", _identifier(self.name))
                steps.append((f"messaging-{path.stem}", sql))
        steps += [(path.stem, path.read_text(encoding="utf-8")) for path in sorted(self.migrations.glob("*.sql"))]
        return steps

    @property
    def versions(self) -> set[str]:
        return {version for version, _ in self.steps()}


def _identifier(name: str) -> str:
    if not name.replace("_", "").isalnum() or not name[0].isalpha():
        raise ValueError(f"not a plain schema name: {name!r}")
    return name


def _lock_key(schema: Schema) -> int:
    return int.from_bytes(hashlib.sha256(f"migrate:{schema.name}".encode()).digest()[:8], "big", signed=True)


async def migrate(conn: Connection, schema: Schema) -> list[str]:
    """Apply what is pending of `schema` (as the connection's current role, which will own
    what it creates); return the versions applied. Safe to run concurrently."""
    name = _identifier(schema.name)
    applied: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _lock_key(schema))
    try:
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {name}")
        await conn.execute(
            f"""CREATE TABLE IF NOT EXISTS {name}.schema_migrations (
                    version    text PRIMARY KEY,
                    applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {r["version"] for r in await conn.fetch(f"SELECT version FROM {name}.schema_migrations")}
        for version, sql in schema.steps():
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute(f"INSERT INTO {name}.schema_migrations (version) VALUES ($1)", version)
            applied.append(version)
            log.info("applied migration %s.%s", name, version)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _lock_key(schema))
    return applied


async def missing(conn: Queryable, schema: Schema) -> set[str]:
    """The migrations of `schema` not applied yet (all of them when the schema is not there)."""
    name = _identifier(schema.name)
    if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{name}.schema_migrations"):
        return schema.versions
    done = {r["version"] for r in await conn.fetch(f"SELECT version FROM {name}.schema_migrations")}
    return schema.versions - done
