"""Transactional outbox (docs/architecture.md, "Reliability"): events are written in the transaction of the state
change that causes them. Each service has its own outbox table, `<schema>.outbox`, in its own
schema.

Delivery has two paths. The unit of work hands what it wrote to `OutboxRelay.deliver` the
moment it has committed: published with confirms in the background (the consumer acks its
message once the rows are committed, and goes on to the next without waiting for the
broker; at most `in_flight` publishes wait at once), and its rows then deleted with every other
row confirmed meanwhile: at once after a quiet spell, else one statement for them all every
`delete_interval_s` (a delete per message would be a transaction per message). What that
could not publish (the broker away, the process killed in between) stays in the table, and
the relay's poll publishes it once it is older than a grace period, so the two paths never
race for fresh rows; the poll skips rows this relay saw confirmed and has yet to delete. Several relays (one per replica)
can poll at once: each claims a batch with `FOR UPDATE SKIP LOCKED`, publishes it, and
deletes it in the same transaction. A crash between confirm and delete publishes a message
again; consumers' inboxes absorb that.

Why keep the row at all, rather than publish after commit with nothing written: a crash
between commit and publish would lose the message, as its cause is acked or done, and the
inbox makes the redelivery of the cause a no-op that publishes nothing.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

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
class Pending:
    """An outbox row: what goes out, as it was written."""

    id: int
    exchange: str
    routing_key: str
    message_id: str
    body: str  # the CloudEvent, exactly as it is sent
    traceparent: str | None


@dataclass(frozen=True)
class Outbox:
    schema: str

    @property
    def table(self) -> str:
        return f"{self.schema}.outbox"

    async def enqueue(self, conn: Connection, messages: list[Outgoing]) -> list[Pending]:
        """Write `messages` in the caller's transaction, in their order; the rows written."""
        if not messages:
            return []
        bodies = [m.event.to_json().decode() for m in messages]
        # One statement, one round trip, the rows in the order given (the order they go out in).
        rows = await conn.fetch(
            f"""INSERT INTO {self.table} (exchange, routing_key, message_id, body, traceparent)
                SELECT e, r, m, b, t FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
                    WITH ORDINALITY AS given (e, r, m, b, t, n) ORDER BY n
                RETURNING id""",
            [m.exchange for m in messages], [m.routing_key for m in messages], [m.event.id for m in messages],
            bodies, [m.traceparent for m in messages],
        )
        ids = sorted(row["id"] for row in rows)  # drawn from the sequence in the order inserted
        return [Pending(i, m.exchange, m.routing_key, m.event.id, body, m.traceparent)
                for i, m, body in zip(ids, messages, bodies, strict=True)]


