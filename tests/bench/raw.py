"""The floors: pipelines with no framework, aio-pika and asyncpg written directly. HTTP is left
out of both (the product's figures include intake; these begin with a confirmed publish).

- **Least work** (`Plan.least_work`): what one `new` application needs and no more while
  keeping the guarantees: 6 confirmed publishes (the entry, then one from each stage),
  5 acked consumes, and 5 transactions, one per consumed message, each claiming its inbox
  row and writing a row of its own; prefetch 64.
- **Same counts** (`Plan.of`): as many confirmed publishes, acked consumes and committed
  transactions per application as the product did in the same run: one transaction per stage
  writes (as the unit of work commits one per consumed message) and the rest read (as
  lookups outside any transaction, each a transaction of its own to Postgres); the product's
  prefetch. It shows what the framework adds to those counts, not whether they are needed.

Stages run as processes of their own, one per consume, as the product's services do; each
commits its transactions, publishes with confirms (the next stage's, and the rest to an
exchange nobody reads, as the product's events that no service consumes), then acks.

    python -m tests.bench.raw stage INDEX STAGES PUBLISHES TRANSACTIONS PREFETCH INBOX   (run by the driver)
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

import aio_pika
import asyncpg

from shared.config import ConsumerSettings

PREFETCH = ConsumerSettings.model_fields["prefetch"].default  # the product's (ARCSERVE_PREFETCH)
LEAST_WORK_PREFETCH = 64  # as the issue set it
POOL = 10  # the product's default (ARCSERVE_DB_POOL_SIZE)


def shares(total: int, parts: int) -> list[int]:
    """`total` split as evenly as integers go over `parts`, the larger shares first."""
    return [total // parts + (i < total % parts) for i in range(parts)]


@dataclass(frozen=True)
class Plan:
    """Per application: consumes (= stages), publishes and transactions, as the product measured."""

    stages: int
    publishes: int
    transactions: int
    prefetch: int = PREFETCH
    inbox: bool = False  # each stage's transaction claims an inbox row before its own write

    @classmethod
    def least_work(cls) -> Plan:
        """A `new` application's least work: intake's publish, then the gate, the two
        issuers and the status service's two joins, one transaction each."""
        return cls(stages=5, publishes=6, transactions=5, prefetch=LEAST_WORK_PREFETCH, inbox=True)

    @property
    def figures(self) -> dict[str, int | bool]:
        return {"stages": self.stages, "publishes": self.publishes, "transactions": self.transactions,
                "prefetch": self.prefetch, "inbox": self.inbox}

    @classmethod
    def of(cls, per_application: dict[str, float]) -> Plan:
        stages = max(1, round(per_application["consumed"]))
        # The entry publish, one to each next stage, one from the last to `done`: stages + 1 at least.
        return cls(stages, max(stages + 1, round(per_application["published"])),
                   max(0, round(per_application["transactions"])))

    def stage_publishes(self) -> list[int]:
        """What each stage publishes: the next stage's (or `done`'s), and its share of the rest."""
        return [1 + extra for extra in shares(self.publishes - 1 - self.stages, self.stages)]

    def stage_reads(self) -> list[int]:
        """Each stage's read-only transactions, beside its one write."""
        return shares(max(0, self.transactions - self.stages), self.stages)


def names(prefix: str, index: int) -> str:
    return f"{prefix}raw.stage{index}"


async def stage(index: int, plan: Plan, amqp_url: str, database_url: str, prefix: str) -> None:
    publishes, reads = plan.stage_publishes()[index], plan.stage_reads()[index]
    last = index == plan.stages - 1
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=POOL)
    connection = await aio_pika.connect_robust(amqp_url)
    consuming = await connection.channel()
    await consuming.set_qos(prefetch_count=plan.prefetch)
    publishing = await connection.channel(publisher_confirms=True)
    default = publishing.default_exchange
    sink = await publishing.get_exchange(f"{prefix}raw.sink", ensure=False)
    target = f"{prefix}raw.done" if last else names(prefix, index + 1)
    queue = await consuming.get_queue(names(prefix, index), ensure=False)

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        body = json.loads(message.body)
        for _ in range(reads):
            await pool.fetchval("SELECT stage FROM raw.rows WHERE id = $1", body["row"])
        async with pool.acquire() as conn, conn.transaction():
            claimed = not plan.inbox or await conn.fetchval(
                "INSERT INTO raw.inbox (message_id, stage) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING true",
                body["id"], index)
            if claimed:
                await conn.execute("INSERT INTO raw.rows (id, stage) VALUES ($1, $2)", uuid.uuid4(), index)
        out = json.dumps(body).encode()
        await asyncio.gather(
            default.publish(aio_pika.Message(out, delivery_mode=aio_pika.DeliveryMode.PERSISTENT), target),
            *(sink.publish(aio_pika.Message(out, delivery_mode=aio_pika.DeliveryMode.PERSISTENT), "event")
              for _ in range(publishes - 1)),
        )
        await message.ack()

    await queue.consume(on_message)
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    await stopping.wait()
    await connection.close()
    await pool.close()


