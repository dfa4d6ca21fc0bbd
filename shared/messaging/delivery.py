"""A message as the consumer carries it between taking it and its handler, and the filters
that see it on the way (as MassTransit's consume filters and FastStream's middlewares do).

The consumer knows nothing of tenants or products: whatever a subscriber needs judged
before its handler runs (who may publish it, how duplicates are told apart) is a filter the
subscriber's service writes and installs (`Subscriber(filters=...)`). A filter may

- refuse the message: raise PoisonMessage (dead-lettered with its reason) or RetryLater;
- re-key it: `delivery.key` is what the inbox dedupes by (the message id by default);
- attach what it learned for the handler: `delivery.attach(fact)`, read back with
  `ctx.fact(Kind)`, typed.

Filters run inside the message's unit of work, before its inbox claim: what one reads
(`delivery.db`) is read in that transaction, no round trip of its own, and a refusal rolls
the transaction back, so nothing is touched. They run under the same failure policy as a
handler (an outage is waited out, a lost race retried in place).
"""
from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from shared.contracts import catalogue
from shared.contracts.envelope import CloudEvent, PoisonMessage
from shared.db.pool import Connection
from shared.messaging.topology import Topology

D = TypeVar("D")
T = TypeVar("T")


@dataclass
class Delivery(Generic[D]):
    """What is known of a message before its handler runs; what a filter sees."""

    event: CloudEvent
    publisher: str | None  # who published it, as the broker proved it (shared/messaging/provenance.py)
    deps: D
    key: str = ""  # the inbox's dedupe key; the message id unless a filter says otherwise
    _facts: dict[type, object] = field(default_factory=dict, repr=False)
    _conn: Connection | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.key = self.key or self.event.id

    @property
    def db(self) -> Connection:
        """The unit of work's transaction, for a filter's reads of the service's own tables."""
        if self._conn is None:
            raise LookupError(f"message {self.event.id} is not in a unit of work yet")
        return self._conn

    def within(self, conn: Connection) -> None:
        """Judged and handled inside `conn`'s transaction (the unit of work's)."""
        self._conn = conn

    def attach(self, fact: object) -> None:
        """Hand `fact` to the handler, found there by its type (`ctx.fact(type(fact))`)."""
        self._facts[type(fact)] = fact

    def fact(self, kind: type[T]) -> T:
        found = self._facts.get(kind)
        if not isinstance(found, kind):
            raise LookupError(f"no {kind.__name__} attached to message {self.event.id}: is its filter installed?")
        return found


class Filter(Protocol):
    """Sees a message before its handler: returns to let it through, raises to refuse it."""

    def __call__(self, delivery: Delivery[Any]) -> Awaitable[None]: ...


@dataclass(frozen=True)
class OwnersOnly:
    """Every consumer's first filter: an event acts only as its owner's, published by the
    broker user of the service the catalogue says publishes its type. (Submissions have no
    one owner: the status service's own filter judges who may submit for which tenant.)"""

    topology: Topology

    async def __call__(self, delivery: Delivery[Any]) -> None:
        entry = catalogue.by_type(delivery.event.type)
        owner = entry.publisher if entry is not None else None
        if owner is not None and delivery.publisher != self.topology.user(owner):
            raise PoisonMessage(f"unauthorized_publisher: {delivery.publisher or 'a message without user_id'} "
                                f"does not publish {delivery.event.type}")
