"""The consumer's unit of work (as MassTransit's inbox/outbox): one transaction locks the
inbox row of (dedupe key, consumer), runs the handler's writes, and enqueues the messages
the handler published, all committed together; once committed, they are handed to the
service's delivery (shared/messaging/outbox.py). Handlers never touch the inbox or the
outbox: they write their own tables through `ctx.conn` and call `ctx.publish(...)`.

`Work` is the port the consumer runs a message through; `UnitOfWork` is its Postgres
adapter, and shared/messaging/testing.py has an in-memory one for unit tests.
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel

from shared.contracts import catalogue
from shared.contracts.envelope import CloudEvent
from shared.db.pool import Connection
from shared.messaging.delivery import Delivery
from shared.messaging.inbox import Inbox
from shared.messaging.outbox import Outbox, Outgoing, Pending
from shared.messaging.topology import Topology
from shared.observability.tracing import current_traceparent

D = TypeVar("D")  # the dependencies a service hands its handlers
T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass
class ConsumeContext(Generic[D]):
    """What a handler sees: its transaction, the message's delivery (envelope, publisher,
    dependencies, what filters attached), the time, and `publish`."""

    conn: Connection  # the unit of work's transaction
    delivery: Delivery[D]
    now: datetime
    published: list[tuple[BaseModel, str | None]] = field(default_factory=list)
    committed: list[Callable[[], None]] = field(default_factory=list)

    @property
    def event(self) -> CloudEvent:
        return self.delivery.event

    @property
    def deps(self) -> D:
        return self.delivery.deps

    @property
    def publisher(self) -> str | None:
        """The broker user who published the message, as the broker proved it."""
        return self.delivery.publisher

    def fact(self, kind: type[T]) -> T:
        """What a filter of the subscriber attached (shared/messaging/delivery.py)."""
        return self.delivery.fact(kind)

    def publish(self, message: BaseModel, *, subject: str | None = None) -> None:
        """Publish `message` (a catalogue model) when the unit of work commits: for the same
        tenant as the message in hand, about `subject` (default: the same subject)."""
        self.published.append((message, subject))

    def after_commit(self, effect: Callable[[], None]) -> None:
        """Run `effect` once the unit of work has committed (a metric of what it did: a
        transaction that rolls back and is retried must not count twice)."""
        self.committed.append(effect)


Handler = Callable[[Any, ConsumeContext[Any]], Awaitable[None]]  # (message, ctx)


class Work(Protocol):
    """What the consumer runs a message's handler through."""

    @property
    def consumer(self) -> str:
        """Its name in the inbox."""

    async def run(self, delivery: Delivery[Any], handler: Handler, message: Any, *, now: datetime) -> bool:
        """Run `handler` once for the message (deduped by `delivery.key`), its writes and
        what it published committed together; False when this consumer had done so before."""


@dataclass(frozen=True)
class Addressing:
    """How a service's published messages go out: its CloudEvents `source`, and the
    exchanges of its topology."""

    source: str
    topology: Topology

    def outgoing(self, message: BaseModel, cause: CloudEvent, subject: str | None,
                 traceparent: str | None = None) -> Outgoing:
        """`message` as published for the tenant of `cause`, about `subject` (default: the same)."""
        return self.outgoing_for(message, cause.tenantid or "", subject or cause.subject, traceparent)

    def outgoing_for(self, message: BaseModel, tenant_id: str, subject: str | None,
                     traceparent: str | None = None) -> Outgoing:
        """`message` as published for `tenant_id`, about `subject`."""
        entry, event = catalogue.to_event(message, source=self.source, tenant_id=tenant_id, subject=subject)
        return Outgoing(self.topology.name(entry.exchange), entry.routing_key, event, traceparent)


def after_commit(ctx: ConsumeContext[Any], consumer: str) -> None:
    """The handler's after-commit steps: what is committed stays done, so one that fails is
    logged, never retried."""
    for effect in ctx.committed:
        try:
            effect()
        except Exception:
            log.exception("an after-commit step of %s failed (message %s)", consumer, ctx.event.id)


@dataclass(frozen=True)
class UnitOfWork:
    """One per consumer: its name in the inbox, its service's inbox and outbox, and how its
    published messages are addressed."""

    consumer: str
    inbox: Inbox
    outbox: Outbox
    addressing: Addressing
    # What the commit wrote to the outbox goes there at once (OutboxRelay.deliver); without
    # it, the rows wait for a relay's poll.
    deliver: Callable[[list[Pending]], Awaitable[None]] | None = None

    async def run(self, delivery: Delivery[Any], handler: Handler, message: Any, *, now: datetime) -> bool:
        async with delivery.pool.acquire() as conn, conn.transaction():
            if not await self.inbox.claim(conn, self.consumer, delivery.key):
                return False
            ctx: ConsumeContext[Any] = ConsumeContext(conn, delivery, now)
            await handler(message, ctx)
            traceparent = current_traceparent()  # they are published inside this trace
            written = await self.outbox.enqueue(conn, [self.addressing.outgoing(m, delivery.event, subject, traceparent)
                                                       for m, subject in ctx.published])
        if written and self.deliver is not None:
            await self.deliver(written)
        after_commit(ctx, self.consumer)
        return True
