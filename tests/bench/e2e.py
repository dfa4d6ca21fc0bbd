"""The product, end to end: the four services as processes on their own database and topology
prefix (no fault proxies), loaded with `new` applications, each from a tenant and product of
its own so that every one is accepted (R2), through the HTTP API or published straight to
`arcserve.applications`. An application's latency runs from just before its submission to
the moment its `application.completed.new` event reaches the benchmark's own queue."""
from __future__ import annotations

import asyncio
import gc
import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import httpx
from prometheus_client.parser import text_string_to_metric_families

from shared.contracts.envelope import CONTENT_TYPE
from shared.tenancy import allow, seed_api_keys
from tests.bench import load, resources
from tests.faults.processes import SERVICES, ProcessStack
from tests.support.infra import Servers
from tests.support.stack import new_application, submission

PRODUCTS = ("arcserve-udp-10", "arcserve-udp-9")
COMPLETION_TIMEOUT_S = 120.0


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


@dataclass
class Applicants:
    """Tenants with API keys, handed out one (tenant, product) at a time, never twice."""

    keys: list[tuple[str, str]]  # (tenant, key)
    _next: Iterator[tuple[str, str, str]] = field(init=False)

    def __post_init__(self) -> None:
        self._next = ((tenant, key, product) for product in PRODUCTS for tenant, key in self.keys)

    def take(self) -> tuple[str, str, str]:
        return next(self._next)


async def seed(system: ProcessStack, count: int, publisher: str) -> Applicants:
    """`count` tenants with keys, each allowed for the administrator as a direct publisher."""
    tenants = [(f"bench-{uuid.uuid4().hex[:12]}", secrets.token_urlsafe(18)) for _ in range(count)]
    conn = await asyncpg.connect(system.database_url)
    try:
        await seed_api_keys(conn, {key: tenant for tenant, key in tenants}, system.pepper.encode())
        await allow(conn, publisher, [tenant for tenant, _ in tenants])
    finally:
        await conn.close()
    return Applicants(tenants)


