"""One robust AMQP connection per service, and publishing that waits for the confirm.

The connection (shared/messaging/nodes.py) reconnects by itself after a broker restart or the
loss of a cluster node, to the next node, and restores channels and consumers. A publish the
broker did not take is sent again until PUBLISH_TIMEOUT_S; past that it raises, and the
caller decides (intake answers 503, the outbox relay retries later).
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection

from shared.backoff import Backoff
from shared.contracts import binding
from shared.contracts.envelope import CONTENT_TYPE
from shared.messaging import nodes
from shared.messaging.topology import Topology

log = logging.getLogger(__name__)
PUBLISH_TIMEOUT_S = 10.0
# What a publish may meet while a node goes away or a queue's leader moves: the connection
# lost, the channel not restored yet, a nack.
RETRIED_PUBLISH_ERRORS = (ConnectionError, aiormq.exceptions.ChannelInvalidStateError,
                          aio_pika.exceptions.ChannelInvalidStateError, aiormq.exceptions.DeliveryError)


class Broker:
    def __init__(self, url: str, topology: Topology, *, connection_name: str,
                 content_mode: binding.ContentMode = "structured"):
        self.url = url
        self.content_mode = content_mode  # how the CloudEvents it publishes travel
        # Every message says who published it; the broker refuses a `user_id` that is not
        # the connection's user, so a consumer can trust it (docs/architecture.md, "Security").
        self.user = nodes.user_of(url)
        self.topology = topology
        self.connection_name = connection_name
        self.connection: AbstractRobustConnection | None = None
        self._publisher: AbstractChannel | None = None
        self._exchanges: dict[str, AbstractExchange] = {}

    async def connect(self, stopping: asyncio.Event | None = None) -> None:
        """Connect, retrying with backoff until the broker answers. The topology is the
        provisioning step's to declare; a service only uses it."""
        backoff, attempt = Backoff(), 0
        while True:
            try:
                self.connection = await nodes.connect_robust(
                    self.url, start=attempt, client_properties={"connection_name": self.connection_name}
                )
                break
            except (OSError, aio_pika.exceptions.AMQPError) as exc:
                if stopping is not None and stopping.is_set():
                    raise
                delay, attempt = backoff.next(), attempt + 1  # the next attempt starts at the next node
                log.warning("broker not reachable (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
        # Confirms make publish() wait for the broker; returns make an unroutable
        # mandatory message an error instead of a silent drop.
        self._publisher = await self.connection.channel(publisher_confirms=True, on_return_raises=True)

    async def channel(self, prefetch: int) -> AbstractChannel:
        assert self.connection is not None, "connect() first"
        channel = await self.connection.channel()
        await channel.set_qos(prefetch_count=prefetch)
        return channel

    @property
    def is_ready(self) -> bool:
        return (
            self.connection is not None
            and not self.connection.is_closed
            and self._publisher is not None
            and not self._publisher.is_closed
        )

    async def answers(self, timeout: float) -> bool:
        """Whether the broker answers on this connection now: a channel opens and closes
        within `timeout`. A connection can look open on a broker that no longer answers."""
        if not self.is_ready or self.connection is None:
            return False
        try:
            async with asyncio.timeout(timeout):
                channel = await self.connection.channel()
                await channel.close()
        except Exception:
            return False
        return True

    async def publish_event(self, exchange: str, routing_key: str, event: bytes, *, message_id: str,
                            mandatory: bool = False) -> None:
        """Publish a CloudEvent, given as its structured JSON, in this broker's content mode."""
        wire = binding.write(event, self.content_mode)
        await self.publish(exchange, routing_key, wire.body, message_id=message_id, mandatory=mandatory,
                           headers=wire.headers or None, content_type=wire.content_type)

    async def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        message_id: str,
        mandatory: bool = False,
        headers: dict[str, Any] | None = None,
        content_type: str | None = CONTENT_TYPE,
    ) -> None:
        """Publish a persistent message and wait for the broker's confirm (docs/architecture.md, "Reliability")."""
        if self._publisher is None:
            raise ConnectionError("not connected to the broker")
        target = self._exchanges.get(exchange)
        if target is None:
            target = self._exchanges[exchange] = await self._publisher.get_exchange(exchange, ensure=False)
        message = aio_pika.Message(
            body,
            content_type=content_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message_id,
            headers=headers,
            user_id=self.user,
        )
        # Until the deadline, a publish the broker did not take is sent again: the node went
        # away (the connection moves to another one) or a queue refused it for a moment (a
        # nack while its leader moves). A message sent twice this way has the same id, and
        # consumers' inboxes absorb the second. A returned (unroutable) one is not retried.
        loop = asyncio.get_running_loop()
        deadline, backoff = loop.time() + PUBLISH_TIMEOUT_S, Backoff(first=0.05, ceiling=1.0)
        while True:
            try:
                await target.publish(message, routing_key, mandatory=mandatory,
                                     timeout=max(deadline - loop.time(), 0.01))
                return
            except RETRIED_PUBLISH_ERRORS as exc:
                delay = backoff.next()
                if isinstance(exc, aiormq.exceptions.PublishError) or loop.time() + delay >= deadline:
                    raise
                log.info("publish of %s not taken (%r); sending it again in %.2fs", message_id, exc, delay)
                await asyncio.sleep(delay)

    async def close(self) -> None:
        if self.connection is not None:
            await self.connection.close()
