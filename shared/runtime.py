"""What every service process has: a database pool, a broker connection, consumers, an
outbox relay, its public HTTP server (the API, /healthz, /readyz), an internal one for
operators (/metrics, /healthz, /readyz: never exposed to tenants), and a graceful stop.

A service does no provisioning work at start-up: it waits until its schemas are at the
versions it was built with and its queues exist, saying so in its log and answering /readyz
503 meanwhile, then starts consuming. `Service.start()`/`stop()` are the same code in
production and in the tests; `run()` adds the process part: signals, logging, traces, exit code.
"""
from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, Protocol, TypeVar

import asyncpg
import uvloop
from fastapi import FastAPI
from pydantic import BaseModel
from starlette.types import ASGIApp, Receive, Scope, Send

from shared import metrics, tenancy
from shared.backoff import Backoff
from shared.boundary import Boundary
from shared.clock import Clock, utc_now
from shared.config import DEFAULT_RETRY_DELAYS_S, ConsumerSettings, ProcessSettings, ServiceSettings
from shared.db.migrate import missing
from shared.db.pool import Connection, create_pool
from shared.http import openapi
from shared.http.errors import error_response, install_error_handlers
from shared.http.observe import Observe
from shared.http.probes import Probes
from shared.http.server import HttpServer
from shared.messaging.broker import Broker
from shared.messaging.consumer import Consumer, QueueMissing
from shared.messaging.inbox import Inbox
from shared.messaging.outbox import Outbox, OutboxRelay, Outgoing, Pending
from shared.messaging.provenance import Relays
from shared.messaging.topology import Topology
from shared.messaging.unit_of_work import Addressing, UnitOfWork
from shared.observability import logs, tracing
from shared.observability.tracing import current_traceparent

log = logging.getLogger(__name__)
INBOX_PRUNE_INTERVAL_S = 3600.0
WAITING_LOG_INTERVAL_S = 30.0  # how often a service waiting for provisioning says so again
S = TypeVar("S", bound=ServiceSettings)


