"""No topology left behind (tests/support/leftovers.py): a run interrupted by SIGINT or
SIGTERM still removes its exchanges, queues and database, and what a killed run left is
swept at the next start, but only this suite's names, only when stale, and never a stack
that still has consumers."""
from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from pathlib import Path

import aio_pika
import asyncpg
import pytest

from services.provisioning.broker import Management
from tests.support import leftovers
from tests.support.infra import Servers, create_database, delete_topology, with_database

ROOT = Path(__file__).resolve().parent
DEADLINE_S = 120.0


async def _prefixes(infrastructure: Servers, kind: str) -> set[str]:
    out = await infrastructure.rabbitmqctl("list_exchanges", "-q", "--no-table-headers", "name")
    return {m.group(0) for name in out.split() if (m := re.match(rf"^{kind}-\d{{10}}-[0-9a-f]{{8}}\.", name))}


async def _remains(infrastructure: Servers, prefix: str) -> list[str]:
    """Its queues, exchanges and policies still on the broker."""
    queues = await infrastructure.rabbitmqctl("list_queues", "-q", "--no-table-headers", "name")
    exchanges = await infrastructure.rabbitmqctl("list_exchanges", "-q", "--no-table-headers", "name")
    policies = [line.split("\t")[1] for line in
                (await infrastructure.rabbitmqctl("list_policies", "-q", "--no-table-headers")).splitlines() if line]
    return [name for name in queues.split() + exchanges.split() + policies if name.startswith(prefix)]


def _processes_of(prefix: str) -> list[int]:
    """Processes (the fault suite's services) running on this topology prefix."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if f"ARCSERVE_TOPOLOGY_PREFIX={prefix}".encode() in environ.read_bytes().split(b"\0"):
                found.append(int(environ.parent.name))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


async def _databases(admin_url: str) -> set[str]:
    conn = await asyncpg.connect(admin_url)
    try:
        return {r["datname"] for r in await conn.fetch("SELECT datname FROM pg_database WHERE datname LIKE 'arcserve_test_%'")}
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("command", "kind", "sig"),
    [
        pytest.param(["-m", "tests.faults", "--applications", "70", "--faults", "none", "--no-sweep"], "faults", signal.SIGINT,
                     id="fault-suite-SIGINT"),
        pytest.param(["-m", "pytest", "-p", "no:cacheprovider", "-q", "tests/integration/test_rules_e2e.py"], "test",
                     signal.SIGTERM, id="pytest-SIGTERM"),
    ],
)
async def test_an_interrupted_run_leaves_no_topology_and_no_database(
    infrastructure: Servers, command: list[str], kind: str, sig: signal.Signals
) -> None:
    before = await _prefixes(infrastructure, kind)
    databases_before = await _databases(infrastructure.admin_url)
    env = {**os.environ, "AMQP_URL": infrastructure.amqp_url, "DATABASE_URL": infrastructure.admin_url}
    process = await asyncio.create_subprocess_exec(
        sys.executable, *command, cwd=ROOT.parent, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + DEADLINE_S
        while not (started := await _prefixes(infrastructure, kind) - before):
            assert process.returncode is None, (await process.stdout.read()).decode(errors="replace")  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the run never declared its topology"
            await asyncio.sleep(0.2)
        while kind == "faults" and sum(len(_processes_of(prefix)) for prefix in started) < 4:  # under load
            assert process.returncode is None, (await process.stdout.read()).decode(errors="replace")  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the run never started its services"
            await asyncio.sleep(0.2)
        process.send_signal(sig)
        out, _ = await asyncio.wait_for(process.communicate(), timeout=DEADLINE_S)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    report = out.decode(errors="replace")
    assert process.returncode != 0, report  # interrupted, not finished
    for prefix in started:
        assert await _remains(infrastructure, prefix) == [], report
        assert _processes_of(prefix) == [], f"services of {prefix} outlived the run"
    assert await _databases(infrastructure.admin_url) <= databases_before, report


HANGING_RUN = """
import signal, sys, threading
from services.provisioning.broker import Management
from tests.support import leftovers

async def remove():
    with open(sys.argv[1], "w") as f:
        f.write("removed")

leftovers.unwind_on_signals()
leftovers.hold("test-0000000000-00000000.", remove)
print("holding", flush=True)
try:
    signal.pause()
