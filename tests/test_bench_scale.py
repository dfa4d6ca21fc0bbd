"""The benchmark's preloaded contracts (tests/bench/scale.py) on the real database: each is what
a completed `new` leaves behind, as the status service reads it, and a preload tops the
database up to the size asked for. The benchmark's figures are its own to print, never a test's."""
from __future__ import annotations

import hashlib
import uuid

import asyncpg

from services.status.repository import PostgresRepository
from tests.bench import scale
from tests.support.stack import Stack


def _uuid_of(text: str) -> uuid.UUID:
    return uuid.UUID(hashlib.md5(text.encode()).hexdigest())  # noqa: S324 - as Postgres' md5(...)::uuid


async def test_a_preload_tops_the_database_up_with_contracts_as_a_completed_new_leaves_them(stack: Stack) -> None:
    url = stack.settings.database_url
    before = await scale.contracts(url)
    await scale.preload(url, before + 30)
    await scale.preload(url, before + 30)  # already there: nothing more
    await scale.preload(url, before + 45)
    assert await scale.contracts(url) == before + 45

    conn = await asyncpg.connect(url)
    try:
        tenant = await conn.fetchval("SELECT max(tenant_id) FROM tenancy.tenants WHERE tenant_id LIKE 'scale-%'")
        i = tenant.removeprefix("scale-")
        detail = await PostgresRepository(conn).snapshot(_uuid_of(f"c{i}"), tenant, 100)
        rows = {table: await conn.fetchval(f"SELECT count(*) FROM {table} WHERE {column} = $1", value)
                for table, column, value in [
                    ("order_id.orders", "contract_id", _uuid_of(f"c{i}")),
                    ("license_issuer.keys", "contract_id", _uuid_of(f"c{i}")),
                    ("intake.idempotency_keys", "tenant_id", tenant),
                    ("status.inbox", "consumer", "arcserve.status.submissions"),
                ]}
    finally:
        await conn.close()
    assert detail is not None
    contract = detail.contract
    assert contract.status.value == "active" and contract.order_id is not None
    assert [lic.status.value for lic in contract.licenses.values()] == ["active"]
    assert [(a.kind.value, a.status.value) for a in detail.history] == [("new", "completed")]
    assert rows["order_id.orders"] == rows["license_issuer.keys"] == rows["intake.idempotency_keys"] == 1
    assert rows["status.inbox"] >= 45
