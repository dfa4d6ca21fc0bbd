"""The nine faults of the fault-injection suite. Each runs beside the workload, waiting on
its progress (`at(0.3)`: when 30% of the applications have ended) to strike mid-stream."""
from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aio_pika

from services.provisioning.boundaries import BOUNDARIES
from shared.contracts import catalogue, routing
from shared.messaging import nodes
from tests.faults.cluster import NODES as CLUSTER_NODES
from tests.faults.cluster import Cluster
from tests.faults.pair import NODES as PAIR_NODES
from tests.faults.pair import Pair
from tests.faults.processes import BOUNDARY, ProcessStack

At = Callable[[float], Awaitable[None]]
FAILOVER_DEADLINE_S = 10.0  # for every service to be on a live node once one is killed


@dataclass
class Run:
    """What a fault did, for the checker."""

    stack: ProcessStack
    at: At
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    poison_sent: int = 0
    duplicate_submissions: bool = False
    cluster: Cluster | None = None  # the local RabbitMQ cluster, for the faults ON_BROKER_CLUSTER
    pair: Pair | None = None  # the local Postgres primary and standby, for the faults ON_DATABASE_PAIR


async def _command(*argv: str) -> None:
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await process.communicate()
    if process.returncode:
        raise RuntimeError(f"{' '.join(argv)} failed: {out.decode(errors='replace')}")


def _shell(variable: str, default: str) -> list[str]:
    return ["sh", "-c", os.environ.get(variable, default)]


ROOT = Path(__file__).resolve().parents[2]
# The whole node, not just the app: the Erlang VM goes away and comes back from disk, with
# its open-files limit kept (the script fails if it drops) and an AMQP handshake awaited.
BROKER_RESTART = f"{ROOT / 'scripts' / 'rabbitmq-node.sh'} restart"
_PG_VERSION = next(iter(sorted(p.name for p in Path("/etc/postgresql").glob("*"))), "15") if Path("/etc/postgresql").exists() else "15"
DATABASE_RESTART = f"pg_ctlcluster --skip-systemctl-redirect {_PG_VERSION} main restart"


async def kill_each_service(run: Run) -> None:
    """1. kill -9 of each service in turn while applications are in flight, then restart."""
    for n, name in enumerate(run.stack.services):
        await run.at(0.15 + 0.8 * n / len(run.stack.services))
        await run.stack.kill(name)
        await asyncio.sleep(0.5)  # down for a moment: work piles up for it
        await run.stack.start(name)
        run.notes.append(f"killed -9 and restarted {name}")


