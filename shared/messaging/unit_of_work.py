"""The consumer's unit of work (as MassTransit's inbox/outbox): one transaction runs the
subscriber's filters, locks the inbox row of (dedupe key, consumer), runs the handler's
writes, and enqueues the messages the handler published, all committed together; once
committed, they are handed to the service's delivery (shared/messaging/outbox.py). Handlers
never touch the inbox or the outbox: they write their own tables through `ctx.conn` and call
`ctx.publish(...)`.

One transaction may carry several messages of one consumer (`Step`s, in the order they were
delivered: the consumer batches what arrives while one runs): their filters, one inbox
statement for all their claims, their handlers in order, one outbox statement. Any of them
failing rolls back all; the consumer then runs each alone, so one message's failure is its own.

`Work` is the port the consumer runs a message through; `UnitOfWork` is its Postgres
adapter, and shared/messaging/testing.py has an in-memory one for unit tests.
"""
from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

import asyncpg
from pydantic import BaseModel

from shared.contracts import catalogue
from shared.contracts.envelope import CloudEvent
from shared.db.pool import Connection
from shared.messaging.delivery import Delivery, Filter
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
    traceparent: str | None = None  # of the handler's work, once it has run

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


@dataclass(frozen=True)
class Step:
    """One message's part of a unit of work: judged by the filters, then `handler(message)`;
    with no handler, only judged (a message that will be dead-lettered for its data). Its
    handler runs in the message's own context (its trace, its log fields), whichever
    message's task runs the batch."""

    delivery: Delivery[Any]
    handler: Handler | None
    message: Any
    context: contextvars.Context = field(default_factory=contextvars.copy_context)

    async def handle(self, conn: Connection, now: datetime) -> ConsumeContext[Any]:
        """Run the handler in the message's context."""
        assert self.handler is not None
        ctx: ConsumeContext[Any] = ConsumeContext(conn, self.delivery, now)
        await asyncio.create_task(self._traced(self.handler, ctx), context=self.context)
        return ctx

    async def _traced(self, handler: Handler, ctx: ConsumeContext[Any]) -> None:
        await handler(self.message, ctx)
        ctx.traceparent = current_traceparent()  # what it published goes on in this trace

    def after_commit(self, ctx: ConsumeContext[Any], consumer: str) -> None:
        self.context.run(after_commit, ctx, consumer)


class Work(Protocol):
    """What the consumer runs messages' handlers through."""

    @property
    def consumer(self) -> str:
        """Its name in the inbox."""

    async def run(self, steps: Sequence[Step], filters: Sequence[Filter], *, now: datetime) -> list[bool]:
        """Judge each step by `filters`, then run its handler once (deduped by
        `delivery.key`), in order, all their writes and what they published committed
        together; for each, False when this consumer had handled it before (or it has no
        handler). Raises, with nothing committed, if any filter or handler does."""


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
    pool: Callable[[], asyncpg.Pool]  # the service's (a callable: the pool is made when the service starts)
    inbox: Inbox
    outbox: Outbox
    addressing: Addressing
    # What the commit wrote to the outbox goes there at once (OutboxRelay.deliver); without
    # it, the rows wait for a relay's poll.
    deliver: Callable[[list[Pending]], Awaitable[None]] | None = None

    async def run(self, steps: Sequence[Step], filters: Sequence[Filter], *, now: datetime) -> list[bool]:
        done: list[ConsumeContext[Any] | None] = []
        async with self.pool().acquire() as conn, conn.transaction():
            for step in steps:
                step.delivery.within(conn)
                for judge in filters:
                    await judge(step.delivery)
            handled = [step for step in steps if step.handler is not None]
            claimed = await self.inbox.claim_all(conn, self.consumer, [step.delivery.key for step in handled])
            outgoing: list[Outgoing] = []
            for step in steps:
                if step.handler is None or step.delivery.key not in claimed:
                    done.append(None)
                    continue
                claimed.discard(step.delivery.key)  # a second copy in the same batch is a duplicate
                ctx = await step.handle(conn, now)
                outgoing += [self.addressing.outgoing(m, step.delivery.event, subject, ctx.traceparent)
                             for m, subject in ctx.published]
                done.append(ctx)
            written = await self.outbox.enqueue(conn, outgoing)
        if written and self.deliver is not None:
            await self.deliver(written)
        for step, ran in zip(steps, done, strict=True):
            if ran is not None:
                step.after_commit(ran, self.consumer)
        return [ran is not None for ran in done]
