"""tests/support/proxy.py against the real services: what a client of Postgres or RabbitMQ sees
when the proxy cuts the network (connections reset, new ones refused) or blackholes it (the
connection stays up, nothing moves), and that it gets back on its feet afterwards."""
from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import aio_pika
import aiormq
import asyncpg
import pytest

from tests.support.proxy import FaultProxy

DEADLINE_S = 10.0
POLL_S = 0.05

# What a client may see when its connection is reset: asyncpg raises its own
# ConnectionDoesNotExistError for a request in flight, InterfaceError('connection is closed')
# once it has noticed, and the raw OSError (ConnectionResetError) from a connect.
PG_CONNECTION_ERRORS = (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError)


async def until_ok(action: Callable[[], Awaitable[Any]], what: str, timeout: float = DEADLINE_S) -> Any:
    """Retry `action` until it returns without raising; fail after `timeout` with the last error.
    (The short pause is the polling interval, not a synchronization.)"""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            return await action()
        except Exception as exc:  # any failure means "not yet"
            last = exc
        await asyncio.sleep(POLL_S)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last error {last!r}")


async def until_true(probe: Callable[[], bool], what: str, timeout: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(POLL_S)


@pytest.fixture
async def proxy_to() -> AsyncIterator[Callable[[str, int], Awaitable[FaultProxy]]]:
    """A factory of started proxies to a URL's host and port, all closed after the test."""
    made: list[FaultProxy] = []

    async def make(url: str, default_port: int) -> FaultProxy:
        parts = urlsplit(url)
        proxy = FaultProxy(parts.hostname or "127.0.0.1", parts.port or default_port)
        await proxy.start()
        made.append(proxy)
        return proxy

    yield make
    for proxy in made:
        await proxy.close()
        assert proxy.connections == 0


# ---- Postgres -----------------------------------------------------------------------------


async def test_asyncpg_cut_resets_open_connections_refuses_new_ones_and_restore_heals(
    infrastructure: tuple[str, str], proxy_to: Callable[[str, int], Awaitable[FaultProxy]]
) -> None:
    _, database_url = infrastructure
    proxy = await proxy_to(database_url, 5432)
    url = proxy.url_for(database_url)
    assert urlsplit(url).port == proxy.port and urlsplit(url).path == urlsplit(database_url).path

    marker = f"fault_proxy_{uuid.uuid4().hex[:8]}"
    direct = await asyncpg.connect(database_url)  # the observer, not through the proxy
    busy = await asyncpg.connect(url, server_settings={"application_name": marker})
    idle = await asyncpg.connect(url)
    healed: asyncpg.Connection | None = None
    try:
        assert await busy.fetchval("SELECT 1") == 1
        assert await idle.fetchval("SELECT 2") == 2
        assert proxy.connections == 2
        assert proxy.bytes_up > 0 and proxy.bytes_down > 0

        # A query in flight: wait until the server is really running it, then cut.
        in_flight = asyncio.create_task(busy.fetchval("SELECT pg_sleep(30)"))

        async def running() -> None:
            state = await direct.fetchval(
                "SELECT state FROM pg_stat_activity WHERE application_name = $1", marker
            )
            assert state == "active", state

        await until_ok(running, "the slow query to be running")

        started = time.monotonic()
        await proxy.cut()
        with pytest.raises(asyncpg.ConnectionDoesNotExistError):
            await asyncio.wait_for(in_flight, DEADLINE_S)
        assert time.monotonic() - started < 1.0, "cut() must not wait for the query to finish"
        assert proxy.connections == 0

        # The idle connection was reset too: its next query fails as a connection error.
        with pytest.raises(PG_CONNECTION_ERRORS):
            await asyncio.wait_for(idle.fetchval("SELECT 3"), DEADLINE_S)
        assert idle.is_closed() and busy.is_closed()

        # While cut, a new connection is reset during the handshake (fast, not a timeout).
        refused_before = proxy.refused
        with pytest.raises(PG_CONNECTION_ERRORS):
            await asyncpg.connect(url, timeout=DEADLINE_S)
        assert proxy.refused > refused_before
        assert proxy.connections == 0

        proxy.restore()
        healed = await asyncpg.connect(url, timeout=DEADLINE_S)
        assert await healed.fetchval("SELECT 4") == 4
        assert proxy.connections == 1
    finally:
        # The backend of the reset connection sleeps on: it only notices the client is gone
        # when it next writes, so end it rather than leave it for 30 s.
        await direct.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", marker
        )
        for conn in (healed, idle, busy, direct):
            if conn is not None:
                await conn.close(timeout=5)


# ---- RabbitMQ -----------------------------------------------------------------------------