class OutboxRelay:
    """Delivers what units of work committed (`deliver`), and polls for what that left."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        broker: Broker,
        outbox: Outbox,
        *,
        batch_size: int = 200,
        poll_interval_s: float = 1.0,
        grace_s: float = 5.0,  # how old a row must be for the poll to take it from `deliver`
        delete_interval_s: float = 0.2,  # how often rows `deliver` published are deleted, together
        in_flight: int = 1000,  # the most messages `deliver` publishes at once; past it, it waits
        service: str = "",  # its metrics label (default: the outbox's schema)
    ):
        self.pool = pool
        self.broker = broker
        self.outbox = outbox
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self.grace_s = grace_s
        self.delete_interval_s = delete_interval_s
        self._confirmed: set[int] = set()  # published by `deliver`, not yet deleted
        self._to_delete = asyncio.Event()
        self.in_flight = in_flight
        self._delivering: dict[asyncio.Task[None], int] = {}  # publishing now: how many messages each
        self.service = service or outbox.schema
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()

    async def deliver(self, written: list[Pending]) -> None:
        """Publish rows whose transaction has just committed, in the background (waiting only
        while `in_flight` messages are being published already); `run` deletes them soon after,
        with the rest confirmed meanwhile. Nothing here raises: what fails stays in the outbox
        for the poll."""
        if not written:
            return
        while self._delivering and sum(self._delivering.values()) + len(written) > self.in_flight:
            await asyncio.wait(list(self._delivering), return_when=asyncio.FIRST_COMPLETED)
        task = asyncio.create_task(self._deliver_now(written), name=f"{self.service}-outbox-delivery")
        self._delivering[task] = len(written)
        task.add_done_callback(self._delivering.pop)

    async def delivered(self) -> None:
        """Return once what `deliver` was handed has been published (or left for the poll)."""
        while self._delivering:
            await asyncio.wait(list(self._delivering))

    async def _deliver_now(self, written: list[Pending]) -> None:
        try:
            await asyncio.gather(*(self._publish(pending) for pending in written))
        except Exception as exc:
            log.warning("%d outbox messages left for the relay's poll (%r)", len(written), exc)
            return
        self._confirmed.update(pending.id for pending in written)
        self._to_delete.set()
        self._published(len(written))

    async def run(self) -> None:
        """Poll, and delete what `deliver` published, until stopped; on stop, publish whatever
        is left, however fresh, delete what was published, then return."""
        deleting = asyncio.create_task(self._delete_published(), name=f"{self.service}-outbox-deletes")
        try:
            await self._poll()
        finally:
            deleting.cancel()
            await asyncio.gather(deleting, return_exceptions=True)
            await self.delete_confirmed()  # what is not deleted now the next relay's poll sends again

    async def _delete_published(self) -> None:
        """Delete what `deliver` published at once when nothing was deleted lately, else with
        whatever else was published in the meantime: at most one delete every
        `delete_interval_s`, and none waits for an interval when messages come one at a time."""
        while True:
            await self._to_delete.wait()
            self._to_delete.clear()
            await self.delete_confirmed()
            await asyncio.sleep(self.delete_interval_s)

    async def delete_confirmed(self) -> None:
        """Delete, in one statement, the rows `deliver` published; they are tried again next
        time if the database is away."""
        if not self._confirmed:
            return
        ids = list(self._confirmed)
        try:
            await self.pool.execute(f"DELETE FROM {self.outbox.table} WHERE id = ANY($1::bigint[])", ids)
        except Exception as exc:
            log.warning("%d published outbox rows not deleted yet (%r)", len(ids), exc)
            self._to_delete.set()  # tried again after the interval, whether or not more come
            return
        self._confirmed.difference_update(ids)

    async def _poll(self) -> None:
        backoff = Backoff()
        while True:
            try:
                while await self.publish_batch() == self.batch_size:
                    pass
                backoff.reset()
            except Exception as exc:
                delay = backoff.next()
                if not is_transient(exc) and self.broker.is_ready:
                    log.exception("outbox relay failed")
                else:
                    log.warning("outbox relay paused (%r); retrying in %.1fs", exc, delay)
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
        """Claim, publish and delete one batch of rows past the grace period (all of them
        once stopping); return how many were published."""
        if self._stopping.is_set():
            await self.delivered()  # the rows in hand there are its to publish, not the poll's
        grace_s = 0.0 if self._stopping.is_set() else self.grace_s
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                f"""SELECT id, exchange, routing_key, message_id, body, traceparent FROM {self.outbox.table}
                    WHERE created_at <= now() - make_interval(secs => $2) AND NOT id = ANY($3::bigint[])
                    ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED""",
                self.batch_size, grace_s, list(self._confirmed),
            )
            if not rows:
                return 0
            # Confirms are pipelined on the channel: publish the batch concurrently.
            await asyncio.gather(*(self._publish(Pending(**row)) for row in rows))
            await conn.execute(f"DELETE FROM {self.outbox.table} WHERE id = ANY($1::bigint[])", [r["id"] for r in rows])
        self._published(len(rows))
        return len(rows)

    def _published(self, count: int) -> None:
        metrics.OUTBOX_PUBLISHED.labels(self.service).inc(count)

    async def _publish(self, pending: Pending) -> None:
        with continued(pending.traceparent):  # each in its own task: the traces never mix
            await self.broker.publish_event(pending.exchange, pending.routing_key, pending.body.encode(),
                                            message_id=pending.message_id)

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        except TimeoutError:
            pass
        self._wake.clear()
