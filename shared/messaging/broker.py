"""One robust AMQP connection per service, and publishing that waits for the confirm.

aio-pika's robust connection reconnects by itself after a broker restart and restores
channels and consumers; a publish that fails meanwhile raises, and the caller decides
(intake answers 503, the outbox relay retries later).
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import unquote, urlsplit

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection

from shared.backoff import Backoff
from shared.contracts import binding
from shared.contracts.envelope import CONTENT_TYPE
from shared.messaging.topology import Topology

log = logging.getLogger(__name__)
PUBLISH_TIMEOUT_S = 10.0


class Broker:
    def __init__(self, url: str, topology: Topology, *, connection_name: str,
                 content_mode: binding.ContentMode = "structured"):
        self.url = url
        self.content_mode = content_mode  # how the CloudEvents it publishes travel
        # Every message says who published it; the broker refuses a `user_id` that is not
        # the connection's user, so a consumer can trust it (docs/architecture.md, "Security").
        self.user = unquote(urlsplit(url).username or "") or "guest"
        self.topology = topology
        self.connection_name = connection_name
        self.connection: AbstractRobustConnection | None = None
        self._publisher: AbstractChannel | None = None
        self._exchanges: dict[str, AbstractExchange] = {}

    async def connect(self, stopping: asyncio.Event | None = None) -> None:
        """Connect, retrying with backoff until the broker answers. The topology is the
        provisioning step's to declare; a service only uses it."""
        backoff = Backoff()
        while True:
            try:
                self.connection = await aio_pika.connect_robust(
                    self.url, client_properties={"connection_name": self.connection_name}
                )
                break
            except (OSError, aio_pika.exceptions.AMQPError) as exc:
                if stopping is not None and stopping.is_set():
                    raise
                delay = backoff.next()
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
        await target.publish(message, routing_key, mandatory=mandatory, timeout=PUBLISH_TIMEOUT_S)

    async def close(self) -> None:
        if self.connection is not None:
            await self.connection.close()