class Completions:
    """The benchmark's own queue on `arcserve.events`: when each application ended."""

    def __init__(self, amqp_url: str, exchange: str):
        self.amqp_url, self.exchange = amqp_url, exchange
        self.ended: dict[str, float] = {}
        self.rejected = 0

    async def __aenter__(self) -> Completions:
        self.connection = await aio_pika.connect_robust(self.amqp_url)
        channel = await self.connection.channel()
        await channel.set_qos(prefetch_count=1000)
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        for key in ("application.completed.#", "application.rejected.#"):
            await queue.bind(self.exchange, key)
        await queue.consume(self._on_event, no_ack=True)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.connection.close()

    async def _on_event(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        event = json.loads(message.body)
        self.ended.setdefault(event["data"]["application_id"], time.perf_counter())
        self.rejected += event["type"].startswith("arcserve.application.rejected")

    async def all_of(self, ids: list[str], timeout: float = COMPLETION_TIMEOUT_S) -> int:
        """Wait until every id has ended (or `timeout`); how many did."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(i not in self.ended for i in ids):
            await asyncio.sleep(0.05)
        return sum(i in self.ended for i in ids)


@dataclass
class Bench:
    system: ProcessStack
    applicants: Applicants
    completions: Completions
    load: load.Client  # the submissions
    http: httpx.AsyncClient  # the rest (metrics)
    resent: int = 0  # requests sent again after a transport error (a lost answer)
    refused: int = 0  # 503s: past what the broker confirms in time, intake says so rather than wait

    async def submit(self) -> tuple[str, float] | None:
        """One `new` over HTTP, as the portal and the CLI send it (with an Idempotency-Key, so
        that a request sent again after a lost answer is the same application): its id and
        when it was first sent; None when intake refused it for now (503: overload)."""
        tenant, key, product = self.applicants.take()
        headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": uuid.uuid4().hex}
        body = json.dumps(new_application(product=product)).encode()
        started = time.perf_counter()
        for attempt in range(3):
            try:
                status, answer = await self.load.post("/v1/applications", body, headers)
                break
            except OSError:
                self.resent += 1
                if attempt == 2:
                    raise
        if status == 503:
            self.refused += 1
            return None
        if status != 202:
            raise RuntimeError(f"intake answered {status}: {answer[:200]!r}")
        return json.loads(answer)["application_id"], started

    def processes(self) -> dict[str, int]:
        return {name: process.pid for name, process in self.system.processes.items()}

    async def counters(self) -> dict[str, float]:
        """Messages the services published and consumed so far (their own metrics), and the
        database's committed transactions."""
        found: dict[str, float] = {"published": 0.0, "consumed": 0.0}
        for name in SERVICES:
            text = (await self.http.get(f"http://127.0.0.1:{self.system.metrics_ports[name]}/metrics")).text
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    if sample.name in ("arcserve_applications_submitted_total", "arcserve_outbox_published_total"):
                        found["published"] += sample.value
                    elif sample.name == "arcserve_messages_total" and sample.labels.get("outcome") == "handled":
                        found["consumed"] += sample.value
        conn = await asyncpg.connect(self.system.admin_url)
        try:
            found["transactions"] = float(await conn.fetchval(
                "SELECT xact_commit FROM pg_stat_database WHERE datname = $1", self.system.deployment.database_name))
        finally:
            await conn.close()
        return found


@asynccontextmanager
async def bench(servers: Servers, logs: Path, tenants: int) -> AsyncIterator[Bench]:
    async with ProcessStack(servers, logs, kind="bench", proxied=False) as system:
        publisher = servers.amqp_url.split("//", 1)[1].split(":", 1)[0]
        applicants = await seed(system, tenants, publisher)
        # A full collection in the benchmark would stop its clock too and be charged to the
        # product's latency: what it holds by now (tens of thousands of tenants and keys) is
        # frozen out of the collector's sight, as the services do after start-up (shared/runtime.py).
        gc.collect()
        gc.freeze()
        events = f"{system.prefix}arcserve.events"
        submissions = load.Client(system.url("intake", ""))
        async with Completions(servers.amqp_url, events) as completions, httpx.AsyncClient(timeout=60) as http:
            try:
                yield Bench(system, applicants, completions, submissions, http)
            finally:
                await submissions.close()


async def closed_loop(concurrency: int, seconds: float, one: Callable[[], Any]) -> list[Any]:
    """`concurrency` workers calling `one()` back to back for `seconds`; what they returned."""
    results: list[Any] = []
    until = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < until:
            results.append(await one())

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


async def intake_rates(b: Bench, concurrencies: tuple[int, ...], seconds: float) -> dict[str, Any]:
    """Intake alone (the other services stopped, its submissions purged after): requests per
    second and latency at each concurrency."""
    for name in ("status", "license_issuer", "order_id"):
        await b.system.terminate(name)
    found: dict[str, Any] = {}
    try:
        for concurrency in concurrencies:
            async def timed() -> float:
                started = time.perf_counter()
                await b.submit()
                return time.perf_counter() - started

            began = time.perf_counter()
            latencies = await closed_loop(concurrency, seconds, timed)
            found[str(concurrency)] = {"requests_per_s": len(latencies) / (time.perf_counter() - began),
                                       "p50_ms": percentile(latencies, 50) * 1000,
                                       "p99_ms": percentile(latencies, 99) * 1000}
    finally:
        await b.system.servers.rabbitmqctl("purge_queue", f"{b.system.prefix}arcserve.status.submissions")
        for name in ("status", "license_issuer", "order_id"):
            await b.system.start(name)
        await b.system.wait_ready()
    return found


async def saturation(b: Bench, concurrency: int, seconds: float, warmup_s: float = 2.0) -> dict[str, Any]:
    """Completed applications per second with submissions kept coming as fast as intake takes
    them; CPU per application, per process and for the machine; messages and transactions."""
    before_counts, before_cpu = await b.counters(), resources.Snapshot.take(b.processes())
    began = time.perf_counter()
    refused = b.refused
    submitted = [s for s in await closed_loop(concurrency, seconds, b.submit) if s is not None]
    ended = time.perf_counter()
    ids = [i for i, _ in submitted]
    done = await b.completions.all_of(ids)
    finished = max(b.completions.ended[i] for i in ids if i in b.completions.ended)
    cpu, after_counts = resources.Snapshot.take(b.processes()).since(before_cpu), await b.counters()
    window = [t for i in ids if (t := b.completions.ended.get(i)) and began + warmup_s <= t <= ended]
    apps = len(ids)
    return {
        "submitted": apps, "refused": b.refused - refused, "completed": done, "submit_per_s": apps / (ended - began),
        "completed_per_s": len(window) / (ended - began - warmup_s),
        "drained_per_s": done / (finished - began),
        "cpu_ms_per_application": {name: seconds * 1000 / max(done, 1) for name, seconds in cpu.items()},
        "per_application": {name: (after_counts[name] - before_counts[name]) / max(done, 1) for name in after_counts},
        "peak_rss_mb": {name: resources.peak_rss_mb(pid) for name, pid in b.processes().items()},
    }


async def latency_at(b: Bench, rate: float, seconds: float) -> dict[str, Any]:
    """Submissions at a fixed offered rate (an open loop: each is sent on schedule, whether or
    not the ones before it have ended): submit-to-completed percentiles."""
    sent: list[tuple[str, float]] = []
    tasks: list[asyncio.Task[None]] = []
    began = time.perf_counter()

    refused = b.refused

    async def one() -> None:
        if (submitted := await b.submit()) is not None:
            sent.append(submitted)

    for n in range(int(rate * seconds)):
        delay = began + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    achieved = len(sent) / (time.perf_counter() - began)
    done = await b.completions.all_of([i for i, _ in sent])
    latencies = [b.completions.ended[i] - t for i, t in sent if i in b.completions.ended]
    return {"offered_per_s": rate, "achieved_per_s": achieved, "completed": done, "submitted": len(sent),
            "refused": b.refused - refused,
            **{f"p{p}_ms": percentile(latencies, p) * 1000 for p in (50, 95, 99)}}


async def direct(b: Bench, concurrency: int, seconds: float) -> dict[str, Any]:
    """The same `new` applications published straight to `arcserve.applications` (as an
    allowed publisher, with confirms), past intake: completed per second."""
    exchange_name = f"{b.system.prefix}arcserve.applications"
    connection = await aio_pika.connect(b.system.amqp_url)
    user = b.system.amqp_url.split("//", 1)[1].split(":", 1)[0]
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(exchange_name, ensure=False)

        async def one() -> tuple[str, float]:
            tenant, _, product = b.applicants.take()
            application_id = str(uuid.uuid4())
            body = json.dumps(submission(tenant, new_application(product=product), application_id=application_id,
                                         event_id=application_id)).encode()
            started = time.perf_counter()
            await exchange.publish(aio_pika.Message(body, content_type=CONTENT_TYPE, message_id=application_id,
                                                    user_id=user, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                                   "new")
            return application_id, started

        began = time.perf_counter()
        sent = await closed_loop(concurrency, seconds, one)
        ended = time.perf_counter()
    ids = [i for i, _ in sent]
    done = await b.completions.all_of(ids)
    finished = max(b.completions.ended[i] for i in ids if i in b.completions.ended)
    latencies = [b.completions.ended[i] - t for i, t in sent if i in b.completions.ended]
    return {"published": len(ids), "completed": done, "publish_per_s": len(ids) / (ended - began),
            "drained_per_s": done / (finished - began), "p50_ms": percentile(latencies, 50) * 1000,
            "p99_ms": percentile(latencies, 99) * 1000}
