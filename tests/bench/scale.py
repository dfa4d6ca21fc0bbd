"""How cost grows: throughput and latency with many contracts already in the database, and
memory while a backlog of queued submissions drains.

Contracts are preloaded in bulk by SQL, each as the system would have left a completed `new`:
a tenant, an active contract with its order ID and one key, its application, the inbox rows
of the messages that made it in every service, the issuer's sealed key, the order and the
intake's Idempotency-Key row. So every table and index the hot path touches is as large as it
would be after that many applications, not only the contracts.
"""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import aio_pika
import asyncpg

from shared.contracts.envelope import CONTENT_TYPE
from tests.bench import e2e, resources
from tests.support.stack import new_application, submission

PUBLISH_WINDOW = 500  # unconfirmed publishes in flight while the backlog is queued
RSS_SAMPLE_S = 0.25

# One completed `new` per i in [$1, $2): the rows it leaves behind, service by service.
_PRELOAD = [
    "INSERT INTO tenancy.tenants (tenant_id) SELECT 'scale-' || i FROM generate_series($1::int, $2::int - 1) i",
    """INSERT INTO status.contracts (contract_id, tenant_id, product_code, status, contact_email, contact_company_name,
           arcserve_order_id, order_id_status, created_at, updated_at)
       SELECT md5('c' || i)::uuid, 'scale-' || i, 'arcserve-udp-10', 'active', 'ops@example.co.jp', 'Example K.K.',
           'SCALE-' || i, 'active', now(), now() FROM generate_series($1::int, $2::int - 1) i""",
    """INSERT INTO status.licenses (license_id, contract_id, position, application_id, usage, license_type, billable,
           status, sealed_key, issued_at, charge_start_at)
       SELECT md5('l' || i)::uuid, md5('c' || i)::uuid, 0, md5('a' || i)::uuid, 'virtual_server', 'per_server', true,
           'active', 'sealed', now(), now() FROM generate_series($1::int, $2::int - 1) i""",
    """INSERT INTO status.applications (application_id, tenant_id, kind, contract_id, status, license_ids,
           submitted_at, expected_completion_at, completed_at, submitted_by_kind, submitted_by_id)
       SELECT md5('a' || i)::uuid, 'scale-' || i, 'new', md5('c' || i)::uuid, 'completed', ARRAY[md5('l' || i)::uuid],
           now(), now(), now(), 'api_key', 'scale' FROM generate_series($1::int, $2::int - 1) i""",
    """INSERT INTO status.inbox (message_id, consumer)
       SELECT 'scale-' || i || '/' || md5('a' || i)::uuid, 'arcserve.status.submissions'
           FROM generate_series($1::int, $2::int - 1) i
       UNION ALL SELECT md5(k || i)::uuid::text, 'arcserve.status.results'
           FROM generate_series($1::int, $2::int - 1) i, unnest(ARRAY['lk', 'oi']) k""",
    """INSERT INTO license_issuer.inbox (message_id, consumer)
       SELECT md5('acc' || i)::uuid::text, 'arcserve.license-issuer' FROM generate_series($1::int, $2::int - 1) i""",
    """INSERT INTO license_issuer.keys (license_id, contract_id, application_id, sealed_key, issued_at)
       SELECT md5('l' || i)::uuid, md5('c' || i)::uuid, md5('a' || i)::uuid, 'sealed', now()
           FROM generate_series($1::int, $2::int - 1) i""",
    """INSERT INTO order_id.inbox (message_id, consumer)
       SELECT md5('acc' || i)::uuid::text, 'arcserve.order-id' FROM generate_series($1::int, $2::int - 1) i""",
    """INSERT INTO order_id.orders (contract_id, application_id, value, issued_at)
       SELECT md5('c' || i)::uuid, md5('a' || i)::uuid, 'SCALE-' || i, now() FROM generate_series($1::int, $2::int - 1) i""",
    """INSERT INTO intake.idempotency_keys (tenant_id, application_id, body_sha256)
       SELECT 'scale-' || i, md5('a' || i)::uuid, sha256(i::text::bytea) FROM generate_series($1::int, $2::int - 1) i""",
]
_CHUNK = 100_000  # rows per statement: one transaction each, so the WAL and locks stay small


