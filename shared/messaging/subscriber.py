"""A subscriber: one consumer queue, declared beside its handlers (as FastStream does). Its
bindings and its routing table are derived from the message models its handlers take, so a
queue only ever receives what some handler of it handles.

    QUEUE: Subscriber[Deps] = Subscriber("arcserve.<service>")

    @QUEUE.handler(SomeEvent, AnotherEvent)
    async def on_event(message: SomeEvent | AnotherEvent, ctx: ConsumeContext[Deps]) -> None: ...

A handler runs inside the consumer's unit of work (shared/messaging/unit_of_work.py) and
only ever sees its message and its context. Nothing it does waits on anything outside the
system: what another party is to do (Arcserve's keys, order IDs, revocations) is recorded as
a request and completed later (docs/architecture.md, "Fulfilment"). One idiom for every worker.

What a subscriber needs judged before its handlers run (who may publish to it, how its
duplicates are told apart) is a filter of its own (shared/messaging/delivery.py).
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from shared.contracts import catalogue
from shared.contracts.catalogue import InvalidData, MessageType
from shared.messaging.delivery import Filter
from shared.messaging.topology import QueueSpec
from shared.messaging.unit_of_work import ConsumeContext

D = TypeVar("D")  # the dependencies a service hands its handlers (a calendar, its stores, ...)
H = TypeVar("H", bound=Callable[..., Awaitable[None]])

OnInvalid = Callable[[InvalidData, ConsumeContext[D]], Awaitable[None]]


@dataclass(frozen=True)
class Route:
    handler: Callable[[Any, ConsumeContext[Any]], Awaitable[None]]
    # Runs in the unit of work for a message of this queue's types whose data does not fit
    # its model, before it is dead-lettered (the status service records the rejection, R4).
    on_invalid: Callable[[InvalidData, ConsumeContext[Any]], Awaitable[None]] | None = None


@dataclass
class Subscriber(Generic[D]):
    name: str  # the queue, without the topology prefix
    # Exchanges whose every message this queue takes (`#`), so that one published under a
    # routing key no handler names is dead-lettered with its reason instead of being
    # unroutable, and lost for a publisher that did not ask for returns.
    takes_all_of: tuple[str, ...] = ()
    # Run in order on every message before its handler, after the consumer's own
    # (shared/messaging/delivery.py).
    filters: tuple[Filter, ...] = ()
    routes: dict[str, Route] = field(default_factory=dict)  # CloudEvents type → route
    entries: list[MessageType] = field(default_factory=list)

    def handler(self, *models: type[BaseModel], on_invalid: OnInvalid[D] | None = None) -> Callable[[H], H]:
        def register(handler: H) -> H:
            for entry in catalogue.entries(*models):
                if entry.type in self.routes:
                    raise ValueError(f"{self.name}: two handlers for {entry.type}")
                self.routes[entry.type] = Route(handler, on_invalid)
                self.entries.append(entry)
            return handler

        return register

    @property
    def spec(self) -> QueueSpec:
        """The queue and the bindings its handlers need."""
        bindings = {(entry.exchange, entry.routing_key) for entry in self.entries if entry.exchange not in self.takes_all_of}
        bindings |= {(exchange, "#") for exchange in self.takes_all_of}
        return QueueSpec(self.name, tuple(sorted(bindings)))
