"""The consume loop every service shares: decode, route, handle, ack only after the
effect is durable (DESIGN.md §5). What happens to a message that does not succeed:

| what went wrong                                   | what happens                                |
|---------------------------------------------------|---------------------------------------------|
| not JSON / not a CloudEvent / unknown type /      | dead-lettered at once with the reason       |
| the handler raised PoisonMessage                  |                                             |
| the database is down (an outage)                  | retried in place, with backoff, until it is |
|                                                   | back; nothing is acked meanwhile            |
| a lost race between transactions (a conflict)    | retried in place a few times                |
| RetryLater, or any other error                    | delayed retry queues (1 s, 4 s, 16 s, 60 s  |
|                                                   | by default: ARCSERVE_RETRY_DELAYS_S),       |
|                                                   | then dead-lettered with the last reason     |

Moving a message (to a retry or dead-letter queue) is a publish with a confirm, then the
ack: a crash in between delivers it twice, and the inbox absorbs the second. The quorum
queue's delivery limit is the backstop for a message that crashes its consumer's process.
`stop()` cancels the consumer and waits for the messages in hand (drain on SIGTERM).
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from shared import metrics
from shared.backoff import Backoff
from shared.contracts.envelope import CloudEvent, PoisonMessage, RetryLater, parse_event
from shared.db.pool import is_conflict, is_outage
from shared.messaging.broker import Broker
from shared.messaging.topology import QueueSpec

log = logging.getLogger(__name__)

Handler = Callable[[CloudEvent], Awaitable[None]]

# Headers kept on every dead letter (read by the operator tooling, services/tools/dlq.py).
REASON_HEADER = "x-arcserve-reason"
ORIGINAL_EXCHANGE_HEADER = "x-arcserve-original-exchange"
ORIGINAL_ROUTING_KEY_HEADER = "x-arcserve-original-routing-key"
DELIVERY_COUNT_HEADER = "x-arcserve-delivery-count"
# How many delayed retries a message has had (set on the copies sent to retry queues).
ATTEMPT_HEADER = "x-arcserve-attempt"
CONFLICT_RETRIES = 5


class Consumer:
    def __init__(self, broker: Broker, spec: QueueSpec, routes: Mapping[str, Handler], *, prefetch: int):
        self.broker = broker
        self.spec = spec
        self.queue_name = broker.topology.queue(spec)
        self.routes = routes
        self.prefetch = prefetch
        self._channel: AbstractChannel | None = None
        self._tag: str | None = None
        self._in_hand: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        self._channel = await self.broker.channel(self.prefetch)
        queue = await self._channel.get_queue(self.queue_name)
        self._tag = await queue.consume(self._on_message)

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

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._in_hand.add(task)
        try:
            await self._process(message)
        finally:
            self._in_hand.discard(task)

    async def _process(self, message: AbstractIncomingMessage) -> None:
        try:
            event = parse_event(message.body)
            handler = self.routes.get(event.type)
            if handler is None:
                raise PoisonMessage(f"unknown_type: {event.type!r} is not handled by {self.spec.name}")
            await self._handle(handler, event)
        except PoisonMessage as poison:
            await self._move(message, reason=poison.reason, dead=True)
        except RetryLater as later:
            await self._move(message, reason=later.reason, dead=False)
        except _Stopping:
            return  # unacked: the broker gives it to the next consumer
        except Exception as exc:
            log.exception("handler failed on %s (message %s)", self.queue_name, message.message_id)
            await self._move(message, reason=f"handler_error: {exc!r}", dead=False)
        else:
            metrics.MESSAGES.labels(self.spec.name, "handled").inc()
            await _settle(message.ack())

    async def _handle(self, handler: Handler, event: CloudEvent) -> None:
        backoff, conflicts = Backoff(), 0
        while True:
            try:
                await handler(event)
                return
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

    async def _move(self, message: AbstractIncomingMessage, *, reason: str, dead: bool) -> None:
        """Send the message to its next delayed retry, or to the dead-letter queue."""
        headers: dict[str, Any] = dict(message.headers or {})
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
            exchange, routing_key, outcome = topology.dead_letter, self.queue_name, "dead_lettered"
            log.warning("dead-lettering message %s from %s: %s", message.message_id, self.queue_name, reason)
        else:
            headers[ATTEMPT_HEADER] = attempt
            delay = topology.retry_delays_s[attempt - 1]
            exchange, routing_key, outcome = "", topology.retry_queue(self.spec, delay), "retry_scheduled"
            log.info("retrying message %s of %s in %gs: %s", message.message_id, self.queue_name, delay, reason)
        try:
            await self.broker.publish(
                exchange, routing_key, message.body, message_id=message.message_id or "", headers=headers, mandatory=True
            )
        except Exception:
            log.exception("could not move message %s; it stays in %s", message.message_id, self.queue_name)
            await _settle(message.nack(requeue=True))
            return
        metrics.MESSAGES.labels(self.spec.name, outcome).inc()
        await _settle(message.ack())


class _Stopping(Exception):
    pass


async def _settle(settlement: Awaitable[None]) -> None:
    """Ack or nack; if the channel died meanwhile the broker redelivers, and the inbox
    makes the second delivery a no-op."""
    try:
        await settlement
    except Exception as exc:
        log.warning("could not settle a message (%r); it will be redelivered", exc)
