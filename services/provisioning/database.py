"""The database side: an owner role that owns every schema and runs the migrations, and one
login role per service with grants on its own schema only, plus SELECT on the schemas it
reads (tenancy, for the services that authenticate tenants), and INSERT on audit.records for
those that audit (the same ones: whom they throttled for wrong keys). Runs with an administrator's
connection to the deployment's database; safe to run again (new migrations, new grants,
new passwords)."""
from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import asyncpg

from services.provisioning.deployment import Deployment, Passwords
from shared import audit, tenancy
from shared.boundary import Boundary
from shared.db.migrate import Schema, migrate
from shared.db.pool import Connection


async def ensure_database(url: str) -> None:
    """The deployment's database, created if it is missing (with the administrator's
    rights, through the cluster's `postgres` database)."""
    parts = urlsplit(url)
    try:
        conn = await asyncpg.connect(url)
    except asyncpg.InvalidCatalogNameError:
        admin = await asyncpg.connect(urlunsplit(parts._replace(path="/postgres")))
        try:
            await admin.execute(f"CREATE DATABASE {_quoted(parts.path.lstrip('/'))}")
        finally:
            await admin.close()
        return
    await conn.close()


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


async def _ensure_role(conn: Connection, role: str, password: str | None) -> None:
    exists = await conn.fetchval("SELECT true FROM pg_roles WHERE rolname = $1", role)
    login = "LOGIN PASSWORD " + _literal(password) if password is not None else "NOLOGIN"
    await conn.execute(f"{'ALTER' if exists else 'CREATE'} ROLE {_quoted(role)} WITH {login}")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# Who is who on the broker (shared/tenancy): who may publish submissions (and the relays among
# them), and who fulfilment results. Every consumer reads them, and nothing else of tenancy.
TRUST_TABLES = ("tenancy.publishers", "tenancy.fulfillers")
OPERATORS_TABLE = "tenancy.operators"


async def provision(conn: Connection, deployment: Deployment, boundaries: tuple[Boundary, ...],
                    platform: tuple[Schema, ...], passwords: Passwords) -> list[str]:
    """Roles, migrations, grants; returns the migrations applied."""
    if await conn.fetchval("SELECT to_regclass('public.schema_migrations') IS NOT NULL"):
        raise ValueError(
            "this database holds the layout from before each service had its own schema "
            "(public.schema_migrations); give the deployment a new database, or drop this one "
            "(for `make run`: dropdb arcserve)"
        )
    database = await conn.fetchval("SELECT current_database()")
    owner = _quoted(deployment.owner)
    await _ensure_role(conn, deployment.owner, None)
    await conn.execute(f"GRANT CREATE, CONNECT ON DATABASE {_quoted(database)} TO {owner}")
    for boundary in boundaries:
        await _ensure_role(conn, deployment.role(boundary), passwords[boundary.name])
        await conn.execute(f"GRANT CONNECT ON DATABASE {_quoted(database)} TO {_quoted(deployment.role(boundary))}")

    applied: list[str] = []
    schemas = [*platform, *(b.schema for b in boundaries if b.schema is not None)]
    await conn.execute(f"SET ROLE {owner}")  # what the migrations create belongs to the owner
    try:
        for schema in schemas:
            applied += [f"{schema.name}.{version}" for version in await migrate(conn, schema)]
    finally:
        await conn.execute("RESET ROLE")

    for boundary in boundaries:
        role = _quoted(deployment.role(boundary))
        if boundary.schema is not None:
            name = boundary.schema.name
            await conn.execute(f"GRANT USAGE ON SCHEMA {name} TO {role}")
            await conn.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {name} TO {role}")
            await conn.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {name} TO {role}")
            # Its migrations are the owner's to record; the service only reads them.
            await conn.execute(f"REVOKE INSERT, UPDATE, DELETE ON {name}.schema_migrations FROM {role}")
        for schema in boundary.reads:
            await conn.execute(f"GRANT USAGE ON SCHEMA {schema.name} TO {role}")
            await conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema.name} TO {role}")
        if boundary.subscribers:  # a consumer knows the relays, whose replays name another publisher
            await conn.execute(f"GRANT USAGE ON SCHEMA {tenancy.SCHEMA.name} TO {role}")
            await conn.execute(f"GRANT SELECT ON {', '.join(TRUST_TABLES)} TO {role}")
        if boundary.operators:  # the console's operators, and nothing else of tenancy
            await conn.execute(f"GRANT USAGE ON SCHEMA {tenancy.SCHEMA.name} TO {role}")
            await conn.execute(f"GRANT SELECT ON {OPERATORS_TABLE} TO {role}")
        if boundary.audits:  # appends records; reads, changes and deletes none
            await conn.execute(f"GRANT USAGE ON SCHEMA {audit.SCHEMA.name} TO {role}")
            await conn.execute(f"GRANT INSERT ON {audit.SCHEMA.name}.records TO {role}")
    return applied


async def drop_roles(conn: Connection, deployment: Deployment, boundaries: tuple[Boundary, ...]) -> None:
    """Remove the deployment's roles (its databases must be gone first, or hold nothing of
    theirs)."""
    for role in [deployment.role(b) for b in boundaries] + [deployment.owner]:
        if await conn.fetchval("SELECT true FROM pg_roles WHERE rolname = $1", role):
            await conn.execute(f"DROP ROLE {_quoted(role)}")