except KeyboardInterrupt:
    threading.Event().wait()  # an unwinding that never ends: a task outliving its cancellation
"""


async def test_an_unwinding_that_hangs_is_cut_short_and_still_removes_what_it_holds(tmp_path: Path) -> None:
    removed = tmp_path / "removed"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HANGING_RUN, str(removed), cwd=ROOT.parent,
        env={**os.environ, "LEFTOVERS_UNWIND_GRACE_S": "1"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert await asyncio.wait_for(process.stdout.readline(), timeout=DEADLINE_S) == b"holding\n"  # type: ignore[union-attr]
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), timeout=DEADLINE_S)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 128 + signal.SIGTERM, err.decode()
    assert "still unwinding 1 s after SIGTERM" in err.decode()
    assert removed.read_text() == "removed"


async def _declare(infrastructure: Servers, prefix: str, *, consume: bool = False) -> aio_pika.abc.AbstractConnection:
    """A stack's leftovers in small: an exchange, a queue bound to it and the queue's policy."""
    Management.for_amqp_url(infrastructure.amqp_url, infrastructure.management_url).put_policy(
        "/", f"{prefix}arcserve.consumer-queues",
        {"pattern": f"^{re.escape(prefix)}arcserve\\.order-id$", "apply-to": "queues", "definition": {"max-length": 10}})
    connection = await aio_pika.connect(infrastructure.amqp_url)
    channel = await connection.channel()
    exchange = await channel.declare_exchange(f"{prefix}arcserve.events", aio_pika.ExchangeType.TOPIC)
    queue = await channel.declare_queue(f"{prefix}arcserve.order-id", arguments={"x-queue-type": "quorum"}, durable=True)
    await queue.bind(exchange, "#")
    if consume:
        async def ack(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            await message.ack()

        await queue.consume(ack)
    return connection


async def test_the_sweep_removes_only_stale_leftovers_of_this_suite(infrastructure: Servers) -> None:
    now = time.time()
    aged = int(now - leftovers.STALE_AFTER_S - 60)
    stale, busy, fresh = f"test-{aged}-0000000a.", f"faults-{aged}-0000000b.", f"test-{int(now)}-0000000c."
    foreign = "other-system."  # not this suite's pattern, however old
    stale_database = f"arcserve_test_{aged}_00000000000d"
    admin = await asyncpg.connect(infrastructure.admin_url)
    await admin.execute(f'CREATE DATABASE "{stale_database}"')
    fresh_database = await create_database(infrastructure.admin_url)
    connections = [await _declare(infrastructure, p) for p in (stale, fresh, foreign)]
    connections.append(await _declare(infrastructure, busy, consume=True))  # a stack still running
    try:
        swept = await leftovers.sweep(infrastructure.rabbitmqctl, infrastructure.amqp_url, infrastructure.admin_url,
                                      management_url=infrastructure.management_url)

        assert stale in swept.prefixes and await _remains(infrastructure, stale) == []
        assert swept.policies == [f"{stale}arcserve.consumer-queues"]
        for kept in (busy, fresh, foreign):
            assert kept not in swept.prefixes and len(await _remains(infrastructure, kept)) == 3, kept
        assert stale_database in swept.databases
        databases = await _databases(infrastructure.admin_url)
        assert stale_database not in databases and fresh_database.rsplit("/", 1)[1] in databases
    finally:
        for connection in connections:
            await connection.close()
        from services.provisioning.boundaries import queue_specs
        from shared.messaging.topology import Topology

        management = Management.for_amqp_url(infrastructure.amqp_url, infrastructure.management_url)
        for prefix in (stale, busy, fresh, foreign):
            await delete_topology(infrastructure.amqp_url, Topology(prefix), queue_specs(),
                                  also=[f"{prefix}arcserve.order-id"])
            management.delete_policy("/", f"{prefix}arcserve.consumer-queues")
        for name in (stale_database, fresh_database.rsplit("/", 1)[1]):
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.close()


def test_names_carry_their_age() -> None:
    assert re.fullmatch(r"test-\d{10}-[0-9a-f]{8}\.", leftovers.new_prefix("test"))
    assert re.fullmatch(r"arcserve_test_\d{10}_[0-9a-f]{12}", leftovers.new_database_name())
    assert with_database("postgresql://u@h/x", "y") == "postgresql://u@h/y"
