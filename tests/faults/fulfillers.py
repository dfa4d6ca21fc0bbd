"""Where a fault run's results come from outside simulator mode (`--fulfilment`): the
provider's order system (`external`: a broker user of its own, allowed for fulfilment, taking
tasks and revocations from its queue) or an operator at the console (`back-office`: its JSON
API). Either answers every task with what Arcserve "delivered", derived from the ids (so the
checker knows the key each license must hold and the order ID each contract must have), and
confirms every revocation. It answers `LAG_S` after a task is announced, so that requests are
always waiting when a fault strikes, and keeps going through the faults: a broker or console
that is away is tried again."""
from __future__ import annotations

import abc
import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import secrets
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aio_pika
import asyncpg
import httpx

from services.provisioning import broker
from services.provisioning.deployment import with_credentials
from shared import tenancy
from shared.contracts.envelope import CONTENT_TYPE
from shared.messaging import nodes
from shared.tenancy.operators import OperatorRole, create_operator
from tests.faults.processes import ProcessStack

log = logging.getLogger(__name__)
LAG_S = 0.5  # how long a task waits for its answer
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_SECRET = b"the fault suite's Arcserve"


def _letters(seed: str, n: int) -> str:
    digest = hmac.new(_SECRET, seed.encode(), hashlib.sha256).digest()
    return "".join(_ALPHABET[b % len(_ALPHABET)] for b in digest[:n])


def key_for(license_id: str) -> str:
    """The key Arcserve delivers for that license, whoever asks and however often."""
    letters = _letters(license_id, 25)
    return "-".join(letters[i:i + 5] for i in range(0, 25, 5))


def order_id_for(contract_id: str) -> str:
    return f"ARC-FAULTS-{_letters(contract_id, 10)}"


def fulfilment_of(task: dict[str, Any]) -> dict[str, Any]:
    """The body of a task's result (`fulfilment.fulfilled` without its application id)."""
    body: dict[str, Any] = {"license_keys": [{"license_id": lic["license_id"], "license_key": key_for(lic["license_id"])}
                                             for lic in task["needs"]["licenses"]]}
    if task["needs"]["arcserve_order_id"]:
        body["arcserve_order_id"] = order_id_for(task["contract_id"])
    return body


