"""Settled means drained: no work left anywhere, not a quiet spell. Work in flight is always
somewhere visible: a message in a queue (ready, or in a consumer's hands until it is acked,
which is after its effects commit), a row in an outbox (until its message is confirmed), or
an application still processing. So a stack has settled when, twice in a row and with no
handler or relay having written anything in between, every outbox is empty, every consumer
and retry queue is empty, and no application is processing. Past the deadline it fails,
saying what was still there."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import aio_pika
import asyncpg

from shared.messaging import nodes
from shared.messaging.topology import Topology

DEFAULT_DEADLINE_S = 60.0
Rabbitmqctl = Callable[..., Awaitable[str]]


def work_queues(topology: Topology) -> list[str]:
    """The queues work waits in: each consumer's queue and its retry queues (dead letters
    have left the flow)."""
    from services.provisioning.boundaries import queue_specs

    return [name for spec in queue_specs() for name in topology.queues_of(spec) if not name.endswith(".dead-letter")]


@dataclass(frozen=True)
class DatabaseSnapshot:
    outbox_rows: int  # messages not yet published
    outbox_written: int  # every outbox row ever written (sequences): moves when a handler emits
    inbox_rows: int  # every message a handler took effect on: moves when a handler runs
    processing: int  # applications neither completed nor rejected

    @property
    def idle(self) -> bool:
        return self.outbox_rows == 0 and self.processing == 0


async def database_snapshot(database_url: str) -> DatabaseSnapshot:
    conn = await asyncpg.connect(database_url)
    try:
        tables = await conn.fetch(
            """SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) AS name, table_name AS kind
               FROM information_schema.tables WHERE table_name IN ('outbox', 'inbox')"""
        )
        outbox_rows = outbox_written = inbox_rows = 0
        for table in tables:
            if table["kind"] == "outbox":
                outbox_rows += await conn.fetchval(f"SELECT count(*) FROM {table['name']}")
                sequence = await conn.fetchval("SELECT pg_get_serial_sequence($1, 'id')", table["name"])
                outbox_written += await conn.fetchval(f"SELECT last_value FROM {sequence}") if sequence else 0
            else:
                inbox_rows += await conn.fetchval(f"SELECT count(*) FROM {table['name']}")
        processing = await conn.fetchval(
            "SELECT count(*) FROM status.applications WHERE status = 'processing'"
        ) if await conn.fetchval("SELECT to_regclass('status.applications') IS NOT NULL") else 0
    finally:
        await conn.close()
    return DatabaseSnapshot(outbox_rows, outbox_written, inbox_rows, processing)


async def queue_depths(rabbitmqctl: Rabbitmqctl, queues: Iterable[str]) -> dict[str, int]:
    """Messages per queue, ready plus unacknowledged; a queue that is not there is an error
    (a wrong name would read as empty, and settled)."""
    wanted = set(queues)
    out = await rabbitmqctl("list_queues", "-q", "--no-table-headers", "name", "messages")
    depths: dict[str, int] = {}
    for line in out.splitlines():
        name, _, messages = line.partition("\t")
        if name in wanted:
            depths[name] = int(messages)
    missing = sorted(wanted - set(depths))
    assert not missing, f"no such queues: {missing}"
    return depths


async def _ready_counts(channel: aio_pika.abc.AbstractChannel, queues: list[str]) -> int:
    """Ready messages in `queues`, by passive declares: no process to start, but blind to the
    messages in a consumer's hands, so it only says when the full look below is worth taking."""
    total = 0
    for name in queues:
        declared = await channel.declare_queue(name, passive=True)
        total += declared.declaration_result.message_count or 0
    return total


async def _looks_idle(amqp_url: str | None, database_url: str, queues: list[str], until: float) -> None:
    """Wait (polling every 0.05 s, until `until` at most) for what cheap looks can see to be
    idle: no outbox row, no application processing, no ready message. Only a gate: `drain`
    decides by its own look, whatever this found."""
    if amqp_url is None:
        return
    try:
        connection = await nodes.connect(amqp_url)
    except Exception:  # noqa: BLE001 - the broker is away: the full look will say what it sees
        return
    try:
        channel = await connection.channel()
        while time.monotonic() < until:
            if (await database_snapshot(database_url)).idle and not await _ready_counts(channel, queues):
                return
            await asyncio.sleep(0.05)
    except Exception:  # noqa: BLE001 - a queue missing or the link cut: the full look reports it
        return
    finally:
        await connection.close()


async def drain(
    rabbitmqctl: Rabbitmqctl,
    database_url: str,
    queues: Iterable[str],
    *,
    deadline_s: float = DEFAULT_DEADLINE_S,
    what: str = "the stack",
    amqp_url: str | None = None,
) -> None:
    """Wait until the stack has drained (see the module's docstring), or fail loudly.
    `amqp_url` (the administrator's): wait for cheap looks to find it idle before each full
    look, whose two `rabbitmqctl` calls take a second or more each."""
    queues = list(queues)
    deadline = time.monotonic() + deadline_s
    while True:
        await _looks_idle(amqp_url, database_url, queues, until=deadline)
        before = await database_snapshot(database_url)
        first = await queue_depths(rabbitmqctl, queues)
        second = await queue_depths(rabbitmqctl, queues)
        after = await database_snapshot(database_url)
        busy = {name: n for name, n in {**first, **second}.items() if n}
        if before == after and after.idle and not any(first.values()) and not any(second.values()):
            return
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{what} did not drain in {deadline_s:g}s: {after.outbox_rows} outbox rows, "
                f"{after.processing} applications processing, queues holding messages: {busy or 'none'}"
            )
        await asyncio.sleep(0.2)
