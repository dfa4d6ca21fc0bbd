"""Where the tests find RabbitMQ and Postgres.

- `AMQP_URL` and `DATABASE_URL` set: those servers (`make test` and CI use the machine's
  own; tests isolate themselves by database and topology prefix).
- Otherwise containers, started by testcontainers through the engine that `DOCKER_HOST`
  names: a Docker engine, or Podman's compatible API (`make test-containers` sets it up).
  The images come from `ARCSERVE_TEST_RABBITMQ_IMAGE` and `ARCSERVE_TEST_POSTGRES_IMAGE`:
  the official ones by default, images built from Debian's packages under Podman.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import asyncpg

from shared.messaging import nodes
from shared.messaging.topology import EXCHANGES, QueueSpec, Topology
from tests.support import leftovers

RABBITMQ_IMAGE = os.environ.get("ARCSERVE_TEST_RABBITMQ_IMAGE") or "rabbitmq:3.13-management"
POSTGRES_IMAGE = os.environ.get("ARCSERVE_TEST_POSTGRES_IMAGE") or "postgres:16"
STARTUP_DEADLINE_S = 120.0  # containers: the broker boots in about 10 s here
ANSWER_DEADLINE_S = 30.0  # servers that should already run

# Runs `rabbitmqctl ARGS…` against the test broker: (exit code, output).
Rabbitmqctl = Callable[[list[str]], tuple[int, str]]


@dataclass(frozen=True)
class Servers:
    amqp_url: str
    admin_url: str  # a database URL with the right to create databases
    _rabbitmqctl: Rabbitmqctl
    management_url: str = ""  # the broker's management API; default: port 15672 of its host

    def __iter__(self) -> Iterator[str]:  # `amqp_url, admin_url = servers`
        return iter((self.amqp_url, self.admin_url))

    async def rabbitmqctl(self, *args: str) -> str:
        """What an operator sees through rabbitmqctl on the test broker; fails loudly."""
        code, out = await asyncio.to_thread(self._rabbitmqctl, list(args))
        assert code == 0, f"rabbitmqctl {' '.join(args)} failed ({code}): {out}"
        return out


def _local_rabbitmqctl(args: list[str]) -> tuple[int, str]:
    done = subprocess.run(["rabbitmqctl", *args], capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout if done.returncode == 0 else done.stderr


@contextlib.asynccontextmanager
async def servers(sweep_first: bool = True) -> AsyncIterator[Servers]:
    """The broker and database for the whole run, answering (an AMQP handshake and a
    database login, within a deadline), with what killed earlier runs left swept away."""
    amqp, database = os.environ.get("AMQP_URL"), os.environ.get("DATABASE_URL")
    async with contextlib.AsyncExitStack() as stack:
        if amqp and database:
            infrastructure = Servers(amqp, database, _local_rabbitmqctl, os.environ.get("RABBITMQ_MANAGEMENT_URL", ""))
            deadline_s = ANSWER_DEADLINE_S
        elif amqp or database:
            raise RuntimeError("set both AMQP_URL and DATABASE_URL, or neither (then the tests start containers)")
        else:
            # Starting containers blocks; it happens once, before anything else runs.
            infrastructure, deadline_s = stack.enter_context(_containers()), STARTUP_DEADLINE_S
        await _wait_until_answering(infrastructure.amqp_url, infrastructure.admin_url, deadline_s)
        if sweep_first:
            await leftovers.sweep(infrastructure.rabbitmqctl, infrastructure.amqp_url, infrastructure.admin_url,
                                  management_url=infrastructure.management_url)
        yield infrastructure


@contextlib.contextmanager
def _containers() -> Iterator[Servers]:
    try:
        import docker

        docker.from_env(timeout=5).ping()
    except Exception as exc:
        raise RuntimeError(
            "AMQP_URL and DATABASE_URL are not set and no container engine answers "
            f"({exc.__class__.__name__}). Point them at a RabbitMQ and a Postgres (`make test` uses the "
            "local ones), or run `make test-containers`, which sets up Podman where Docker is missing."
        ) from None
    from testcontainers.core.container import DockerContainer

    user, password = "arcserve", secrets.token_hex(12)  # `guest` may only log in from loopback
    rabbit = (
        DockerContainer(RABBITMQ_IMAGE)
        .with_exposed_ports(5672, 15672)
        .with_env("RABBITMQ_DEFAULT_USER", user)
        .with_env("RABBITMQ_DEFAULT_PASS", password)
    )
    postgres = (
        DockerContainer(POSTGRES_IMAGE)
        .with_exposed_ports(5432)
        .with_env("POSTGRES_USER", user)
        .with_env("POSTGRES_PASSWORD", password)
        .with_env("POSTGRES_DB", "postgres")
    )
    with contextlib.ExitStack() as stack:
        stack.enter_context(rabbit)
        stack.enter_context(postgres)
        amqp = f"amqp://{user}:{password}@{rabbit.get_container_host_ip()}:{rabbit.get_exposed_port(5672)}/"
        database = f"postgresql://{user}:{password}@{postgres.get_container_host_ip()}:{postgres.get_exposed_port(5432)}/postgres"

        def rabbitmqctl(args: list[str]) -> tuple[int, str]:
            code, out = rabbit.get_wrapped_container().exec_run(["rabbitmqctl", *args])
            return code, out.decode(errors="replace")

        management = f"http://{rabbit.get_container_host_ip()}:{rabbit.get_exposed_port(15672)}"
        yield Servers(amqp, database, rabbitmqctl, management)


async def _wait_until_answering(amqp_url: str, database_url: str, deadline_s: float) -> None:
    """Wait for an AMQP handshake and a database login, not merely open ports: a broker
    can accept TCP long before it speaks AMQP, or never (out of file handles)."""
    deadline = time.monotonic() + deadline_s
    last: Exception | None = None
    for attempt, url in ((_amqp_handshake, amqp_url), (_database_login, database_url)):
        while True:
            try:
                await attempt(url)
                break
            except Exception as exc:
                last = exc
            if time.monotonic() > deadline:
                raise RuntimeError(f"{attempt.__doc__} did not succeed within {deadline_s:g}s: {last}")
            await asyncio.sleep(0.5)


class NoHandshake(Exception):
    pass


async def _amqp_handshake(url: str) -> None:
    """an AMQP handshake with the broker"""
    try:
        connection = await aio_pika.connect(url, timeout=5)
    except TimeoutError:
        parts = urlsplit(url)
        with contextlib.suppress(OSError), socket.create_connection((parts.hostname, parts.port or 5672), timeout=2):
            raise NoHandshake(
                f"{parts.hostname}:{parts.port or 5672} accepts TCP connections but does not answer AMQP "
                "(out of file handles? see README, Troubleshooting)"
            ) from None
        raise
    await connection.close()


async def _database_login(url: str) -> None:
    """a login to the database"""
    conn = await asyncpg.connect(url, timeout=5)
    await conn.close()


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


async def create_database(admin_url: str, name: str | None = None) -> str:
    """A fresh database of its own; returns its URL."""
    name = name or leftovers.new_database_name()
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


async def delete_topology(amqp_url: str, topology: Topology, specs: Sequence[QueueSpec],
                          also: Sequence[str] = ()) -> None:
    """Remove every queue and exchange a test stack has under its prefix (and the queues
    `also` names)."""
    connection = await nodes.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        for queue in [*(name for spec in specs for name in topology.queues_of(spec)), *also]:
            await channel.queue_delete(queue)
        for exchange in [*(topology.name(e) for e in EXCHANGES), *(e for spec in specs for e in topology.exchanges_of(spec))]:
            await channel.exchange_delete(exchange)
