"""The one-hop relay (issue 10, "The floor" and "A peer"): consume a `new` submission from a
durable quorum queue, validate it into its catalogue model, publish the event derived from
it (`application.accepted.new`) with a publisher confirm, then ack the input. Four ways:

- `raw`: aio-pika alone: a robust connection, one consuming channel with the prefetch, one
  publishing channel with confirms. Each delivery runs in a task of its own (aiormq's), so
  up to `prefetch` publishes wait for their confirms at once: the window of unconfirmed
  messages is the prefetch. The envelope and its data are read in one pydantic call
  (`model_validate_json`, pydantic's fast path).
- `faststream`: FastStream's RabbitBroker: a subscriber with the prefetch on a channel of its
  own, a publisher object (confirms on the broker's default channel), FastStream's own
  acknowledgement after the handler; pydantic validation by FastStream's signature; a codec
  for CloudEvents' content type; FastStream's per-message logs off (`logger=None`), as its
  docs say to.
- `project`: the project's messaging layer without a database: its Consumer (unchanged)
  with a unit of work that publishes the handler's message through the Broker (waiting for
  the confirm) instead of the outbox, then the Consumer's ack.
- `project-uow`: as the product does it: Consumer and UnitOfWork (inbox claim, the handler's
  message into the outbox, one transaction), the OutboxRelay delivering it with a confirm once
  committed; in a database of its own.

Every run has its own topology (tests/support/leftovers.py names it, and removes it however
the run ends) and, for `project-uow`, its own database. The input queue is filled first;
the clock starts at the first message consumed and stops when the last output is confirmed
and the last input acked. Then the output queue must hold exactly as many messages as went
in, and the input queue none, or the run fails.

Spans: the services always make them (shared/observability/tracing.py instruments aio-pika
and asyncpg, whatever the exporter). The hop runs without by default, so that `raw` stays
raw; `--traces` makes them as the services do, for every variant (the instrumentation is the
whole process's, and FastStream too publishes through aio-pika).

    python -m tests.bench.hop [--messages N] [--prefetch N] [--runs K] [--variants raw,faststream,...] [--traces]
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import aio_pika
import asyncpg
from aio_pika.abc import AbstractIncomingMessage
from faststream.message import StreamMessage
from faststream.rabbit import Channel, ExchangeType, RabbitBroker, RabbitExchange, RabbitQueue
from faststream.types import DecodedMessage, SendableMessage
from pydantic import BaseModel

from shared.clock import utc_now
from shared.config import ConsumerSettings, ServiceSettings
from shared.contracts import catalogue
from shared.contracts.applications import Kind, NewSubmission
from shared.contracts.envelope import CONTENT_TYPE, CloudEvent, parse_event
from shared.contracts.events import LicenseSummary, NewAccepted
from shared.db.migrate import Schema, migrate
from shared.db.pool import Connection, create_pool
from shared.messaging.broker import Broker
from shared.messaging.consumer import Consumer, Incoming
from shared.messaging.delivery import Filter
from shared.messaging.inbox import Inbox
from shared.messaging.outbox import Outbox, OutboxRelay
from shared.messaging.subscriber import Subscriber
from shared.messaging.topology import Topology
from shared.messaging.unit_of_work import Addressing, ConsumeContext, Step, UnitOfWork
from shared.observability import tracing
from tests.support import leftovers
from tests.support.infra import Servers, create_database, delete_topology, drop_database, servers, with_database
from tests.support.stack import new_application, submission

VARIANTS = ("raw", "faststream", "project", "project-uow")
MESSAGES = 20_000
PREFETCH = 256
RUNS = 3

TENANT = "tenant-bench-hop"
SOURCE = "urn:arcserve-licensing:bench:hop"
RETRY_DELAYS_S = (1.0,)  # the Consumer wants its retry queues there; one is enough, none is used
# The inbox and outbox alone: no migrations of its own (a directory that is not there holds none).
SCHEMA = Schema("bench_hop", Path(__file__).with_name("no-migrations"), messaging=True)
OUTPUT_QUEUE = "bench.hop.accepted"
OUTPUT = catalogue.entries(NewAccepted)[0]  # where the derived event goes: arcserve.events, application.accepted.new
FILL_WINDOW = 1000  # unconfirmed publishes at once while filling the input queue (not timed)


class HopFailed(AssertionError):
    """A run that lost, doubled or could not relay messages."""


# ---- the message, the same in every variant ----------------------------------------------------

class SubmissionEvent(CloudEvent):
    """A `new` submission's CloudEvent with its data as its catalogue model, read in one call."""

    data: NewSubmission