async def _node_limit() -> int | None:
    """The local node's open-files limit, if this machine runs it."""
    process = await asyncio.create_subprocess_exec(
        str(ROOT / "scripts" / "rabbitmq-node.sh"), "limit", stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await process.communicate()
    return int(out) if out.strip().isdigit() else None


async def restart_broker(run: Run) -> None:
    """2. Stop and start RabbitMQ mid-stream; it must come back with the open-files limit
    it had and complete an AMQP handshake."""
    await run.at(0.3)
    before = await _node_limit()
    await _command(*_shell("FAULTS_BROKER_RESTART", BROKER_RESTART))
    await _command(sys.executable, str(ROOT / "scripts" / "amqp_probe.py"), "--deadline", "60", run.stack.amqp_url)
    after = await _node_limit()
    if before is not None and (after is None or after < before):
        run.problems.append(f"RabbitMQ came back with an open-files limit of {after}, down from {before}")
    run.notes.append(f"restarted RabbitMQ (open-files limit {before} → {after}); AMQP handshake completed")


async def restart_database(run: Run) -> None:
    """3. Restart Postgres mid-stream."""
    await run.at(0.3)
    await _command(*_shell("FAULTS_DATABASE_RESTART", DATABASE_RESTART))
    run.notes.append("restarted Postgres")


async def cut_network(run: Run) -> None:
    """4. Cut the services off the broker and the database, and stall the broker link so that
    publishes wait for confirms that do not come."""
    stack = run.stack
    await run.at(0.2)
    await stack.broker_proxy.cut()
    await stack.database_proxy.cut()
    await asyncio.sleep(2)
    stack.broker_proxy.restore()
    stack.database_proxy.restore()
    run.notes.append("cut broker and database links for 2 s")
    await run.at(0.5)
    stack.broker_proxy.blackhole(True)  # publishes sent, confirms held back
    await asyncio.sleep(2)
    await stack.broker_proxy.cut()  # then the link dies between publish and confirm
    stack.broker_proxy.blackhole(False)
    await asyncio.sleep(1)
    stack.broker_proxy.restore()
    run.notes.append("stalled the broker link 2 s, then cut it")
    await run.at(0.75)
    await stack.database_proxy.cut_for(2)
    run.notes.append("cut the database link for 2 s")


BOUNDARY_BY_NAME = {boundary.name: boundary for boundary in BOUNDARIES}


async def _as_owner(stack: Any, exchange: str, routing_key: str, event: dict[str, Any]) -> None:
    """Publish a copy as the service that owns its type: consumers trust an event from no one else."""
    owner = catalogue.by_type(event["type"])
    assert owner is not None and owner.publisher is not None, event["type"]
    url, _ = stack.deployment.urls(BOUNDARY_BY_NAME[owner.publisher], stack.amqp_url, stack.database_url)
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel(publisher_confirms=True)
        target = await channel.get_exchange(exchange, ensure=False)
        await target.publish(aio_pika.Message(json.dumps(event).encode(), message_id=event["id"],
                                              user_id=urlsplit(url).username), routing_key)


async def duplicate_and_reorder(run: Run) -> None:
    """5. Every submission twice (same Idempotency-Key); events delivered twice with the same
    id, again with a new id, and results replayed late, after the contract was cancelled."""
    run.duplicate_submissions = True
    stack = run.stack
    connection = await nodes.connect_robust(stack.amqp_url)
    late: list[tuple[str, dict[str, Any]]] = []  # (exchange, event)
    try:
        channel = await connection.channel(publisher_confirms=True)
        events = await channel.get_exchange(stack.topology.events, ensure=False)
        keys = await channel.get_exchange(stack.topology.name(routing.LICENSE_KEYS_EXCHANGE), ensure=False)
        exchanges = {events.name: events, keys.name: keys}
        queue = await channel.declare_queue(exclusive=True)
        for key in ("application.accepted.*", "license.*", "order_id.*"):
            await queue.bind(events, key)
        await queue.bind(keys, routing.LICENSE_KEYS)  # the keys' own route (the fault is the administrator)
        rng = random.Random(7)
        seen: set[str] = set()  # this queue also hears the copies: duplicate each message once

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            event = json.loads(message.body)
            if event["id"] in seen or event.get("faultscopy"):
                await message.ack()
                return
            seen.add(event["id"])
            copies = [event]  # the same message again: an at-least-once redelivery
            if rng.random() < 0.5:  # the same fact, another message
                copies.append({**event, "id": str(uuid.uuid4()), "faultscopy": True})
            origin = exchanges[message.exchange or ""]
            for copy in copies:
                await _as_owner(stack, origin.name, message.routing_key or "", copy)
            if message.routing_key in (routing.LICENSE_KEYS, routing.ORDER_ID_ISSUED):
                late.append((origin.name, event))
            await message.ack()

        await queue.consume(on_message)
        await run.at(1.0)
        # After every contract was cancelled: must change nothing. The same messages again
        # stop at the inbox; the same facts under new ids reach the rules, whose guards
        # against late results must hold.
        for exchange, event in late:
            key = event["type"].removeprefix("arcserve.")
            for copy in (event, {**event, "id": str(uuid.uuid4()), "faultscopy": True}):
                await _as_owner(stack, exchange, key, copy)
        run.notes.append(f"duplicated events, replayed {len(late)} results after cancellation, "
                         "under their own ids and under new ones")
    finally:
        await connection.close()


def _poison(tenant: str) -> list[tuple[str, bytes]]:
    """(routing key, body) of each kind of bad input another system could publish."""
    good: dict[str, Any] = {
        "specversion": "1.0", "source": "urn:faults:bad-input", "type": "arcserve.application.new",
        "tenantid": tenant, "data": {"kind": "new", "application_id": "", "product": "arcserve-udp-10",
                                      "contact": {"email": "x@example.com", "company_name": "X"},
                                      "licenses": [{"usage": "bare_metal", "license_type": "per_server", "quantity": 1}]},
    }

    def event(**changes: Any) -> bytes:
        body = {**good, "id": str(uuid.uuid4()), **changes}
        body["data"] = {**good["data"], "application_id": str(uuid.uuid4()), **changes.get("data", {})}
        return json.dumps({k: v for k, v in body.items() if v is not None}).encode()

    return [
        ("new", b"\x00\xffnot json at all"),
        ("new", b'["json", "but not an object"]'),
        ("new", json.dumps({"hello": "world"}).encode()),
        ("new", event(specversion="0.3")),
        ("new", event(type="arcserve.application.teleport")),
        ("new", event(data={"desired_start_date": "2027-01-01"})),
        ("new", event(tenantid=None)),
        ("new", event(tenantid=f"unknown-{uuid.uuid4().hex[:6]}")),
        ("new", b'{"specversion": "1.0", "padding": "' + b"x" * 300_000 + b'"}'),
        ("renew", event(type="arcserve.application.renew")),  # a routing key that is no kind
    ]


async def flood_bad_input(run: Run) -> None:
    """6. Bad input published straight to arcserve.applications, between good submissions."""
    stack = run.stack
    administrator = urlsplit(stack.amqp_url).username or "guest"
    connection = await nodes.connect(stack.amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(stack.topology.applications, ensure=False)
        for n in range(10):
            await run.at(n / 10)
            for routing_key, body in _poison("faults-poison"):
                await exchange.publish(aio_pika.Message(body, message_id=str(uuid.uuid4()), user_id=administrator),
                                       routing_key)
                run.poison_sent += 1
    run.notes.append(f"published {run.poison_sent} bad messages")


async def sigterm_each_service(run: Run) -> None:
    """7. SIGTERM under load: each service drains and exits 0, then starts again."""
    for n, name in enumerate(run.stack.services):
        await run.at(0.15 + 0.8 * n / len(run.stack.services))
        code = await run.stack.terminate(name)
        if code != 0:
            run.problems.append(f"{name} exited {code} on SIGTERM")
        await run.stack.start(name)
        run.notes.append(f"SIGTERM {name}: exit {code}")


async def lose_broker_nodes(run: Run) -> None:
    """8. Broker node loss, on a local three-node cluster (scripts/rabbitmq-cluster.sh): kill -9
    a follower, restart it; then kill -9 the node that leads most of the stack's queues,
    restart it. The services list every node in their broker URL."""
    cluster = run.cluster
    assert cluster is not None, "this fault runs on the cluster (ON_BROKER_CLUSTER)"
    queues = await cluster.queues(run.stack.prefix)
    thin = [q["name"] for q in queues if len(q.get("members") or []) < len(CLUSTER_NODES)]
    if not queues or thin:
        run.problems.append(f"quorum queues without a replica on every node: {thin or 'no queues found'}")
    for fraction, role in ((0.2, "follower"), (0.55, "leader")):
        await run.at(fraction)
        leaders = Counter(str(q.get("leader", "")).split("@")[0] for q in await cluster.queues(run.stack.prefix))
        pick = max if role == "leader" else min  # the node leading the most queues, or the fewest
        node = pick(CLUSTER_NODES, key=lambda n: leaders.get(n, 0))
        await cluster.kill(node)
        killed = time.monotonic()
        # While it is down, every service must be connected to another node (not wait for it).
        users = {run.stack.deployment.deployment.user(BOUNDARY[name]) for name in run.stack.services}
        while not _on_live_nodes(moved := await cluster.connections(run.stack.prefix), users, dead=node):
            if time.monotonic() - killed > FAILOVER_DEADLINE_S:
                run.problems.append(f"{FAILOVER_DEADLINE_S:g} s after {node} was killed, the services' connections "
                                    f"were {moved}: not every one on a live node")
                break
            await asyncio.sleep(0.2)
        reconnected = time.monotonic() - killed
        await cluster.start(node)  # back from its own disk: it rejoins, its replicas catch up
        run.notes.append(f"killed -9 {node} ({role}: it led {leaders.get(node, 0)} of {sum(leaders.values())} "
                         f"queues); every service listed on a live node {reconnected:.1f} s later (an upper bound: the "
                         f"listing itself takes seconds while a node is just gone); {node} restarted")


def _on_live_nodes(connections: dict[str, set[str]], users: set[str], dead: str) -> bool:
    """Every one of `users` connected, and none of them to the `dead` node."""
    return users <= connections.keys() and all(dead not in connections[user] for user in users)


async def fail_over_database(run: Run) -> None:
    """9. Database failover, on a local primary and synchronous standby
    (scripts/postgres-pair.sh): kill -9 the primary, promote the standby, make the old primary
    its standby, and run on. The services list both hosts in their database URL, read-write."""
    pair = run.pair
    assert pair is not None, "this fault runs on the database pair (ON_DATABASE_PAIR)"
    await run.at(0.3)
    old = await pair.primary()
    new = next(node for node in PAIR_NODES if node != old)
    await pair.kill(old)
    promoted = await pair.promote(new)
    rejoined = await pair.rejoin(old)
    run.notes.append(f"killed -9 the primary {old}; promoted {new} ({promoted:.1f} s); {old} its standby again "
                     f"({rejoined:.1f} s; until then commits wait for a standby: replication is synchronous)")


async def no_fault(run: Run) -> None:
    """No fault at all: the baseline, and what the checker's own test breaks the code under."""


# Coroutine functions, not just awaitables: each runs as a task beside the workload.
Fault = Callable[[Run], Coroutine[Any, Any, None]]

FAULTS: dict[str, Fault] = {
    "kill -9": kill_each_service,
    "broker restart": restart_broker,
    "database restart": restart_database,
    "network cut": cut_network,
    "duplicates and reordering": duplicate_and_reorder,
    "bad input": flood_bad_input,
    "SIGTERM under load": sigterm_each_service,
    "broker node loss": lose_broker_nodes,
    "database failover": fail_over_database,
}
ON_BROKER_CLUSTER = {"broker node loss"}  # run with the services on the local RabbitMQ cluster
ON_DATABASE_PAIR = {"database failover"}  # and on the local Postgres primary and standby
ALL: dict[str, Fault] = {**FAULTS, "none": no_fault}
