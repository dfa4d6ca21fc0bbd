"""The consumer's unit of work (as MassTransit's inbox/outbox): one transaction locks the
inbox row of (message id, consumer), runs the handler's writes, and enqueues the messages
the handler published, all committed together; once committed, they are handed to the
service's delivery (shared/messaging/outbox.py). Handlers never touch the inbox or the
outbox: they write their own tables through `ctx.conn` and call `ctx.publish(...)`.
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

import asyncpg
from pydantic import BaseModel

from shared.contracts import catalogue
from shared.contracts.envelope import CloudEvent
from shared.db.pool import Connection
from shared.messaging.inbox import Inbox
from shared.messaging.outbox import Outbox, Outgoing, Pending
from shared.messaging.topology import Topology
from shared.observability.tracing import current_traceparent

D = TypeVar("D")
log = logging.getLogger(__name__)


@dataclass
class OutsideContext(Generic[D]):
    """What an `outside` step may use: the service's dependencies and a pool to read its own
    tables (never inside a transaction: an external call must not hold one open)."""

    event: CloudEvent
    deps: D
    pool: asyncpg.Pool


@dataclass
class ConsumeContext(Generic[D]):
    """What a handler sees: its transaction, the envelope of its message, the service's
    dependencies, what its `outside` step obtained, and `publish`."""

    conn: Connection  # the unit of work's transaction
    event: CloudEvent
    deps: D
    now: datetime
    obtained: Any = None
    publisher: str | None = None  # the broker user who published it, as the broker proved it
    published: list[tuple[BaseModel, str | None]] = field(default_factory=list)
    committed: list[Callable[[], None]] = field(default_factory=list)

    def publish(self, message: BaseModel, *, subject: str | None = None) -> None:
        """Publish `message` (a catalogue model) when the unit of work commits: for the same
        tenant as the message in hand, about `subject` (default: the same subject)."""
        self.published.append((message, subject))

    def after_commit(self, effect: Callable[[], None]) -> None:
        """Run `effect` once the unit of work has committed (a metric of what it did: a
        transaction that rolls back and is retried must not count twice)."""
        self.committed.append(effect)


@dataclass(frozen=True)
class UnitOfWork:
    """One per consumer: its name in the inbox, its service's inbox and outbox, and the
    source and topology its published messages go out with."""

    consumer: str
    inbox: Inbox
    outbox: Outbox
    source: str  # CloudEvents `source` of what the service publishes
    topology: Topology
    # What the commit wrote to the outbox goes there at once (OutboxRelay.deliver); without
    # it, the rows wait for a relay's poll.
    deliver: Callable[[list[Pending]], Awaitable[None]] | None = None

    async def run(self, pool: asyncpg.Pool, handler: Any, message: Any, event: CloudEvent, deps: Any,
                  now: datetime, obtained: Any = None, publisher: str | None = None, key: str | None = None) -> bool:
        """Run `handler` once for this message (`key`: its dedupe key, default its id);
        False when this consumer had already done so."""
        async with pool.acquire() as conn, conn.transaction():
            if not await self.inbox.claim(conn, self.consumer, key or event.id):
                return False
            ctx = ConsumeContext(conn, event, deps, now, obtained, publisher)
            await handler(message, ctx)
            traceparent = current_traceparent()  # they are published inside this trace
            written = await self.outbox.enqueue(conn, [self.outgoing(m, event, subject, traceparent)
                                                       for m, subject in ctx.published])
        if written and self.deliver is not None:
            await self.deliver(written)
        for effect in ctx.committed:
            try:
                effect()
            except Exception:  # what is committed stays done: a failed log line or metric must not retry it
                log.exception("an after-commit step of %s failed (message %s)", self.consumer, event.id)
        return True

    def outgoing(self, message: BaseModel, cause: CloudEvent, subject: str | None,
                 traceparent: str | None = None) -> Outgoing:
        entry, event = catalogue.to_event(
            message, source=self.source, tenant_id=cause.tenantid or "", subject=subject or cause.subject
        )
        return Outgoing(self.topology.name(entry.exchange), entry.routing_key, event, traceparent)
