"""Exchanges, queues and their typed arguments (DESIGN.md §4, §5).

Queue arguments are typed (as in FastStream's `rabbit/schemas/queue.py`), so a mistyped
`x-` argument fails here, not on the broker. Every service declares the whole topology at
start-up: declarations are idempotent, and a submission published before the status
service ever ran is still routed to its queue.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import aio_pika
from aio_pika.abc import AbstractChannel

from shared.config import DEFAULT_RETRY_DELAYS_S
from shared.contracts import routing


@dataclass(frozen=True)
class QuorumQueueArguments:
    """The `x-` arguments of a durable quorum queue that dead-letters what it gives up on."""

    dead_letter_exchange: str
    dead_letter_routing_key: str
    delivery_limit: int = 10  # a message that crashed its consumer this often is dead-lettered
    # at-least-once: a dead-lettered message is only dropped once the dead-letter queue has it.
    dead_letter_strategy: Literal["at-least-once", "at-most-once"] = "at-least-once"
    overflow: Literal["reject-publish", "drop-head"] = "reject-publish"  # at-least-once needs it

    def as_arguments(self) -> dict[str, str | int]:
        return {
            "x-queue-type": "quorum",
            "x-delivery-limit": self.delivery_limit,
            "x-dead-letter-exchange": self.dead_letter_exchange,
            "x-dead-letter-routing-key": self.dead_letter_routing_key,
            "x-dead-letter-strategy": self.dead_letter_strategy,
            "x-overflow": self.overflow,
        }


@dataclass(frozen=True)
class RetryQueueArguments:
    """A delay queue: messages wait `ttl_ms`, then dead-letter back to the consumer's queue
    (through the default exchange, at least once)."""

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


@dataclass(frozen=True)
class QueueSpec:
    name: str  # without the topology prefix
    bindings: tuple[tuple[str, str], ...]  # (exchange without prefix, routing key)


# One queue per consumer, each with a dead-letter queue of its own (`<queue>.dead-letter`).
STATUS_SUBMISSIONS = QueueSpec("arcserve.status.submissions", ((routing.APPLICATIONS_EXCHANGE, "#"),))
STATUS_RESULTS = QueueSpec(
    "arcserve.status.results",
    ((routing.EVENTS_EXCHANGE, "license.*"), (routing.EVENTS_EXCHANGE, "order_id.*")),
)
LICENSE_ISSUER = QueueSpec(
    "arcserve.license-issuer",
    tuple(
        (routing.EVENTS_EXCHANGE, routing.accepted(kind))
        for kind in ("new", "addition", "vm_count_increase", "cancellation")
    ),
)
ORDER_ID = QueueSpec(
    "arcserve.order-id",
    ((routing.EVENTS_EXCHANGE, routing.accepted("new")), (routing.EVENTS_EXCHANGE, routing.accepted("cancellation"))),
)
QUEUES = (STATUS_SUBMISSIONS, STATUS_RESULTS, LICENSE_ISSUER, ORDER_ID)
DEAD_LETTER_EXCHANGE = "arcserve.dead-letter"


@dataclass(frozen=True)
class Topology:
    """Names with the topology prefix applied (tests and parallel stacks isolate by it)."""

    prefix: str = ""
    retry_delays_s: tuple[float, ...] = DEFAULT_RETRY_DELAYS_S  # one delay queue per step

    def name(self, bare: str) -> str:
        return f"{self.prefix}{bare}"

    @property
    def applications(self) -> str:
        return self.name(routing.APPLICATIONS_EXCHANGE)

    @property
    def events(self) -> str:
        return self.name(routing.EVENTS_EXCHANGE)

    @property
    def dead_letter(self) -> str:
        return self.name(DEAD_LETTER_EXCHANGE)

    def queue(self, spec: QueueSpec) -> str:
        return self.name(spec.name)

    def dead_letter_queue(self, spec: QueueSpec) -> str:
        return self.name(f"{spec.name}.dead-letter")

    def retry_queue(self, spec: QueueSpec, delay_s: float) -> str:
        return self.name(f"{spec.name}.retry.{delay_s:g}s")

    def all_queues(self) -> list[str]:
        """Every queue of the topology (for tooling and clean-up)."""
        names = []
        for spec in QUEUES:
            names += [self.queue(spec), self.dead_letter_queue(spec)]
            names += [self.retry_queue(spec, delay) for delay in self.retry_delays_s]
        return names

    async def declare(self, channel: AbstractChannel) -> None:
        for exchange in (self.applications, self.events, self.dead_letter):
            await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        dead_letter = await channel.get_exchange(self.dead_letter)
        for spec in QUEUES:
            dlq = await channel.declare_queue(
                self.dead_letter_queue(spec), durable=True, arguments={"x-queue-type": "quorum"}
            )
            await dlq.bind(dead_letter, routing_key=self.queue(spec))
            queue = await channel.declare_queue(
                self.queue(spec),
                durable=True,
                arguments=QuorumQueueArguments(
                    dead_letter_exchange=self.dead_letter,
                    dead_letter_routing_key=self.queue(spec),
                ).as_arguments(),
            )
            for exchange, key in spec.bindings:
                await queue.bind(self.name(exchange), routing_key=key)
            for delay in self.retry_delays_s:
                await channel.declare_queue(
                    self.retry_queue(spec, delay),
                    durable=True,
                    arguments=RetryQueueArguments(ttl_ms=round(delay * 1000), return_to=self.queue(spec)).as_arguments(),
                )
