"""Transactional outbox (docs/architecture.md, "Reliability"): events are written in the transaction of the state
change that causes them, and one relay loop per service publishes them with confirms.
Each service has its own outbox table, `<schema>.outbox`, in its own schema.

Several relays (one per replica) can run at once: each claims a batch with
`FOR UPDATE SKIP LOCKED`, publishes it, and deletes it in the same transaction. A crash
between confirm and commit republishes the batch; consumers' inboxes absorb that.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import asyncpg

from shared import metrics
from shared.backoff import Backoff
from shared.contracts.envelope import CloudEvent
from shared.db.pool import Connection, is_transient
from shared.messaging.broker import Broker
from shared.observability.tracing import continued

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outgoing:
    exchange: str
    routing_key: str
    event: CloudEvent
    traceparent: str | None = None  # of the work that wrote it: its trace goes on from there


@dataclass(frozen=True)
class Outbox:
    """`<schema>.outbox`, and the NOTIFY channel that wakes its relay at once instead of at
    the next poll."""

    schema: str

    @property
    def table(self) -> str:
        return f"{self.schema}.outbox"

    @property
    def channel(self) -> str:
        return f"{self.schema}_outbox"

    async def enqueue(self, conn: Connection, messages: list[Outgoing]) -> None:
        if not messages:
            return
        # One statement, one round trip: the rows in the order given (the relay's), and the
        # wake-up, which Postgres delivers only once the transaction commits.
        await conn.execute(
            f"""WITH written AS (
                    INSERT INTO {self.table} (exchange, routing_key, message_id, body, traceparent)
                    SELECT e, r, m, b, t FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
                        WITH ORDINALITY AS given (e, r, m, b, t, n) ORDER BY n)
                SELECT pg_notify($6, '')""",
            [m.exchange for m in messages], [m.routing_key for m in messages], [m.event.id for m in messages],
            [m.event.to_json().decode() for m in messages], [m.traceparent for m in messages], self.channel,
        )


class OutboxRelay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        broker: Broker,
        outbox: Outbox,
        *,
        database_url: str,
        batch_size: int = 200,
        poll_interval_s: float = 1.0,
        service: str = "",  # its metrics label (default: the outbox's schema)
    ):
        self.pool = pool
        self.database_url = database_url  # the LISTEN connection lives outside the pool
        self.broker = broker
        self.outbox = outbox
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self.service = service or outbox.schema
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._listener: asyncpg.Connection | None = None

    async def run(self) -> None:
        """Publish until stopped; on stop, publish what is pending once more, then return."""
        backoff = Backoff()
        while True:
            try:
                await self._ensure_listener()
                # A short batch emptied the outbox as it was then: what was written since
                # has notified, and the wake is already set for it. One query fewer a wake.
                while await self.publish_batch() == self.batch_size:
                    pass
                backoff.reset()
            except Exception as exc:
                delay = backoff.next()
                if not is_transient(exc) and self.broker.is_ready:
                    log.exception("outbox relay failed")
                else:
                    log.warning("outbox relay paused (%r); retrying in %.1fs", exc, delay)
                await self._drop_listener()
                if self._stopping.is_set():
                    return  # what is left stays in the outbox for the next relay
                await self._sleep(delay)
                continue
            if self._stopping.is_set():
                return
            await self._sleep(self.poll_interval_s)

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def publish_batch(self) -> int:
        """Claim, publish and delete one batch; return how many were published."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                f"""SELECT id, exchange, routing_key, message_id, body, traceparent FROM {self.outbox.table}
                    ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED""",
                self.batch_size,
            )
            if not rows:
                return 0
            # Confirms are pipelined on the channel: publish the batch concurrently.
            await asyncio.gather(*(self._publish(row) for row in rows))
            await conn.execute(f"DELETE FROM {self.outbox.table} WHERE id = ANY($1::bigint[])", [r["id"] for r in rows])
        metrics.OUTBOX_PUBLISHED.labels(self.service).inc(len(rows))
        return len(rows)

    async def _publish(self, row: asyncpg.Record) -> None:
        with continued(row["traceparent"]):  # each in its own task: the traces never mix
            await self.broker.publish(row["exchange"], row["routing_key"], row["body"].encode(),
                                      message_id=row["message_id"])

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        except TimeoutError:
            pass
        self._wake.clear()

    async def _ensure_listener(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            return
        self._listener = None
        conn = await asyncpg.connect(self.database_url)
        await conn.add_listener(self.outbox.channel, self._on_notify)
        self._listener = conn

    async def _drop_listener(self) -> None:
        if self._listener is not None:
            conn, self._listener = self._listener, None
            try:
                await asyncio.wait_for(conn.close(), timeout=1)
            except Exception:
                conn.terminate()

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, _payload: object) -> None:
        self._wake.set()

    async def close(self) -> None:
        await self._drop_listener()