class Fulfiller(abc.ABC):
    """Runs beside the workload until stopped; `answered` counts what it answered, by kind.
    Each source says how it answers (`run_once`) and what it needs first (`prepare`)."""

    def __init__(self, stack: ProcessStack):
        self.stack = stack
        self.answered: Counter[str] = Counter()
        self.problems: list[str] = []  # answers refused for what they were: the run fails on them
        self._task: asyncio.Task[None] | None = None
        self._answering: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Fulfiller:
        await self.prepare()
        self._task = asyncio.create_task(self._forever())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    @abc.abstractmethod
    async def prepare(self) -> None:
        """Whatever the source needs before the run: a broker user, an operator."""

    @abc.abstractmethod
    async def run_once(self) -> None:
        """Answer until something fails."""

    async def _forever(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the broker or the console is away for the fault: again
                log.info("the fault run's fulfiller pauses (%r)", exc)
                await asyncio.sleep(0.5)

    def note(self) -> str:
        return f"results from {type(self).__name__}: {dict(self.answered)}"


class OrderSystem(Fulfiller):
    """`external`: another system of the provider, on the broker."""

    async def prepare(self) -> None:
        name, password = f"{self.stack.prefix}orders-{uuid.uuid4().hex[:6]}", secrets.token_urlsafe(16)
        self.stack.deployment.extra_users.append(name)
        self.stack.deployment.extra_queues.append(broker.fulfilment_queue(name))
        management = broker.Management.for_amqp_url(self.stack.amqp_url, self.stack.servers.management_url)
        management.import_definitions(broker.fulfiller(self.stack.topology, name, password))
        conn = await asyncpg.connect(self.stack.database_url)
        try:
            await tenancy.allow_fulfilment(conn, name)
        finally:
            await conn.close()
        self.name, self.url = name, with_credentials(self.stack.amqp_url, name, password)  # every node of a cluster

    async def run_once(self) -> None:
        connection = await nodes.connect(self.url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            await channel.set_qos(prefetch_count=50)
            queue = await channel.get_queue(broker.fulfilment_queue(self.name), ensure=False)
            results = await channel.get_exchange(self.stack.topology.name("arcserve.fulfilment"), ensure=False)
            closed = asyncio.Event()
            connection.close_callbacks.add(lambda *_: closed.set())

            async def answer(message: aio_pika.abc.AbstractIncomingMessage) -> None:
                event = json.loads(message.body)
                data = event["data"]
                if event["type"] == "arcserve.fulfilment.revocation_requested":
                    kind, body = "revocation_confirmed", {}
                else:
                    await asyncio.sleep(LAG_S)
                    kind, body = "fulfilled", fulfilment_of(data)
                result = {"specversion": "1.0", "id": str(uuid.uuid4()), "source": "urn:faults:order-system",
                          "type": f"arcserve.fulfilment.{kind}", "time": datetime.now(UTC).isoformat(),
                          "tenantid": event["tenantid"], "data": {"application_id": data["application_id"], **body}}
                try:
                    await results.publish(aio_pika.Message(
                        json.dumps(result).encode(), content_type=CONTENT_TYPE, message_id=result["id"],
                        user_id=self.name, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                        f"fulfilment.{kind}", mandatory=True)
                except Exception:
                    return  # unacked: the broker hands it out again
                await message.ack()  # only once the result is the broker's
                self.answered[kind] += 1

            async def take(message: aio_pika.abc.AbstractIncomingMessage) -> None:
                answering = asyncio.create_task(answer(message))  # each waits its lag beside the others
                self._answering.add(answering)
                answering.add_done_callback(self._answering.discard)

            await queue.consume(take)
            await closed.wait()
            raise ConnectionError("the order system's connection closed")


class Operator(Fulfiller):
    """`back-office`: an operator at the console, through its JSON API."""

    async def prepare(self) -> None:
        conn = await asyncpg.connect(self.stack.database_url)
        try:
            _, self.key = await create_operator(conn, self.stack.pepper.encode(), "faults", OperatorRole.FULFILLER)
        finally:
            await conn.close()

    async def run_once(self) -> None:
        async with httpx.AsyncClient(timeout=10, headers={"Authorization": f"Bearer {self.key}"}) as http:
            while True:
                did = await self._tasks(http) + await self._revocations(http)
                if not did:
                    await asyncio.sleep(0.2)

    async def _each(self, http: httpx.AsyncClient, listing: str, act: Callable[[dict[str, Any]], Awaitable[str]]) -> int:
        response = await http.get(self.stack.url("backoffice", listing))
        if response.status_code != 200:
            raise ConnectionError(f"the console answered {response.status_code}")
        items: list[dict[str, Any]] = response.json()["items"]
        for item in items:
            self.answered[await act(item)] += 1
        return len(items)

    async def _tasks(self, http: httpx.AsyncClient) -> int:
        async def fulfil(task: dict[str, Any]) -> str:
            waited = (datetime.now(UTC) - datetime.fromisoformat(task["submitted_at"])).total_seconds()
            await asyncio.sleep(max(0.0, LAG_S - waited))
            answer = await http.post(self.stack.url("backoffice", f"/ops/v1/fulfilments/{task['application_id']}/fulfil"),
                                     params={"tenant": task["tenant"]}, json=fulfilment_of(task))
            return self._outcome("fulfilled", answer)

        return await self._each(http, "/ops/v1/fulfilments?state=open&limit=100", fulfil)

    async def _revocations(self, http: httpx.AsyncClient) -> int:
        async def confirm(revocation: dict[str, Any]) -> str:
            answer = await http.post(
                self.stack.url("backoffice", f"/ops/v1/revocations/{revocation['application_id']}/confirm"),
                params={"tenant": revocation["tenant"]})
            return self._outcome("revocation_confirmed", answer)

        return await self._each(http, "/ops/v1/revocations?state=open&limit=100", confirm)

    def _outcome(self, done: str, answer: httpx.Response) -> str:
        """What the console made of an answer: done, closed meanwhile (409), or not now (tried again)."""
        if answer.status_code == 200:
            return done
        if answer.status_code == 409:
            return f"{done} before"
        if answer.status_code >= 500:
            raise ConnectionError(f"the console answered {answer.status_code}")
        self.problems.append(f"the console refused an answer: {answer.status_code} {answer.text[:300]}")
        return "refused"


SOURCES: dict[str, type[Fulfiller] | None] = {"simulator": None, "external": OrderSystem, "back-office": Operator}