def accepted(message: NewSubmission) -> NewAccepted:
    """What the status service answers a `new` submission with (R1): a contract, and one
    preparing license per key."""
    return NewAccepted(
        application_id=message.application_id, contract_id=uuid.uuid4(), product=message.product,
        licenses=[LicenseSummary(license_id=uuid.uuid4(), usage=line.usage, license_type=line.license_type,
                                 status="preparing", vm_count=line.vm_count)
                  for line in message.licenses for _ in range(line.quantity)],
    )


def derived(event: SubmissionEvent) -> CloudEvent:
    """The event relayed for `event`, built as the unit of work builds it (UnitOfWork.outgoing)."""
    message = accepted(event.data)
    _, out = catalogue.to_event(message, source=SOURCE, tenant_id=event.tenantid or "", subject=str(message.contract_id))
    return out


def inputs(count: int) -> list[tuple[str, bytes]]:
    """`count` distinct submissions (id, body), as another system publishes them."""
    events = [submission(TENANT, new_application()) for _ in range(count)]
    return [(event["id"], json.dumps(event).encode()) for event in events]


# The project's subscriber: its queue takes `new` submissions; its handler publishes the answer.
HOP: Subscriber[None] = Subscriber("bench.hop")


@HOP.handler(NewSubmission)
async def accept(message: NewSubmission, ctx: ConsumeContext[None]) -> None:
    answer = accepted(message)
    ctx.publish(answer, subject=str(answer.contract_id))


# ---- timing ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Timing:
    seconds: float  # from the first message consumed to the last output confirmed and input acked
    cpu_seconds: float  # this process's CPU time (user and system) meanwhile: the client's share


@dataclass
class Tally:
    """When the first message was consumed, and when each stream of completions (acks,
    confirms, relayed batches) reached `expected`; a problem ends the run at once."""

    expected: int
    streams: tuple[str, ...]
    started: float | None = None
    cpu_started: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    finished: dict[str, float] = field(default_factory=dict)
    cpu_finished: float = 0.0
    problem: str | None = None
    _settled: asyncio.Event = field(default_factory=asyncio.Event)

    def start(self) -> None:
        if self.started is None:
            self.started, self.cpu_started = time.perf_counter(), time.process_time()

    def count(self, stream: str, n: int = 1) -> None:
        reached = self.counts.get(stream, 0) + n
        self.counts[stream] = reached
        if reached >= self.expected and stream not in self.finished:
            self.finished[stream] = time.perf_counter()
            if set(self.finished) == set(self.streams):
                self.cpu_finished = time.process_time()
                self._settled.set()

    def fail(self, problem: str) -> None:
        self.problem = self.problem or problem
        self._settled.set()

    async def timing(self, deadline_s: float) -> Timing:
        """Wait until every stream is complete; how long it took from the first message."""
        try:
            await asyncio.wait_for(self._settled.wait(), timeout=deadline_s)
        except TimeoutError:
            raise HopFailed(f"not done after {deadline_s:g} s: {self.counts} of {self.expected}") from None
        if self.problem:
            raise HopFailed(self.problem)
        assert self.started is not None
        return Timing(max(self.finished.values()) - self.started, self.cpu_finished - self.cpu_started)


# ---- the variants ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Grounds:
    """One run's broker and database: its topology (prefix), its database (or none)."""

    amqp_url: str
    topology: Topology
    database_url: str | None

    @property
    def input_queue(self) -> str:
        return self.topology.queue(HOP.spec)

    @property
    def output_exchange(self) -> str:
        return self.topology.name(OUTPUT.exchange)


Variant = Callable[[Grounds, int, Tally, float], Awaitable[Timing]]  # (grounds, prefetch, tally, deadline)


