"""Queues, exchanges and their typed arguments (docs/architecture.md, "Public contract", §5), generic: each service
declares its own subscriptions beside its handlers (shared/messaging/subscriber.py), and
the provisioning step turns them into broker definitions.

Every consumer queue `Q` comes with:
- `Q.dead-letter`, its dead-letter queue, fed by the fanout exchange `Q.dead-letter`
  (the broker dead-letters there when the delivery limit is hit; the consumer publishes
  there what it gives up on);
- `Q.retry.<delay>s`, one delay queue per retry step, fed by the direct exchange `Q.retry`
  (routing key `<delay>s`); a delayed message dead-letters back to `Q` when its time is up.

So a consumer only ever publishes to exchanges of its own queues (and the public ones it
publishes events to): no service needs write access to the default exchange, through
which it could reach any queue. Queue arguments are typed, as in FastStream's
`rabbit/schemas/queue.py`, so a mistyped `x-` argument fails here, not on the broker.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from shared.config import DEFAULT_RETRY_DELAYS_S
from shared.contracts import routing


@dataclass(frozen=True)
class QuorumQueueArguments:
    """The `x-` arguments of a durable quorum queue that dead-letters what it gives up on."""

    dead_letter_exchange: str
    delivery_limit: int = 10  # a message that crashed its consumer this often is dead-lettered
    # at-least-once: a dead-lettered message is only dropped once the dead-letter queue has it.
    dead_letter_strategy: Literal["at-least-once", "at-most-once"] = "at-least-once"
    overflow: Literal["reject-publish", "drop-head"] = "reject-publish"  # at-least-once needs it

    def as_arguments(self) -> dict[str, str | int]:
        return {
            "x-queue-type": "quorum",
            "x-delivery-limit": self.delivery_limit,
            "x-dead-letter-exchange": self.dead_letter_exchange,
            "x-dead-letter-strategy": self.dead_letter_strategy,
            "x-overflow": self.overflow,
        }


@dataclass(frozen=True)
class RetryQueueArguments:
    """A delay queue: messages wait `ttl_ms`, then dead-letter back to the consumer's queue
    (through the default exchange, at least once; the broker does this, not a user)."""

    ttl_ms: int
    return_to: str  # the consumer's queue
    dead_letter_strategy: Literal["at-least-once", "at-most-once"] = "at-least-once"
    overflow: Literal["reject-publish", "drop-head"] = "reject-publish"

    def as_arguments(self) -> dict[str, str | int]:
        return {
            "x-queue-type": "quorum",
            "x-message-ttl": self.ttl_ms,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": self.return_to,
            "x-dead-letter-strategy": self.dead_letter_strategy,
            "x-overflow": self.overflow,
        }


DEAD_LETTER_QUEUE_ARGUMENTS: dict[str, str | int] = {"x-queue-type": "quorum"}


@dataclass(frozen=True)
class QueueSpec:
    """One consumer's queue: its name (without the topology prefix) and its bindings
    (exchange without prefix, routing key)."""

    name: str
    bindings: tuple[tuple[str, str], ...] = field(default=())


@dataclass(frozen=True)
class Exchange:
    name: str
    type: Literal["topic", "direct", "fanout"]


@dataclass(frozen=True)
class Queue:
    name: str
    arguments: dict[str, str | int]


@dataclass(frozen=True)
class Binding:
    exchange: str
    queue: str
    routing_key: str


EXCHANGES = (*routing.PUBLIC_EXCHANGES, routing.LICENSE_KEYS_EXCHANGE,
             routing.ORDER_IDS_EXCHANGE)  # topic exchanges every deployment has


@dataclass(frozen=True)
class Topology:
    """Names with the topology prefix applied (tests and parallel stacks isolate by it)."""

    prefix: str = ""
    retry_delays_s: tuple[float, ...] = DEFAULT_RETRY_DELAYS_S  # one delay queue per step

    def name(self, bare: str) -> str:
        return f"{self.prefix}{bare}"

    def user(self, service: str) -> str:
        """The broker user of one of the deployment's services: the provisioning step names
        it so, and a consumer trusts a message of the catalogue only from the user of the
        service that publishes it."""
        return f"{self.prefix}arcserve-{service}"

    @property
    def applications(self) -> str:
        return self.name(routing.APPLICATIONS_EXCHANGE)

    @property
    def events(self) -> str:
        return self.name(routing.EVENTS_EXCHANGE)

    def queue(self, spec: QueueSpec) -> str:
        return self.name(spec.name)

    def dead_letter_queue(self, spec: QueueSpec) -> str:
        return self.name(f"{spec.name}.dead-letter")

    def dead_letter_exchange(self, spec: QueueSpec) -> str:
        return self.name(f"{spec.name}.dead-letter")

    def retry_exchange(self, spec: QueueSpec) -> str:
        return self.name(f"{spec.name}.retry")

    @staticmethod
    def retry_key(delay_s: float) -> str:
        return f"{delay_s:g}s"

    def retry_queue(self, spec: QueueSpec, delay_s: float) -> str:
        return self.name(f"{spec.name}.retry.{self.retry_key(delay_s)}")

    def queues_of(self, spec: QueueSpec) -> list[str]:
        """Every queue of one consumer: its own, its dead letters, its delays."""
        return [self.queue(spec), self.dead_letter_queue(spec),
                *(self.retry_queue(spec, delay) for delay in self.retry_delays_s)]

    def exchanges_of(self, spec: QueueSpec) -> list[str]:
        """The exchanges only this consumer publishes to (its retries and dead letters)."""
        return [self.retry_exchange(spec), self.dead_letter_exchange(spec)]

    def pattern(self, names: list[str]) -> str:
        """A permission regex matching exactly these names ("^$" for none)."""
        if not names:
            return "^$"
        return "^(" + "|".join(re.escape(name) for name in sorted(set(names))) + ")$"

    def declarations(self, specs: list[QueueSpec]) -> tuple[list[Exchange], list[Queue], list[Binding]]:
        """Everything to declare for these consumers, plus the shared exchanges."""
        exchanges = [Exchange(self.name(name), "topic") for name in EXCHANGES]
        queues: list[Queue] = []
        bindings: list[Binding] = []
        for spec in specs:
            queue = self.queue(spec)
            exchanges += [Exchange(self.retry_exchange(spec), "direct"), Exchange(self.dead_letter_exchange(spec), "fanout")]
            queues.append(Queue(queue, QuorumQueueArguments(self.dead_letter_exchange(spec)).as_arguments()))
            queues.append(Queue(self.dead_letter_queue(spec), DEAD_LETTER_QUEUE_ARGUMENTS))
            bindings.append(Binding(self.dead_letter_exchange(spec), self.dead_letter_queue(spec), ""))
            for exchange, key in spec.bindings:
                bindings.append(Binding(self.name(exchange), queue, key))
            for delay in self.retry_delays_s:
                retry = self.retry_queue(spec, delay)
                queues.append(Queue(retry, RetryQueueArguments(round(delay * 1000), queue).as_arguments()))
                bindings.append(Binding(self.retry_exchange(spec), retry, self.retry_key(delay)))
        return exchanges, queues, bindings