class Service:
    def __init__(self, boundary: Boundary, settings: ServiceSettings, *, deps: Any = None, clock: Clock = utc_now):
        self.boundary = boundary
        self.name = boundary.name
        self.settings = settings
        self.port, self.metrics_port = settings.port, settings.metrics_port
        consuming = settings if isinstance(settings, ConsumerSettings) else None
        if boundary.subscribers and consuming is None:
            raise TypeError(f"{self.name} consumes: its settings must be ConsumerSettings")
        self.topology = Topology(settings.topology_prefix,
                                 consuming.retry_delays_s if consuming else DEFAULT_RETRY_DELAYS_S)
        # The prefix tells apart stacks sharing a broker (as seen in `rabbitmqctl list_connections`).
        self.broker = Broker(settings.amqp_url, self.topology, connection_name=f"{settings.topology_prefix}{self.name}",
                             content_mode=settings.cloudevents_mode)
        self._pool: asyncpg.Pool | None = None
        self.app = FastAPI(title=f"arcserve-licensing {self.name}", version="1", redoc_url=None)
        openapi.install(self.app, f"The {self.name} service of arcserve-licensing: Bearer API keys, JSON, errors as {{code, message}}.")
        install_error_handlers(self.app)
        self.app.add_middleware(_UntilStarted, service=self)
        self.app.add_middleware(Observe, service=self.name)
        tracing.configure(self.name, settings.traces_exporter)
        tracing.instrument(self.app)
        self.probes = Probes(self.name, self.ready, self.wedged, self._read_at_scrape)
        self.probes.add_to(self.app)
        schema = boundary.schema.name if boundary.schema and boundary.schema.messaging else None
        self.inbox = Inbox(schema) if schema else None
        self.outbox = Outbox(schema) if schema else None
        self._consumers: list[Consumer] = []
        if consuming is not None and boundary.subscribers:
            relays = Relays(lambda: tenancy.relays(self.pool))
            assert self.inbox is not None and self.outbox is not None, f"{self.name} consumes but owns no schema"
            for subscriber in boundary.subscribers:
                uow = UnitOfWork(subscriber.name, lambda: self.pool, self.inbox, self.outbox,
                                 Addressing(boundary.source, self.topology), deliver=self._deliver)
                self._consumers.append(Consumer(
                    self.broker, subscriber, uow, deps=deps, clock=clock,
                    prefetch=consuming.prefetch, batch=consuming.batch, relays=relays,
                ))
        self._started = False
        self._relay: OutboxRelay | None = None
        self._relay_task: asyncio.Task[None] | None = None
        self._housekeeping: asyncio.Task[None] | None = None
        self._server: HttpServer | None = None
        self._operator_server: HttpServer | None = None
        self.stopping = asyncio.Event()
        self.on_stop: list[Callable[[], Awaitable[None]]] = []  # once HTTP is done (e.g. a listener to close)
        self._jobs: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {}
        self._job_tasks: list[asyncio.Task[None]] = []
        self._scrape_reads: list[Callable[[asyncpg.Pool], Coroutine[Any, Any, None]]] = []

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:  # HTTP answers before the database does: say "not yet" (503)
            raise ConnectionError(f"{self.name} has no database connection yet")
        return self._pool

    async def start(self) -> None:
        await self._start_http()
        self._pool = await create_pool(self.settings.database_url, self.settings.db_pool_size, self.stopping)
        await self._until(self._schemas_missing, "its database schemas at the versions it was built with")
        await self.broker.connect(self.stopping)
        if self.outbox is not None:  # before the consumers, whose commits it delivers
            self._relay = OutboxRelay(self.pool, self.broker, self.outbox, service=self.name)
        await self._until(self._queues_missing, "its queues on the broker")
        if self._relay is not None:  # its poll once the topology is there
            self._relay_task = asyncio.create_task(self._relay.run(), name=f"{self.name}-relay")
        if self._consumers:
            self._housekeeping = asyncio.create_task(self._prune_inbox(), name=f"{self.name}-inbox-pruning")
        self._job_tasks = [asyncio.create_task(job(), name=f"{self.name}-{name}") for name, job in self._jobs.items()]
        self._started = True
        log.info("%s ready on port %d", self.name, self.bound_port)

    async def _until(self, missing: Callable[[], Awaitable[str | None]], what: str) -> None:
        """Wait, not ready, until `missing()` finds nothing missing, saying what is (the
        provisioning step has not run, or not to this version)."""
        backoff, said_at = Backoff(first=0.2, ceiling=5.0), -WAITING_LOG_INTERVAL_S
        while (problem := await missing()) is not None:
            if self.stopping.is_set():
                raise asyncio.CancelledError
            now = time.monotonic()
            if now - said_at >= WAITING_LOG_INTERVAL_S:
                log.warning("%s is not ready: waiting for %s: %s; run the provisioning step "
                            "(make migrate, or python -m services.provisioning)", self.name, what, problem)
                said_at = now
            await asyncio.sleep(backoff.next())

    async def _schemas_missing(self) -> str | None:
        try:
            async with self.pool.acquire() as conn:
                for schema in self.boundary.schemas:
                    if versions := await missing(conn, schema):
                        return f"schema {schema.name} lacks {', '.join(sorted(versions))}"
        except asyncpg.InsufficientPrivilegeError as exc:
            return f"no access ({exc})"
        return None

    async def _queues_missing(self) -> str | None:
        for consumer in self._consumers:
            if consumer.running:
                continue
            try:
                await consumer.start()
            except QueueMissing as exc:
                return str(exc)
        return None

    async def stop(self) -> None:
        """Drain: finish HTTP requests in hand, finish messages in hand, publish what the
        outbox still holds, then close. Unacked messages return to their queues."""
        self.stopping.set()
        deadline = asyncio.get_running_loop().time() + self.settings.drain_timeout_s

        def left() -> float:
            return max(0.1, deadline - asyncio.get_running_loop().time())

        if self._server is not None:
            await self._server.stop()
        for close in self.on_stop:
            await close()
        if self._housekeeping is not None:
            self._housekeeping.cancel()
        for task in self._job_tasks:  # a job's transaction in hand rolls back; its work is picked up again
            task.cancel()
        await asyncio.gather(*self._job_tasks, return_exceptions=True)
        await asyncio.gather(*(consumer.stop(left()) for consumer in self._consumers))
        if self._relay is not None and self._relay_task is not None:
            self._relay.stop()
            try:
                if not self._relay_task.done():  # (one that died made /healthz fail: nothing to wait for)
                    await asyncio.wait_for(self._relay_task, timeout=left())
            except TimeoutError:
                log.warning("%s: outbox not flushed before the drain timeout; it is kept for later", self.name)
        await self.broker.close()
        if self._pool is not None:
            try:
                await asyncio.wait_for(self._pool.close(), timeout=left())
            except TimeoutError:
                self._pool.terminate()  # a handler outlived the drain; its transaction rolls back
        if self._operator_server is not None:  # last: probes and scrapes see the drain to its end
            await self._operator_server.stop()
        log.info("%s stopped", self.name)

    def add_job(self, name: str, job: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run `job` (a loop of the service's own timed work, e.g. the fulfilment simulator)
        once the service has started, until it stops; /healthz fails if it ends."""
        assert not self._started, f"{self.name}: jobs are added before start"
        self._jobs[name] = job

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """A unit of work no message started (a job's): its writes and what it publishes
        commit together, through the service's outbox, and go out at once after the commit."""
        assert self.outbox is not None, f"{self.name} owns no outbox"
        assert self._relay is not None, "a transaction publishes once the service has started"
        addressing = Addressing(self.boundary.source, self.topology)
        async with self.pool.acquire() as conn, conn.transaction():
            work = Transaction(conn, addressing)
            yield work
            written = await self.outbox.enqueue(conn, work.published)
        if written:
            await self._relay.deliver(written)
        for effect in work.committed:
            try:
                effect()
            except Exception:  # what is committed stays done
                log.exception("an after-commit step of %s failed", self.name)

    async def _deliver(self, written: list[Pending]) -> None:
        assert self._relay is not None, "consumers start after the relay"
        await self._relay.deliver(written)

    async def _prune_inbox(self) -> None:
        """Forget handled message ids after the retention period; a redelivery can only come
        long before that (retries end within minutes), a replay from the dead-letter queue
        meets the handlers' own checks (application ids, row states)."""
        assert self.inbox is not None and isinstance(self.settings, ConsumerSettings)
        retention_days = self.settings.inbox_retention_days
        while True:
            try:
                async with self.pool.acquire() as conn:
                    deleted = await self.inbox.prune(conn, retention_days)
                if deleted:
                    log.info("%s: pruned %d inbox entries", self.name, deleted)
            except Exception as exc:
                log.warning("%s: inbox pruning failed (%r); trying again later", self.name, exc)
            await asyncio.sleep(INBOX_PRUNE_INTERVAL_S)

    @property
    def started(self) -> bool:
        return self._started

    @property
    def bound_port(self) -> int:
        assert self._server is not None
        return self._server.bound_port

    @property
    def bound_metrics_port(self) -> int:
        assert self._operator_server is not None
        return self._operator_server.bound_port

    async def ready(self) -> bool:
        """Started, and now: the broker answers an AMQP round trip, the database a query, and
        every schema is at the version this code was built with (a restore or a roll-back of
        the database can leave it behind)."""
        if not self._started or self._pool is None or not await self.broker.answers(timeout=2):
            return False
        try:
            async with asyncio.timeout(2):
                return await self._schemas_missing() is None
        except Exception:
            return False

    def wedged(self) -> str | None:
        """What has died that the process cannot work without; a restart is what helps."""
        for task in (self._relay_task, self._housekeeping, *self._job_tasks):
            if task is not None and task.done() and not self.stopping.is_set():
                return f"{task.get_name()} ended"
        return None

    def on_scrape(self, read: Callable[[asyncpg.Pool], Coroutine[Any, Any, None]]) -> None:
        """Have `read` set gauges from the service's tables whenever metrics are scraped."""
        self._scrape_reads.append(read)

    async def _read_at_scrape(self) -> None:
        await self._read_outbox()
        if self._pool is not None:
            for read in self._scrape_reads:
                await read(self._pool)

    async def _read_outbox(self) -> None:
        """The outbox's backlog and the age of its oldest row, read when metrics are scraped."""
        if self.outbox is None or self._pool is None:
            return
        row = await self._pool.fetchrow(
            f"SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0) FROM {self.outbox.table}")
        assert row is not None
        metrics.OUTBOX_BACKLOG.labels(self.name).set(row[0])
        metrics.OUTBOX_OLDEST_AGE.labels(self.name).set(float(row[1]))

    async def _start_http(self) -> None:
        self._operator_server = HttpServer(self.probes.operator_app(), host=self.settings.host, port=self.metrics_port,
                                           name=f"{self.name}-operator", grace_s=1)
        await self._operator_server.start()
        self._server = HttpServer(self.app, host=self.settings.host, port=self.port, name=self.name,
                                  grace_s=self.settings.drain_timeout_s)
        await self._server.start()


class Transaction:
    """What a job's unit of work writes with (`conn`), publishes (`publish`) and does once
    committed (`after_commit`)."""

    def __init__(self, conn: Connection, addressing: Addressing):
        self.conn = conn
        self._addressing = addressing
        self.published: list[Outgoing] = []
        self.committed: list[Callable[[], None]] = []

    def publish(self, message: BaseModel, *, tenant_id: str, subject: str | None = None) -> None:
        """Publish `message` (a catalogue model) for `tenant_id` when the unit of work commits,
        in the trace in hand."""
        self.published.append(self._addressing.outgoing_for(message, tenant_id, subject, current_traceparent()))

    def after_commit(self, effect: Callable[[], None]) -> None:
        """Run `effect` once committed (a log line, a metric of what was done)."""
        self.committed.append(effect)


class _UntilStarted:
    """Up, but not provisioned yet (or not connected): nothing /v1 could answer is right."""

    def __init__(self, app: ASGIApp, service: Service):
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.service.started and scope["path"].startswith("/v1"):
            answer = error_response(503, "unavailable", f"{self.service.name} is starting; retry later")
            await answer(scope, receive, send)
            return
        await self.app(scope, receive, send)


class Runnable(Protocol):
    """What `run_process` runs: a service, or the portal."""

    name: str
    stopping: asyncio.Event

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def run(build: Callable[[S], Service], boundary: Boundary, model: type[S]) -> None:
    """Run a service, with its settings (`model`) from the environment, until SIGTERM or
    SIGINT, then drain and exit 0."""
    settings = model.from_env()
    run_process(boundary.name, lambda: build(settings), settings)


def _freeze_start_up_heap() -> None:
    """What start-up made (modules, models, schemas, pools) lives as long as the process: out
    of the collector's sight. Each full collection otherwise walks all of it, and stops the
    event loop for 40–110 ms mid-load (measured on every service, issue 25), which every
    message in hand waits out; frozen, a full collection takes under 1 ms."""
    gc.collect()
    gc.freeze()


def run_process(name: str, make: Callable[[], Runnable], settings: ProcessSettings) -> None:
    """The process part: logs and traces, then `make()`'s start, until SIGTERM or SIGINT,
    then its stop (a drain), the traces flushed, and exit 0."""
    logs.configure(name, settings.log_level, settings.log_format)
    tracing.configure(name, settings.traces_exporter)

    async def main() -> None:
        service = make()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, service.stopping.set)
        starting = asyncio.create_task(service.start())
        stop_requested = asyncio.create_task(service.stopping.wait())
        await asyncio.wait({starting, stop_requested}, return_when=asyncio.FIRST_COMPLETED)
        if starting.done():
            starting.result()  # a start-up error ends the process with its traceback
            _freeze_start_up_heap()
            await stop_requested
        else:
            starting.cancel()
            with contextlib.suppress(BaseException):
                await starting
        log.info("%s: stop requested, draining", service.name)
        await service.stop()

    try:
        # uvloop: the same asyncio, with the loop and its sockets in C (issue 10's measurements).
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(main())
    finally:
        tracing.shutdown()
