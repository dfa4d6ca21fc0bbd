"""Where the tests find RabbitMQ and Postgres: `AMQP_URL` / `DATABASE_URL` when set, else
containers started by testcontainers when a Docker engine answers, else the local
defaults (the services a Debian machine runs on loopback)."""
from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import asyncpg

from shared.messaging.topology import Topology

LOCAL_AMQP = "amqp://guest:guest@127.0.0.1:5672/"
LOCAL_DATABASE = "postgresql://postgres@127.0.0.1:5432/test"


def _docker_available() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


@contextlib.contextmanager
def servers() -> Iterator[tuple[str, str]]:
    """(amqp_url, admin database url), for the whole test session."""
    amqp, database = os.environ.get("AMQP_URL"), os.environ.get("DATABASE_URL")
    if amqp and database:
        yield amqp, database
        return
    if _docker_available():
        from testcontainers.postgres import PostgresContainer
        from testcontainers.rabbitmq import RabbitMqContainer

        with contextlib.ExitStack() as stack:
            if not amqp:
                rabbit = stack.enter_context(RabbitMqContainer("rabbitmq:3.13"))
                amqp = f"amqp://guest:guest@{rabbit.get_container_host_ip()}:{rabbit.get_exposed_port(5672)}/"
            if not database:
                pg = stack.enter_context(PostgresContainer("postgres:16", driver=None))
                database = pg.get_connection_url()
            yield amqp, database
        return
    yield amqp or LOCAL_AMQP, database or LOCAL_DATABASE


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


async def create_database(admin_url: str) -> str:
    """A fresh database of its own; returns its URL."""
    name = f"arcserve_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return with_database(admin_url, name)


async def drop_database(admin_url: str, url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def delete_topology(amqp_url: str, topology: Topology) -> None:
    """Remove every queue and exchange a test stack declared under its prefix."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        for queue in topology.all_queues():
            await channel.queue_delete(queue)
        for exchange in (topology.applications, topology.events, topology.dead_letter):
            await channel.exchange_delete(exchange)
