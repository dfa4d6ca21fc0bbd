"""An in-memory path through a subscriber, for unit tests (in the spirit of FastStream's
TestRabbitBroker and cosmicpython's FakeUnitOfWork): the project's own Consumer takes each
message (decoding, routing, filters, the failure policy) with an
in-memory broker side and unit of work in place of RabbitMQ and Postgres.

    harness = Harness(QUEUE, Deps(keyring, simulator, keys=lambda _db: keys), service="license-issuer")
    assert await harness.send(events.NewAccepted(...), tenant="acme") == "handled"
    [issued, sealed] = harness.published            # the models committed, in order
    [letter] = harness.dead_letters                  # copies moved, with their reasons

A handler reaches its tables through its service's store port (e.g. Deps.keys), so a test
hands it an in-memory store; any use of the database itself fails loudly. The in-memory unit
of work commits what a handler published only when the handler returns; a fake store sees
the writes of a handler that raised afterwards (a transaction would not), so keep fakes plain.
Integration tests on the real broker and database stay the proof of the adapters.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar, cast

from pydantic import BaseModel

from shared.backoff import Backoff
from shared.contracts import catalogue
from shared.contracts.envelope import CONTENT_TYPE, CloudEvent, parse_event
from shared.db.pool import Connection
from shared.messaging.consumer import ATTEMPT_HEADER, REASON_HEADER, Consumer
from shared.messaging.delivery import Filter
from shared.messaging.outbox import Outgoing
from shared.messaging.subscriber import Subscriber
from shared.messaging.topology import Topology
from shared.messaging.unit_of_work import Addressing, ConsumeContext, Step

D = TypeVar("D")
OWNER = object()  # `send(publisher=OWNER)`: the broker user of the service that publishes the type
T0 = datetime(2026, 6, 1, 1, 0, tzinfo=UTC)


class NoDatabase:
    """Where the database would be: every use says what to do instead."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the in-memory harness has no database (.{name}): reach the service's tables "
                             "through its store port in Deps, and hand the test an in-memory one")


@dataclass(frozen=True)
class Moved:
    """A copy the consumer published to a retry or dead-letter exchange."""

    exchange: str
    routing_key: str
    body: bytes
    headers: dict[str, Any]

    @property
    def reason(self) -> str:
        return str(self.headers.get(REASON_HEADER, ""))

    @property
    def attempt(self) -> int:
        return int(self.headers.get(ATTEMPT_HEADER, 0) or 0)


class MemoryBroker:
    """The consumer's broker port: records what it publishes (retries, dead letters); a
    test may make publishing fail (`refuse`) to see a message stay in its queue."""

    def __init__(self, topology: Topology, user: str):
        self.topology = topology
        self.user = user
        self.moved: list[Moved] = []
        self.refuse: Exception | None = None

    async def channel(self, prefetch: int) -> Any:
        raise AssertionError("the in-memory broker has no channels: the harness calls Consumer.handle")

    async def publish(self, exchange: str, routing_key: str, body: bytes, *, message_id: str, mandatory: bool = False,
                      headers: dict[str, Any] | None = None, content_type: str | None = CONTENT_TYPE) -> None:
        if self.refuse is not None:
            raise self.refuse
        self.moved.append(Moved(exchange, routing_key, body, dict(headers or {})))


@dataclass
class MemoryMessage:
    """A delivered message, and how the consumer settled it."""

    body: bytes
    user_id: str | None
    exchange: str
    routing_key: str
    message_id: str | None = None
    headers: dict[str, Any] = field(default_factory=dict)
    content_type: str | None = CONTENT_TYPE
    settled: str | None = None  # "acked", "requeued", "rejected"; None: left unsettled

    async def ack(self) -> None:
        self.settled = "acked"

    async def nack(self, multiple: bool = False, requeue: bool = True) -> None:
        self.settled = "requeued" if requeue else "rejected"


