"""The consume loop every service shares: decode, route, handle, ack only after the
effect is durable (DESIGN.md §5).

- A message that is not JSON, not a CloudEvent, of an unknown type, or that its handler
  declares poison (`PoisonMessage`) is published to the dead-letter exchange with its
  reason and original routing, confirmed, then acked: it never loops.
- A transient fault (database or broker down) is retried in place with bounded
  exponential backoff; nothing is acked meanwhile.
- Any other error nacks with requeue; the quorum queue's delivery limit dead-letters a
  message that keeps failing, so it cannot block the queue for ever.
- `stop()` cancels the consumer and waits for the messages in hand (drain on SIGTERM).
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from shared import metrics
from shared.contracts.envelope import CloudEvent, PoisonMessage, parse_event
from shared.db.pool import is_transient
from shared.messaging.broker import Broker
from shared.messaging.topology import QueueSpec

log = logging.getLogger(__name__)

Handler = Callable[[CloudEvent], Awaitable[None]]

# Headers kept on every dead letter (read by the operator tooling).
REASON_HEADER = "x-arcserve-reason"
ORIGINAL_EXCHANGE_HEADER = "x-arcserve-original-exchange"
ORIGINAL_ROUTING_KEY_HEADER = "x-arcserve-original-routing-key"
DELIVERY_COUNT_HEADER = "x-arcserve-delivery-count"
MAX_BACKOFF_S = 5.0


class Consumer:
    def __init__(
        self,
        broker: Broker,
        spec: QueueSpec,
        routes: Mapping[str, Handler],
        *,
        prefetch: int,
    ):
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
            await self._handle_with_retry(handler, event)
        except PoisonMessage as poison:
            await self._dead_letter(message, poison.reason)
            return
        except _GaveUp:
            return  # stopping mid-retry: unacked, the broker redelivers it
        except Exception:
            log.exception("handler failed on %s (message %s); requeued", self.queue_name, message.message_id)
            metrics.MESSAGES.labels(self.spec.name, "failed").inc()
            await _settle(message.nack(requeue=True))
            return
        metrics.MESSAGES.labels(self.spec.name, "handled").inc()
        await _settle(message.ack())

    async def _handle_with_retry(self, handler: Handler, event: CloudEvent) -> None:
        delay = 0.1
        while True:
            try:
                await handler(event)
                return
            except Exception as exc:
                if not is_transient(exc):
                    raise
                if self._stopping.is_set():
                    raise _GaveUp() from exc
                log.warning("transient fault on %s (%r); retrying in %.1fs", self.queue_name, exc, delay)
                metrics.MESSAGES.labels(self.spec.name, "retried").inc()
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF_S)

    async def _dead_letter(self, message: AbstractIncomingMessage, reason: str) -> None:
        log.warning("dead-lettering message %s from %s: %s", message.message_id, self.queue_name, reason)
        headers = dict(message.headers or {})
        headers.update(
            {
                REASON_HEADER: reason[:1000],
                ORIGINAL_EXCHANGE_HEADER: message.exchange or "",
                ORIGINAL_ROUTING_KEY_HEADER: message.routing_key or "",
                DELIVERY_COUNT_HEADER: int(headers.get("x-delivery-count", 0) or 0) + 1,
            }
        )
        try:
            await self.broker.publish(
                self.broker.topology.dead_letter,
                self.queue_name,
                message.body,
                message_id=message.message_id or "",
                headers=headers,
                mandatory=True,
            )
        except Exception:
            log.exception("could not dead-letter message %s; requeued", message.message_id)
            await _settle(message.nack(requeue=True))
            return
        metrics.MESSAGES.labels(self.spec.name, "dead_lettered").inc()
        await _settle(message.ack())


class _GaveUp(Exception):
    pass


async def _settle(settlement: Awaitable[None]) -> None:
    """Ack or nack; if the channel died meanwhile the broker redelivers, and the inbox
    makes the second delivery a no-op."""
    try:
        await settlement
    except Exception as exc:
        log.warning("could not settle a message (%r); it will be redelivered", exc)