async def relay_raw(grounds: Grounds, prefetch: int, tally: Tally, deadline_s: float) -> Timing:
    connection = await aio_pika.connect_robust(grounds.amqp_url)
    try:
        publisher = await connection.channel(publisher_confirms=True)
        exchange = await publisher.get_exchange(grounds.output_exchange, ensure=False)
        consuming = await connection.channel()
        await consuming.set_qos(prefetch_count=prefetch)
        queue = await consuming.get_queue(grounds.input_queue, ensure=False)

        async def on_message(message: AbstractIncomingMessage) -> None:
            tally.start()
            try:
                out = derived(SubmissionEvent.model_validate_json(message.body))
                await exchange.publish(
                    aio_pika.Message(out.to_json(), content_type=CONTENT_TYPE, message_id=out.id,
                                     delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                    OUTPUT.routing_key,
                )
                await message.ack()
            except Exception as exc:
                tally.fail(f"raw: message {message.message_id} failed: {exc!r}")
                raise
            tally.count("acked")

        tag = await queue.consume(on_message)
        timing = await tally.timing(deadline_s)
        await queue.cancel(tag)
        return timing
    finally:
        await connection.close()


class CloudEventsCodec:
    """FastStream's codec for `application/cloudevents+json` (its default codec reads only
    `application/json` as JSON): bodies as FastStream's JSON path reads them, models written
    as the project writes a CloudEvent."""

    async def decode(self, msg: StreamMessage[Any]) -> DecodedMessage:
        return cast(DecodedMessage, json.loads(msg.body))

    async def encode(self, msg: SendableMessage, serializer: Any = None) -> tuple[bytes, str | None]:
        assert isinstance(msg, BaseModel), f"this codec writes models, not {type(msg).__name__}"
        return msg.model_dump_json(exclude_none=True).encode(), CONTENT_TYPE


async def relay_faststream(grounds: Grounds, prefetch: int, tally: Tally, deadline_s: float) -> Timing:
    broker = RabbitBroker(grounds.amqp_url, logger=None, codec=CloudEventsCodec())
    answers = broker.publisher(
        exchange=RabbitExchange(grounds.output_exchange, type=ExchangeType.TOPIC, declare=False),
        routing_key=OUTPUT.routing_key, persist=True, mandatory=False,  # as the others publish
    )

    @broker.subscriber(RabbitQueue(grounds.input_queue, declare=False), channel=Channel(prefetch_count=prefetch))
    async def relay(event: SubmissionEvent) -> None:
        tally.start()
        try:
            out = derived(event)
            await answers.publish(out, message_id=out.id)
        except Exception as exc:
            tally.fail(f"faststream: message {event.id} failed: {exc!r}")
            raise
        # FastStream acks when this returns, in this task: no hook of its runs after the ack.
        tally.count("confirmed")

    await broker.start()
    try:
        return await tally.timing(deadline_s)
    finally:
        await broker.stop()


async def no_relays() -> frozenset[str]:
    """The hop's messages come straight from its client: no dead-letter replays to trust."""
    return frozenset()


class CountedConsumer(Consumer):
    """The project's Consumer, counting each message it has handled and acked."""

    def __init__(self, *args: Any, tally: Tally, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.tally = tally

    async def handle(self, message: Incoming) -> str:
        self.tally.start()
        outcome = await super().handle(message)  # returns once the message is acked (or moved)
        if outcome == "handled":
            self.tally.count("acked")
        else:
            self.tally.fail(f"{self.queue_name}: message {message.message_id} was {outcome}, not handled")
        return outcome


@dataclass(frozen=True)
class PublishingWork:
    """A unit of work without a database: what the handler publishes goes straight out
    through the Broker, each publish waiting for its confirm, before the Consumer acks."""

    consumer: str
    addressing: Addressing
    broker: Broker

    async def run(self, steps: Sequence[Step], filters: Sequence[Filter], *, now: datetime) -> list[bool]:
        for step in steps:
            for judge in filters:
                await judge(step.delivery)
            assert step.handler is not None, "the hop's messages are all valid"
            ctx: ConsumeContext[Any] = ConsumeContext(cast(Connection, None), step.delivery, now)
            await step.handler(step.message, ctx)
            for published, subject in ctx.published:
                out = self.addressing.outgoing(published, step.delivery.event, subject)
                await self.broker.publish_event(out.exchange, out.routing_key, out.event.to_json(), message_id=out.event.id)
        return [True] * len(steps)


async def relay_project(grounds: Grounds, prefetch: int, tally: Tally, deadline_s: float) -> Timing:
    broker = Broker(grounds.amqp_url, grounds.topology, connection_name=f"{grounds.topology.prefix}bench-hop")
    await broker.connect()
    try:
        work = PublishingWork(HOP.name, Addressing(SOURCE, grounds.topology), broker)
        consumer = CountedConsumer(broker, HOP, work, deps=None, clock=utc_now,
                                   prefetch=prefetch, tally=tally, relays=no_relays)
        await consumer.start()
        timing = await tally.timing(deadline_s)
        await consumer.stop(timeout=5)
        return timing
    finally:
        await broker.close()


class CountedRelay(OutboxRelay):
    """The project's OutboxRelay, counting what it published (confirmed, and deleted), as
    delivered after each commit or polled."""

    def __init__(self, *args: Any, tally: Tally, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.tally = tally

    def _published(self, count: int) -> None:
        super()._published(count)
        self.tally.count("relayed", count)


async def relay_project_uow(grounds: Grounds, prefetch: int, tally: Tally, deadline_s: float) -> Timing:
    assert grounds.database_url is not None
    pool = await create_pool(grounds.database_url, ServiceSettings.model_fields["db_pool_size"].default)
    broker = Broker(grounds.amqp_url, grounds.topology, connection_name=f"{grounds.topology.prefix}bench-hop")
    try:
        await broker.connect()
        inbox, outbox = Inbox(SCHEMA.name), Outbox(SCHEMA.name)
        relay = CountedRelay(pool, broker, outbox, service="bench-hop", tally=tally)
        work = UnitOfWork(HOP.name, lambda: pool, inbox, outbox, Addressing(SOURCE, grounds.topology),
                          deliver=relay.deliver)
        consumer = CountedConsumer(broker, HOP, work, deps=None, clock=utc_now, prefetch=prefetch,
                                   batch=ConsumerSettings.model_fields["batch"].default, tally=tally, relays=no_relays)
        relaying = asyncio.create_task(relay.run(), name="bench-hop-relay")
        try:
            await consumer.start()
            timing = await tally.timing(deadline_s)
            await consumer.stop(timeout=5)
        finally:
            relay.stop()
            await relaying
        async with pool.acquire() as conn:
            left = await conn.fetchval(f"SELECT count(*) FROM {outbox.table}")
            handled = await conn.fetchval(f"SELECT count(*) FROM {inbox.table}")
        if left or handled != tally.expected:
            raise HopFailed(f"project-uow: {left} messages left in the outbox, {handled} in the inbox "
                            f"(expected 0 and {tally.expected})")
        return timing
    finally:
        await broker.close()
        await pool.close()


RELAYS: dict[str, tuple[Variant, tuple[str, ...]]] = {  # variant → (its hop, what must complete)
    "raw": (relay_raw, ("acked",)),
    "faststream": (relay_faststream, ("confirmed",)),
    "project": (relay_project, ("acked",)),
    "project-uow": (relay_project_uow, ("acked", "relayed")),
}


# ---- one run -----------------------------------------------------------------------------------

@contextlib.asynccontextmanager
async def grounds_of(infrastructure: Servers, *, database: bool) -> AsyncIterator[Grounds]:
    """A topology of its own (the hop's queues, as provisioning declares a consumer's, and
    the output queue) and, if asked, a database of its own with the inbox and outbox;
    removed at the end, or at exit if the run is interrupted."""
    topology = Topology(leftovers.new_prefix("bench"), RETRY_DELAYS_S)
    database_url = with_database(infrastructure.admin_url, leftovers.new_database_name()) if database else None

    async def remove() -> None:
        await delete_topology(infrastructure.amqp_url, topology, [HOP.spec], also=[topology.name(OUTPUT_QUEUE)])
        if database_url is not None:
            await drop_database(infrastructure.admin_url, database_url)
        leftovers.release(topology.prefix)

    leftovers.hold(topology.prefix, remove)
    try:
        await _declare(infrastructure.amqp_url, topology)
        if database_url is not None:
            await create_database(infrastructure.admin_url, database_url.rsplit("/", 1)[1])
            conn = await asyncpg.connect(database_url)
            try:
                await migrate(conn, SCHEMA)
            finally:
                await conn.close()
        yield Grounds(infrastructure.amqp_url, topology, database_url)
    finally:
        await remove()


async def _declare(amqp_url: str, topology: Topology) -> None:
    exchanges, queues, bindings = topology.declarations([HOP.spec])
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        for exchange in exchanges:
            await channel.declare_exchange(exchange.name, aio_pika.ExchangeType(exchange.type), durable=True)
        declared = {q.name: await channel.declare_queue(q.name, durable=True, arguments=dict[str, Any](q.arguments))
                    for q in queues}
        for binding in bindings:
            await declared[binding.queue].bind(binding.exchange, binding.routing_key)
        output = await channel.declare_queue(topology.name(OUTPUT_QUEUE), durable=True,
                                             arguments={"x-queue-type": "quorum"})
        await output.bind(topology.name(OUTPUT.exchange), OUTPUT.routing_key)


async def _fill(grounds: Grounds, bodies: list[tuple[str, bytes]]) -> None:
    """Publish the submissions to the applications exchange, confirmed, before the clock starts."""
    connection = await aio_pika.connect(grounds.amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(grounds.topology.applications, ensure=False)
        for start in range(0, len(bodies), FILL_WINDOW):
            await asyncio.gather(*(
                exchange.publish(aio_pika.Message(body, content_type=CONTENT_TYPE, message_id=message_id,
                                                  delivery_mode=aio_pika.DeliveryMode.PERSISTENT), Kind.NEW.value)
                for message_id, body in bodies[start:start + FILL_WINDOW]
            ))
    waiting = await _depth(grounds.amqp_url, grounds.input_queue)
    if waiting != len(bodies):
        raise HopFailed(f"the input queue holds {waiting} messages after filling it with {len(bodies)}")


async def _depth(amqp_url: str, queue_name: str) -> int:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(queue_name, passive=True)
        return queue.declaration_result.message_count or 0


async def _check_output(grounds: Grounds, variant: str, bodies: list[tuple[str, bytes]]) -> None:
    """Exactly one output per input, none left behind; one of them read back as the event
    derived from some input."""
    expected, output_queue = len(bodies), grounds.topology.name(OUTPUT_QUEUE)
    left, relayed = await _depth(grounds.amqp_url, grounds.input_queue), await _depth(grounds.amqp_url, output_queue)
    if left or relayed != expected:
        raise HopFailed(f"{variant}: {relayed} messages in the output queue and {left} left in the input queue "
                        f"after relaying {expected} (expected {expected} and 0)")
    connection = await aio_pika.connect(grounds.amqp_url)
    async with connection:
        channel = await connection.channel()
        output = await channel.get_queue(output_queue, ensure=False)
        sample = await output.get(no_ack=True)
    assert sample is not None  # the queue holds `expected` messages
    answer = catalogue.parse(parse_event(sample.body), [OUTPUT])
    applications = {json.loads(body)["data"]["application_id"] for _, body in bodies}
    if not isinstance(answer, NewAccepted) or str(answer.application_id) not in applications:
        raise HopFailed(f"{variant}: the output is not the answer to an input: {sample.body[:200]!r}")


@dataclass(frozen=True)
class Run:
    variant: str
    messages: int
    seconds: float
    cpu_seconds: float


async def run_once(variant: str, infrastructure: Servers, *, messages: int = MESSAGES, prefetch: int = PREFETCH) -> Run:
    """One run of one variant on grounds of its own; HopFailed if anything was lost or doubled."""
    hop, streams = RELAYS[variant]
    bodies = inputs(messages)
    async with grounds_of(infrastructure, database=variant == "project-uow") as grounds:
        await _fill(grounds, bodies)
        timing = await hop(grounds, prefetch, Tally(messages, streams), 60 + messages / 100)
        await _check_output(grounds, variant, bodies)
    return Run(variant, messages, timing.seconds, timing.cpu_seconds)


# ---- several runs, and the table ---------------------------------------------------------------

async def measure(infrastructure: Servers, variants: tuple[str, ...] = VARIANTS, *, messages: int = MESSAGES,
                  prefetch: int = PREFETCH, runs: int = RUNS,
                  on_run: Callable[[Run], None] | None = None) -> dict[str, dict[str, Any]]:
    """The median of `runs` runs per variant, run in turns (raw, faststream, … then again), so
    that a noisy moment of the machine does not fall on one variant alone. Per variant:
    messages, prefetch, runs, seconds (median), per_second, us_per_message, ratio_to_raw
    (rate over raw's rate; None without raw), seconds_of_runs, and cpu_us_per_message (the
    median of this process's CPU time per message: what the client spends, the broker and
    the database aside)."""
    unknown = [v for v in variants if v not in RELAYS]
    if unknown:
        raise ValueError(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    done: dict[str, list[Run]] = {variant: [] for variant in variants}
    for _ in range(runs):
        for variant in variants:
            run = await run_once(variant, infrastructure, messages=messages, prefetch=prefetch)
            done[variant].append(run)
            if on_run is not None:
                on_run(run)
    figures: dict[str, dict[str, Any]] = {}
    for variant, its_runs in done.items():
        seconds = statistics.median(run.seconds for run in its_runs)
        figures[variant] = {
            "messages": messages, "prefetch": prefetch, "runs": runs, "seconds": seconds,
            "per_second": messages / seconds, "us_per_message": seconds / messages * 1e6,
            "ratio_to_raw": None, "seconds_of_runs": [run.seconds for run in its_runs],
            "cpu_us_per_message": statistics.median(run.cpu_seconds for run in its_runs) / messages * 1e6,
        }
    if "raw" in figures:
        for figure in figures.values():
            figure["ratio_to_raw"] = figure["per_second"] / figures["raw"]["per_second"]
    return figures


def table(figures: dict[str, dict[str, Any]]) -> str:
    lines = [f"{'variant':<12} {'messages':>9} {'seconds':>8} {'msg/s':>8} {'µs/msg':>8} {'× raw':>6} "
             f"{'client CPU µs/msg':>18}"]
    for variant, f in figures.items():
        ratio = "-" if f["ratio_to_raw"] is None else f"{f['ratio_to_raw']:.2f}"
        lines.append(f"{variant:<12} {f['messages']:>9} {f['seconds']:>8.2f} {f['per_second']:>8,.0f} "
                     f"{f['us_per_message']:>8.0f} {ratio:>6} {f['cpu_us_per_message']:>18.0f}")
    return "\n".join(lines)


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.hop", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=MESSAGES, help="messages per run")
    parser.add_argument("--prefetch", type=int, default=PREFETCH, help="the consumers' prefetch")
    parser.add_argument("--runs", type=int, default=RUNS, help="runs per variant; the table shows their median")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, of: " + ", ".join(VARIANTS))
    parser.add_argument("--traces", action="store_true",
                        help="make spans as the services do (aio-pika and asyncpg instrumented, for every variant)")
    args = parser.parse_args(argv)
    variants = tuple(v.strip() for v in args.variants.split(",") if v.strip())
    unknown = [v for v in variants if v not in RELAYS]
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    if args.messages < 1 or args.prefetch < 1 or args.runs < 1:
        parser.error("--messages, --prefetch and --runs must be at least 1")

    def said(run: Run) -> None:
        print(f"  # {run.variant}: {run.messages} in {run.seconds:.2f} s ({run.messages / run.seconds:,.0f}/s, "
              f"client CPU {run.cpu_seconds:.2f} s)", file=sys.stderr, flush=True)

    if args.traces:
        tracing.configure("bench-hop")
    async with servers(sweep_first=False) as infrastructure:
        try:
            figures = await measure(infrastructure, variants, messages=args.messages, prefetch=args.prefetch,
                                    runs=args.runs, on_run=said)
        except HopFailed as failed:
            print(f"hop failed: {failed}", file=sys.stderr)
            return 1
    print(f"one relay hop: {args.messages} messages, prefetch {args.prefetch}, durable quorum queues, "
          f"publisher confirms, {'with' if args.traces else 'no'} spans; median of {args.runs} run(s)")
    print(table(figures))
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "WARNING"))
    leftovers.unwind_on_signals()  # SIGTERM too removes the run's topology and database
    try:
        sys.exit(asyncio.run(main(sys.argv[1:])))
    except KeyboardInterrupt:
        print("interrupted; the run's queues and database are removed", file=sys.stderr)
        sys.exit(130)