async def contracts(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM status.contracts"))
    finally:
        await conn.close()


async def preload(database_url: str, upto: int) -> float:
    """Add preloaded contracts until the database (a deployment's, with the administrator's
    credentials) holds `upto`; the seconds it took."""
    began = time.perf_counter()
    conn = await asyncpg.connect(database_url)
    try:
        have = int(await conn.fetchval("SELECT count(*) FROM status.contracts"))
        first = int(await conn.fetchval(
            "SELECT coalesce(max(substr(tenant_id, 7)::int) + 1, 0) FROM tenancy.tenants WHERE tenant_id LIKE 'scale-%'"))
        for lo in range(first, first + max(0, upto - have), _CHUNK):
            hi = min(lo + _CHUNK, first + upto - have)
            async with conn.transaction():
                for statement in _PRELOAD:
                    await conn.execute(statement, lo, hi)
        # Fresh statistics, as autovacuum would have gathered over the months this took.
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    return time.perf_counter() - began


async def at_sizes(b: e2e.Bench, sizes: list[int], seconds: float) -> list[dict[str, Any]]:
    """At each size in turn: completed per second at saturation and p99 at 100/s offered."""
    found = []
    for size in sizes:
        loaded_s = await preload(b.system.database_url, size)
        saturation = await e2e.saturation(b, 64, seconds)
        latency = await e2e.latency_at(b, 100.0, seconds)
        found.append({"contracts": size, "preload_s": loaded_s, "completed_per_s": saturation["completed_per_s"],
                      "drained_per_s": saturation["drained_per_s"], "p99_ms_at_100_per_s": latency["p99_ms"],
                      "p50_ms_at_100_per_s": latency["p50_ms"]})
    return found


async def _allow_backlog_tenants(b: e2e.Bench, count: int, publisher: str) -> list[str]:
    tenants = [f"backlog-{uuid.uuid4().hex[:12]}" for _ in range(count)]
    conn = await asyncpg.connect(b.system.database_url)
    try:
        async with conn.transaction():
            await conn.execute("INSERT INTO tenancy.tenants (tenant_id) SELECT unnest($1::text[])", tenants)
            await conn.execute("""INSERT INTO tenancy.publisher_tenants (broker_user, tenant_id)
                                  SELECT $1, unnest($2::text[])""", publisher, tenants)
    finally:
        await conn.close()
    return tenants


async def backlog(b: e2e.Bench, count: int, seconds: float) -> dict[str, Any]:
    """`count` `new` submissions queued while the status service is stopped, then drained by
    it for `seconds`: its rate, and each service's most resident memory meanwhile (bounded by
    the prefetch, not by the backlog). What is left is purged."""
    user = b.system.amqp_url.split("//", 1)[1].split(":", 1)[0]
    tenants = await _allow_backlog_tenants(b, count, user)
    await b.system.terminate("status")
    queue = f"{b.system.prefix}arcserve.status.submissions"
    ids = [str(uuid.uuid4()) for _ in tenants]
    began = time.perf_counter()
    connection = await aio_pika.connect(b.system.amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(f"{b.system.prefix}arcserve.applications", ensure=False)
        for lo in range(0, count, PUBLISH_WINDOW):
            await asyncio.gather(*(exchange.publish(aio_pika.Message(
                json.dumps(submission(tenant, new_application(), application_id=i, event_id=i)).encode(),
                content_type=CONTENT_TYPE, message_id=i, user_id=user, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                "new") for tenant, i in zip(tenants[lo:lo + PUBLISH_WINDOW], ids[lo:lo + PUBLISH_WINDOW], strict=True)))
    queued_s = time.perf_counter() - began
    await b.system.start("status")
    await b.system.wait_ready()
    peak: dict[str, float] = {}
    drain_began = time.perf_counter()
    while time.perf_counter() - drain_began < seconds:
        for name, pid in b.processes().items():
            peak[name] = max(peak.get(name, 0.0), resources.rss_mb(pid))
        await asyncio.sleep(RSS_SAMPLE_S)
    drained = sum(i in b.completions.ended for i in ids)
    rate = drained / (time.perf_counter() - drain_began)
    await b.system.servers.rabbitmqctl("purge_queue", queue)
    await b.system.drained()
    return {"queued": count, "queue_s": queued_s, "drained_in_window": drained, "drained_per_s": rate,
            "peak_rss_mb": peak}