async def _robust(url: str) -> aio_pika.abc.AbstractRobustConnection:
    # A short reconnect interval keeps the test fast; the default is 5 s.
    return await aio_pika.connect_robust(url, reconnect_interval=0.1, timeout=DEADLINE_S)


async def _queue(channel: aio_pika.abc.AbstractChannel) -> aio_pika.abc.AbstractQueue:
    # Not exclusive: an exclusive queue of the reset connection may still be held by the broker
    # when the robust channel re-declares it (RESOURCE_LOCKED). x-expires removes leftovers.
    return await channel.declare_queue(
        f"fault-proxy-{uuid.uuid4().hex[:12]}", auto_delete=False, arguments={"x-expires": 60_000}
    )


async def _publish(channel: aio_pika.abc.AbstractChannel, queue: str, body: bytes, timeout: float = 1.0) -> Any:
    """Publish with a confirm (the channel has publisher_confirms) and wait for it."""
    return await channel.default_exchange.publish(aio_pika.Message(body), routing_key=queue, timeout=timeout)


async def _drain(queue: aio_pika.abc.AbstractQueue, count: int) -> list[bytes]:
    """The next `count` message bodies of the queue, waiting for them within the deadline."""
    bodies: list[bytes] = []

    async def one() -> None:
        message = await queue.get(no_ack=True, fail=False, timeout=DEADLINE_S)
        assert message is not None, "queue still empty"
        bodies.append(message.body)

    for _ in range(count):
        await until_ok(one, f"message {len(bodies) + 1} of {count}")
    return bodies


async def test_robust_connection_reconnects_after_cut_and_restore(
    infrastructure: tuple[str, str], proxy_to: Callable[[str, int], Awaitable[FaultProxy]]
) -> None:
    amqp_url, _ = infrastructure
    proxy = await proxy_to(amqp_url, 5672)
    connection = await _robust(proxy.url_for(amqp_url))
    reconnected = asyncio.Event()
    connection.reconnect_callbacks.add(lambda *_: reconnected.set())
    try:
        channel = await connection.channel(publisher_confirms=True)
        queue = await _queue(channel)
        assert isinstance(await _publish(channel, queue.name, b"before"), aiormq.spec.Basic.Ack)
        accepted_before = proxy.accepted

        await proxy.cut()
        await until_true(lambda: not connection.connected.is_set(), "the client to notice the reset")
        with pytest.raises((aiormq.exceptions.AMQPError, ConnectionError, RuntimeError)):
            await _publish(channel, queue.name, b"while cut")
        # The robust connection keeps trying by itself; while cut, each attempt is reset.
        await until_true(lambda: proxy.refused > 0, "a reconnect attempt to be refused")

        proxy.restore()
        # Nobody calls reconnect(): the robust connection does it by itself, then the robust
        # channel re-opens (with confirms) and re-declares the queue.
        ack = await until_ok(lambda: _publish(channel, queue.name, b"after"), "a confirmed publish after restore")
        assert isinstance(ack, aiormq.spec.Basic.Ack)
        # reconnect_callbacks run after the channels are restored, so maybe after the publish.
        await until_true(reconnected.is_set, "the reconnect callbacks to run")
        assert proxy.accepted > accepted_before and proxy.connections == 1

        assert await _drain(queue, 2) == [b"before", b"after"]
        await queue.delete(if_unused=False, if_empty=False)
    finally:
        await connection.close()


async def test_blackhole_stalls_a_confirm_without_a_reset_and_the_connection_recovers(
    infrastructure: tuple[str, str], proxy_to: Callable[[str, int], Awaitable[FaultProxy]]
) -> None:
    amqp_url, _ = infrastructure
    proxy = await proxy_to(amqp_url, 5672)
    connection = await _robust(proxy.url_for(amqp_url))
    try:
        channel = await connection.channel(publisher_confirms=True)
        queue = await _queue(channel)
        await _publish(channel, queue.name, b"before")
        accepted_before = proxy.accepted

        proxy.blackhole(True)
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await _publish(channel, queue.name, b"held", timeout=1.0)
        assert time.monotonic() - started < 3.0
        # A silent partition: the client saw no reset, its connection is still "up".
        assert connection.connected.is_set() and not connection.is_closed
        assert proxy.connections == 1

        proxy.blackhole(False)
        ack = await until_ok(lambda: _publish(channel, queue.name, b"after"), "a confirmed publish after the blackhole")
        assert isinstance(ack, aiormq.spec.Basic.Ack)
        # The proxy holds bytes rather than dropping them, so the same connection recovered (no
        # reconnect) and the publish that timed out on the client did reach the broker: a
        # client-side timeout says nothing about whether the broker got the message.
        assert proxy.accepted == accepted_before
        assert await _drain(queue, 3) == [b"before", b"held", b"after"]
        await queue.delete(if_unused=False, if_empty=False)
    finally:
        await connection.close()