class Floor:
    """The raw pipeline's topology, table and stage processes, and its load."""

    def __init__(self, plan: Plan, amqp_url: str, database_url: str, prefix: str):
        self.plan, self.amqp_url, self.database_url, self.prefix = plan, amqp_url, database_url, prefix
        self.processes: list[asyncio.subprocess.Process] = []
        self.ended: dict[str, float] = {}

    @property
    def queues(self) -> list[str]:
        return [*(names(self.prefix, i) for i in range(self.plan.stages)), f"{self.prefix}raw.done"]

    async def __aenter__(self) -> Floor:
        conn = await asyncpg.connect(self.database_url)
        try:
            await conn.execute("CREATE SCHEMA IF NOT EXISTS raw; "
                               "CREATE TABLE IF NOT EXISTS raw.rows (id uuid PRIMARY KEY, stage int NOT NULL); "
                               "CREATE TABLE IF NOT EXISTS raw.inbox (message_id text, stage int, "
                               "PRIMARY KEY (message_id, stage))")
        finally:
            await conn.close()
        self.connection = await aio_pika.connect_robust(self.amqp_url)
        channel = await self.connection.channel()
        for queue in self.queues:
            await channel.declare_queue(queue, durable=True, arguments={"x-queue-type": "quorum"})
        await channel.declare_exchange(f"{self.prefix}raw.sink", aio_pika.ExchangeType.TOPIC, durable=True)
        for index in range(self.plan.stages):
            self.processes.append(await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tests.bench.raw", "stage", str(index), str(self.plan.stages),
                str(self.plan.publishes), str(self.plan.transactions), str(self.plan.prefetch), str(int(self.plan.inbox)),
                env={**os.environ, "BENCH_AMQP_URL": self.amqp_url, "BENCH_DATABASE_URL": self.database_url,
                     "BENCH_PREFIX": self.prefix}))
        self.done = await self.connection.channel()
        await self.done.set_qos(prefetch_count=1000)
        done = await self.done.get_queue(f"{self.prefix}raw.done")
        await done.consume(self._on_done, no_ack=True)
        return self

    async def _on_done(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        self.ended.setdefault(json.loads(message.body)["id"], time.perf_counter())

    async def __aexit__(self, *exc: object) -> None:
        for process in self.processes:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        await asyncio.gather(*(process.wait() for process in self.processes))
        await self.done.close()  # its consumer first: the queue goes next
        channel = await self.connection.channel()
        for queue in self.queues:
            await channel.queue_delete(queue)
        await channel.exchange_delete(f"{self.prefix}raw.sink")
        await self.connection.close()
        conn = await asyncpg.connect(self.database_url)
        try:
            await conn.execute("DROP SCHEMA raw CASCADE")
        finally:
            await conn.close()

    async def run(self, concurrency: int, seconds: float, warmup_s: float = 2.0) -> dict[str, Any]:
        """Applications entered back to back by `concurrency` workers, each waiting for its
        entry's confirm (as intake waits), for `seconds`: completed per second inside the
        window and until the last one ended (drained), and the machine's CPU per application."""
        from tests.bench.e2e import closed_loop, percentile
        from tests.bench.resources import machine_busy_seconds

        busy = machine_busy_seconds()
        channel = await self.connection.channel(publisher_confirms=True)
        first = names(self.prefix, 0)

        async def one() -> tuple[str, float]:
            application_id = str(uuid.uuid4())
            started = time.perf_counter()
            await channel.default_exchange.publish(aio_pika.Message(
                json.dumps({"id": application_id, "row": str(uuid.uuid4())}).encode(),
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT), first)
            return application_id, started

        began = time.perf_counter()
        sent = await closed_loop(concurrency, seconds, one)
        ended = time.perf_counter()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and any(i not in self.ended for i, _ in sent):
            await asyncio.sleep(0.05)
        busy = machine_busy_seconds() - busy
        window = [t for i, _ in sent if (t := self.ended.get(i)) and began + warmup_s <= t <= ended]
        latencies = [self.ended[i] - t for i, t in sent if i in self.ended]
        completed = sum(i in self.ended for i, _ in sent)
        finished = max((self.ended[i] for i, _ in sent if i in self.ended), default=ended)
        return {"plan": self.plan.figures,
                "submitted": len(sent), "completed": completed,
                "completed_per_s": len(window) / (ended - began - warmup_s),
                "drained_per_s": completed / (finished - began),
                "cpu_ms_per_application": busy * 1000 / max(completed, 1),
                "p50_ms": percentile(latencies, 50) * 1000, "p99_ms": percentile(latencies, 99) * 1000}


def main(argv: list[str]) -> None:
    if argv[:1] != ["stage"] or len(argv) != 7:
        raise SystemExit("usage: python -m tests.bench.raw stage INDEX STAGES PUBLISHES TRANSACTIONS PREFETCH INBOX")
    index, stages, publishes, transactions, prefetch, inbox = (int(a) for a in argv[1:])
    asyncio.run(stage(index, Plan(stages, publishes, transactions, prefetch, bool(inbox)), os.environ["BENCH_AMQP_URL"],
                      os.environ["BENCH_DATABASE_URL"], os.environ["BENCH_PREFIX"]))


if __name__ == "__main__":
    main(sys.argv[1:])
