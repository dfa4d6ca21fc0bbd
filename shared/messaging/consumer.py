"""The consume loop every service shares: decode, route to the subscriber's handler, run it
in the unit of work, ack only after the effect is durable (docs/architecture.md, "Reliability"). What happens to
a message that does not succeed:

| what went wrong                                   | what happens                                |
|---------------------------------------------------|---------------------------------------------|
| not JSON / not a CloudEvent / unknown type /      | dead-lettered at once with the reason       |
| refused by a filter (PoisonMessage): e.g. not     | (after the route's `on_invalid`, if any)    |
| published by the service that owns its type /     |                                             |
| data that does not fit its model /                |                                             |
| the handler raised PoisonMessage                  |                                             |
| the database is down (an outage)                  | retried in place, with backoff, until it is |
|                                                   | back; nothing is acked meanwhile            |
| a lost race between transactions (a conflict)    | retried in place a few times                |
| RetryLater, or any other error (a filter's too)   | delayed retry queues (1 s, 4 s, 16 s, 60 s  |
|                                                   | by default: ARCSERVE_RETRY_DELAYS_S),       |
|                                                   | then dead-lettered with the last reason     |

Moving a message (to a retry or the dead-letter queue) is a publish with a confirm to one
of the queue's own exchanges, then the ack: a crash in between delivers it twice, and the
inbox absorbs the second. A copy says who first published the message, and where it first
arrived; what the publisher itself said in such headers is dropped (shared/messaging/provenance.py).
The quorum queue's delivery limit is the backstop for a message
that crashes its consumer's process. `stop()` cancels the consumer and waits for the
messages in hand (drain on SIGTERM).

The consumer knows nothing of tenants: what a subscriber needs judged before its handler is
a filter it installs (shared/messaging/delivery.py). It talks to the broker and the unit of
work through the ports below, so shared/messaging/testing.py runs it in memory.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any, Protocol

from aio_pika.abc import AbstractChannel

from shared import metrics
from shared.backoff import Backoff
from shared.contracts import binding, catalogue
from shared.contracts.catalogue import InvalidData
from shared.contracts.envelope import CloudEvent, PoisonMessage, RetryLater
from shared.db.pool import is_conflict, is_outage
from shared.messaging.batching import Batches, RunAlone
from shared.messaging.delivery import Delivery, Filter, OwnersOnly
from shared.messaging.provenance import (
    PUBLISHER_HEADER,
    Provenance,
    provenance,
    publishers_claims_dropped,
)
from shared.messaging.subscriber import Route, Subscriber
from shared.messaging.topology import Topology
from shared.messaging.unit_of_work import Step, Work
from shared.observability import logs

log = logging.getLogger(__name__)

# Headers kept on every dead letter (read by the operator tooling, services/tools/dlq.py).
REASON_HEADER = "x-arcserve-reason"
ORIGINAL_EXCHANGE_HEADER = "x-arcserve-original-exchange"
ORIGINAL_ROUTING_KEY_HEADER = "x-arcserve-original-routing-key"
DELIVERY_COUNT_HEADER = "x-arcserve-delivery-count"
# How many delayed retries a message has had (set on the copies sent to retry queues).
ATTEMPT_HEADER = "x-arcserve-attempt"
CONFLICT_RETRIES = 5
__all__ = ["PUBLISHER_HEADER", "Consumer", "QueueMissing"]


class Transport(Protocol):
    """What the consumer needs of the broker (shared/messaging/broker.py's Broker)."""

    topology: Topology
    user: str  # this service's broker user

    async def channel(self, prefetch: int) -> AbstractChannel: ...

    async def publish(self, exchange: str, routing_key: str, body: bytes, *, message_id: str, mandatory: bool = False,
                      headers: dict[str, Any] | None = None, content_type: str | None = ...) -> None: ...


class Incoming(Protocol):
    """What the consumer reads of a delivered message, and how it settles it (aio-pika's
    AbstractIncomingMessage)."""

    @property
    def body(self) -> bytes: ...
    @property
    def content_type(self) -> str | None: ...
    @property
    def headers(self) -> Mapping[str, Any]: ...
    @property
    def user_id(self) -> str | None: ...
    @property
    def message_id(self) -> str | None: ...
    @property
    def exchange(self) -> str | None: ...
    @property
    def routing_key(self) -> str | None: ...

    def ack(self) -> Awaitable[None]: ...

    def nack(self, multiple: bool = False, requeue: bool = True) -> Awaitable[None]: ...


class QueueMissing(Exception):
    """A queue or exchange of the consumer's is not there: the provisioning step has not run
    yet (or provisioned other retry delays than this service was given)."""


class Consumer:
    def __init__(
        self,
        broker: Transport,
        subscriber: Subscriber[Any],
        uow: Work,
        *,
        deps: Any,
        clock: Callable[[], datetime],
        prefetch: int,
        batch: int = 1,  # the most messages one unit of work carries (shared/messaging/batching.py)
        relays: Callable[[], Awaitable[frozenset[str]]],
        backoff: Callable[[], Backoff] = Backoff,
    ):
        self.broker = broker
        self.subscriber = subscriber
        self.spec = subscriber.spec
        self.queue_name = broker.topology.queue(self.spec)
        self.uow = uow
        self._batches: Batches[Step] = Batches(self._unit_of_work, batch)
        self.deps = deps
        self.clock = clock
        self.prefetch = prefetch
        self.relays = relays  # the administrators, whose replays name the message's publisher
        self.backoff = backoff  # how long an outage or a lost race is waited out in place
        self._entries = subscriber.entries
        self._filters: tuple[Filter, ...] = (OwnersOnly(broker.topology), *subscriber.filters)
        self._channel: AbstractChannel | None = None
        self._tag: str | None = None
        self._in_hand: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()

    @property
    def running(self) -> bool:
        return self._tag is not None

    async def start(self) -> None:
        """Start consuming, once every queue and exchange this consumer uses is there (as
        provisioned: with the retry delays this service was configured with)."""
        topology = self.broker.topology
        for exchange in topology.exchanges_of(self.spec):
            await self._exists(exchange, lambda channel, name: channel.get_exchange(name))
        for queue_name in topology.queues_of(self.spec)[1:]:
            await self._exists(queue_name, lambda channel, name: channel.get_queue(name))
        channel = await self.broker.channel(self.prefetch)
        try:
            queue = await channel.get_queue(self.queue_name)  # passive: the queue must exist
        except Exception as exc:
            with contextlib.suppress(Exception):
                await channel.close()
            raise QueueMissing(f"queue {self.queue_name} is not there ({exc})") from None
        self._channel = channel
        self._tag = await queue.consume(self._on_message)

    async def _exists(self, name: str, declare_passively: Callable[[AbstractChannel, str], Awaitable[Any]]) -> None:
        channel = await self.broker.channel(1)  # a failed passive declaration closes its channel
        try:
            await declare_passively(channel, name)
        except Exception as exc:
            raise QueueMissing(f"{name} is not there ({exc})") from None
        finally:
            with contextlib.suppress(Exception):
                await channel.close()

    async def stop(self, timeout: float) -> None:
        """Stop taking messages, finish the ones in hand, then close the channel; whatever
        was not acked goes back to the queue for the next consumer."""
        self._stopping.set()
        if self._channel is not None and not self._channel.is_closed and self._tag is not None:
            queue = await self._channel.get_queue(self.queue_name, ensure=False)
            try:
                await queue.cancel(self._tag)
            except Exception:  # the channel may be gone with the broker; nothing to cancel
                log.debug("cancel of %s failed", self.queue_name, exc_info=True)
        if self._in_hand:
            await asyncio.wait(self._in_hand, timeout=timeout)
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()

    async def _on_message(self, message: Incoming) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._in_hand.add(task)
        started = time.perf_counter()
        try:
            with logs.message_fields(message_id=message.message_id, queue=self.spec.name):
                outcome = await self.handle(message)
        finally:
            self._in_hand.discard(task)
        metrics.HANDLER_SECONDS.labels(self.spec.name, outcome).observe(time.perf_counter() - started)

    async def handle(self, message: Incoming) -> str:
        """Handle, retry or dead-letter the message; return which it was."""
        try:
            origin = await self._identify(message)
        except _Stopping:
            return "left_for_redelivery"  # unacked: the broker gives it to the next consumer
        try:
            event = binding.read(message.body, message.content_type, message.headers)
            logs.bind(**_fields_of(event))
            route = self.subscriber.routes.get(event.type)
            if route is None:
                raise PoisonMessage(f"unknown_type: {event.type!r} is not handled by {self.spec.name}")
            catalogue.tenant_of(event)  # before any filter: every message is about a tenant
            await self._deliver(route, Delivery(event, origin.publisher, self.deps))
        except PoisonMessage as poison:
            return await self._move(message, reason=poison.reason, dead=True, origin=origin)
        except RetryLater as later:
            return await self._move(message, reason=later.reason, dead=False, origin=origin)
        except _Stopping:
            return "left_for_redelivery"  # unacked: the broker gives it to the next consumer
        except Exception as exc:
            log.exception("handler failed on %s (message %s)", self.queue_name, message.message_id)
            return await self._move(message, reason=f"handler_error: {exc!r}", dead=False, origin=origin)
        metrics.MESSAGES.labels(self.spec.name, "handled").inc()
        await _settle(message.ack())
        return "handled"

    async def _identify(self, message: Incoming) -> Provenance:
        """Who published the message (shared/messaging/provenance.py), retried in place
        whatever goes wrong: a message must never move on (to a retry, as our copy) without
        the publisher it came from, or it would come back as ours (seen under a database
        restart: asyncpg's InternalClientError)."""
        backoff = self.backoff()
        while True:
            try:
                return provenance(message.user_id, message.headers, await self._trusted(message))
            except Exception as exc:
                if self._stopping.is_set():
                    raise _Stopping() from exc  # unacked: the broker gives it to the next consumer
                delay = backoff.next()
                log.warning("cannot tell who published message %s on %s yet (%r); retrying in %.1fs",
                            message.message_id, self.queue_name, exc, delay)
                metrics.MESSAGES.labels(self.spec.name, "retried_in_place").inc()
                await asyncio.sleep(delay)

    async def _trusted(self, message: Incoming) -> frozenset[str]:
        """Whose copies may name another publisher: ours (a retry back from its delay queue),
        and a relay's only when put straight into this queue (a replay: the default exchange,
        which only an administrator may write to), never one published to an exchange."""
        if message.user_id == self.broker.user:
            return frozenset({self.broker.user})
        if message.exchange == "" and message.routing_key == self.queue_name:
            return await self.relays()
        return frozenset()

    async def _deliver(self, route: Route, delivery: Delivery[Any]) -> None:
        try:
            parsed = catalogue.parse(delivery.event, self._entries)
        except InvalidData as invalid:
            # Judged all the same (a refusal is the reason given), and `on_invalid` run if any.
            await self._alone(Step(delivery, route.on_invalid, invalid))
            raise
        step = Step(delivery, route.handler, parsed)
        try:
            done = await self._batches.run(step)
        except RunAlone:
            done = await self._alone(step)
        if not done:
            self._absorbed(delivery.event)

    async def _alone(self, step: Step) -> bool:
        if self._stopping.is_set():
            raise _Stopping()
        [done] = await self._unit_of_work([step])
        return done

    async def _unit_of_work(self, steps: list[Step]) -> list[bool]:
        """Run `steps` in one unit of work, waiting out outages and retrying lost races."""
        done = await self._transient_safe(lambda: self.uow.run(steps, self._filters, now=self.clock()))
        metrics.UNIT_OF_WORK_MESSAGES.labels(self.spec.name).observe(len(steps))
        return done

    def _absorbed(self, event: CloudEvent) -> None:
        metrics.INBOX_DUPLICATES.labels(self.spec.name).inc()
        log.info("message %s was handled before on %s: no second effect", event.id, self.queue_name)

    async def _transient_safe(self, attempt: Callable[[], Awaitable[Any]]) -> Any:
        """Run `attempt`, waiting out outages and retrying lost races in place."""
        backoff, conflicts = self.backoff(), 0
        while True:
            try:
                return await attempt()
            except Exception as exc:
                if is_conflict(exc) and conflicts < CONFLICT_RETRIES:
                    conflicts += 1
                elif not is_outage(exc):
                    raise
                if self._stopping.is_set():
                    raise _Stopping() from exc
                delay = backoff.next()
                log.warning("transient fault on %s (%r); retrying in %.1fs", self.queue_name, exc, delay)
                metrics.MESSAGES.labels(self.spec.name, "retried_in_place").inc()
                await asyncio.sleep(delay)

    async def _move(self, message: Incoming, *, reason: str, dead: bool, origin: Provenance) -> str:
        """Send the message to its next delayed retry, or to the dead-letter queue, as a copy
        that says who first published it; return which."""
        headers: dict[str, Any] = dict(message.headers or {})
        if not origin.relayed:  # the publisher's own headers: nothing it said of itself is kept
            headers = publishers_claims_dropped(headers)
        headers[PUBLISHER_HEADER] = origin.publisher or ""
        attempt = int(headers.get(ATTEMPT_HEADER, 0) or 0) + 1
        topology = self.broker.topology
        if not dead and attempt > len(topology.retry_delays_s):
            dead, reason = True, f"retries_exhausted: {reason}"
        if not headers.get(ORIGINAL_ROUTING_KEY_HEADER):  # first move: remember where it came from
            headers[ORIGINAL_EXCHANGE_HEADER] = message.exchange or ""
            headers[ORIGINAL_ROUTING_KEY_HEADER] = message.routing_key or ""
        headers[REASON_HEADER] = reason[:1000]
        # Deliveries so far: ours (each move) plus the broker's redeliveries of this copy.
        redelivered = int(headers.pop("x-delivery-count", 0) or 0)
        headers[DELIVERY_COUNT_HEADER] = int(headers.get(DELIVERY_COUNT_HEADER, 0) or 0) + redelivered + 1
        if dead:
            exchange, routing_key, outcome = topology.dead_letter_exchange(self.spec), "", "dead_lettered"
            log.warning("dead-lettering message %s from %s: %s", message.message_id, self.queue_name, reason,
                        extra={"reason": reason})
        else:
            headers[ATTEMPT_HEADER] = attempt
            delay = topology.retry_delays_s[attempt - 1]
            exchange, routing_key, outcome = topology.retry_exchange(self.spec), topology.retry_key(delay), "retry_scheduled"
            log.info("retrying message %s of %s in %gs: %s", message.message_id, self.queue_name, delay, reason)
        try:
            await self.broker.publish(
                exchange, routing_key, message.body, message_id=message.message_id or "", headers=headers, mandatory=True,
                content_type=message.content_type,  # a binary-mode event's `datacontenttype`: keep the copy readable
            )
        except Exception:
            log.exception("could not move message %s; it stays in %s", message.message_id, self.queue_name)
            await _settle(message.nack(requeue=True))
            return "requeued"
        metrics.MESSAGES.labels(self.spec.name, outcome).inc()
        if dead:
            metrics.DEAD_LETTERED.labels(self.spec.name, metrics.reason_code(reason)).inc()
        await _settle(message.ack())
        return outcome


class _Stopping(Exception):
    pass


def _fields_of(event: CloudEvent) -> dict[str, Any]:
    """What a log line about this message names: its tenant, and the contract and
    application its data names (a contract's id is also the event's subject)."""
    data = event.data if isinstance(event.data, dict) else {}

    def named(value: Any) -> str | None:
        return value if isinstance(value, str) and 0 < len(value) <= 64 else None

    return {"tenant_id": event.tenantid, "contract_id": named(data.get("contract_id")) or event.subject,
            "application_id": named(data.get("application_id"))}


async def _settle(settlement: Awaitable[None]) -> None:
    """Ack or nack; if the channel died meanwhile the broker redelivers, and the inbox
    makes the second delivery a no-op."""
    try:
        await settlement
    except Exception as exc:
        log.warning("could not settle a message (%r); it will be redelivered", exc)