class MemoryUnitOfWork:
    """The unit-of-work port in memory: an inbox of dedupe keys, and what committed work
    published, in order."""

    def __init__(self, consumer: str, addressing: Addressing):
        self._consumer = consumer
        self.addressing = addressing
        self.handled: set[str] = set()
        self.published: list[Outgoing] = []
        self.fail_next: list[BaseException] = []  # raised by the next runs, one each (an outage, a lost race)
        self.committed: list[int] = []  # how many messages each committed run carried

    @property
    def consumer(self) -> str:
        return self._consumer

    async def run(self, steps: Sequence[Step], filters: Sequence[Filter], *, now: datetime) -> list[bool]:
        if self.fail_next:
            raise self.fail_next.pop(0)
        handled: set[str] = set()  # what this run handles: committed below if nothing raises
        published: list[Outgoing] = []
        done: list[ConsumeContext[Any] | None] = []
        for step in steps:
            step.delivery.within(cast(Connection, NoDatabase()))
            for judge in filters:
                await judge(step.delivery)
            if step.handler is None or step.delivery.key in self.handled | handled:
                done.append(None)
                continue
            ctx = await step.handle(cast(Connection, NoDatabase()), now)
            handled.add(step.delivery.key)
            published += [self.addressing.outgoing(m, step.delivery.event, subject) for m, subject in ctx.published]
            done.append(ctx)
        self.handled |= handled
        self.published += published
        self.committed.append(len(steps))
        for step, ran in zip(steps, done, strict=True):
            if ran is not None:
                step.after_commit(ran, self._consumer)
        return [ran is not None for ran in done]


class Harness(Generic[D]):
    """One subscriber of one service, run by the project's Consumer in memory."""

    def __init__(self, subscriber: Subscriber[D], deps: D, *, service: str, clock: Callable[[], datetime] = lambda: T0,
                 relays: Iterable[str] = (), retry_delays_s: tuple[float, ...] = (1, 4, 16, 60), batch: int = 1):
        self.topology = Topology("", retry_delays_s)
        self.service = service
        self.broker = MemoryBroker(self.topology, self.topology.user(service))
        self.work = MemoryUnitOfWork(subscriber.name, Addressing(f"/arcserve/{service}", self.topology))
        known_relays = frozenset(relays)

        async def relays_now() -> frozenset[str]:
            return known_relays

        self.consumer = Consumer(self.broker, subscriber, self.work, deps=deps, clock=clock,
                                 prefetch=batch, batch=batch, relays=relays_now,
                                 backoff=lambda: Backoff(first=0, ceiling=0))
        self.messages: list[MemoryMessage] = []

    async def send(self, message: BaseModel, *, tenant: str = "acme", subject: str | None = None, id: str | None = None,
                   publisher: str | None | object = OWNER, extensions: dict[str, str] | None = None) -> str:
        """Deliver `message` (a catalogue model) as its exchange would, published by
        `publisher` (default: the service that owns its type); the consumer's outcome."""
        entry, event = catalogue.to_event(message, source="/test", tenant_id=tenant, subject=subject, id=id,
                                          extensions=extensions)
        if publisher is OWNER:
            assert entry.publisher is not None, f"{entry.type} has no one owner: say who publishes it"
            publisher = self.topology.user(entry.publisher)
        return await self.deliver(MemoryMessage(event.to_json(), cast(str | None, publisher),
                                                self.topology.name(entry.exchange), entry.routing_key, event.id))

    async def deliver(self, message: MemoryMessage) -> str:
        """Deliver a message as it is (a broken body, a copy with headers, a redelivery)."""
        self.messages.append(message)
        return await self.consumer.handle(message)

    async def redeliver_moved(self, moved: Moved) -> str:
        """Deliver a copy the consumer moved back to its queue, as the retry queue does."""
        queue = self.topology.queue(self.consumer.spec)
        return await self.deliver(MemoryMessage(moved.body, self.broker.user, "", queue, None, dict(moved.headers)))

    @property
    def published_events(self) -> list[CloudEvent]:
        return [out.event for out in self.work.published]

    @property
    def published(self) -> list[BaseModel]:
        """What committed work published, as catalogue models, in order."""
        return [catalogue.parse(parse_event(out.event.to_json())) for out in self.work.published]

    @property
    def dead_letters(self) -> list[Moved]:
        dead = self.topology.dead_letter_exchange(self.consumer.spec)
        return [m for m in self.broker.moved if m.exchange == dead]

    @property
    def retries(self) -> list[Moved]:
        retry = self.topology.retry_exchange(self.consumer.spec)
        return [m for m in self.broker.moved if m.exchange == retry]
