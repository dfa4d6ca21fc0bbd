"""A whole system in the test's event loop: the four services with real connections to the
real broker and database, isolated by a topology prefix and a database of their own, and
provisioned as a deployment is (services/provisioning): each service connects as its own
broker user and Postgres role."""
from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import aio_pika
import asyncpg
import httpx

from services.backoffice.bootstrap import build as build_backoffice
from services.backoffice.config import BackofficeSettings
from services.intake.bootstrap import build as build_intake
from services.intake.config import IntakeSettings
from services.license_issuer.bootstrap import build as build_license_issuer
from services.license_issuer.config import LicenseIssuerSettings
from services.order_id.bootstrap import build as build_order_id
from services.order_id.config import OrderIdSettings
from services.portal.bootstrap import Portal
from services.portal.bootstrap import build as build_portal
from services.portal.config import PortalSettings
from services.provisioning import broker
from services.provisioning.boundaries import BOUNDARIES, queue_specs
from services.status.bootstrap import build as build_status
from services.status.config import StatusSettings
from shared import tenancy
from shared.config import ServiceSettings
from shared.contracts import catalogue, routing
from shared.contracts.envelope import CONTENT_TYPE
from shared.messaging.topology import Topology
from shared.runtime import Service
from shared.sealing import Keyring
from shared.tenancy import seed_api_keys
from tests.support.deployment import TestDeployment
from tests.support.drain import drain, work_queues
from tests.support.infra import Servers

BUILDERS: dict[str, Callable[[Any], Service]] = {
    "intake": build_intake,
    "status": build_status,
    "license_issuer": build_license_issuer,
    "order_id": build_order_id,
    "backoffice": build_backoffice,
}
MODELS: dict[str, type[ServiceSettings]] = {
    "intake": IntakeSettings,
    "status": StatusSettings,
    "license_issuer": LicenseIssuerSettings,
    "order_id": OrderIdSettings,
    "backoffice": BackofficeSettings,
}
BOUNDARY = {boundary.name.replace("-", "_"): boundary for boundary in BOUNDARIES}  # by module name
DEADLINE_S = 20.0
SUITE_AUTH_FAILURE_BURST = 1_000_000


async def eventually(probe: Callable[[], Awaitable[Any]], what: str, timeout: float = DEADLINE_S) -> Any:
    """Poll `probe` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last saw {last!r}")


@dataclass
class Tenant:
    name: str
    key: str


class StackSettings(IntakeSettings, StatusSettings, LicenseIssuerSettings, OrderIdSettings, BackofficeSettings):
    """Every service's settings at once, as a test sets them: each service runs with its own
    model's share of them (`Stack.service_settings`); the URLs are the administrator's."""


@dataclass
class Stack:
    settings: StackSettings
    servers: Servers
    services: dict[str, Service] = field(default_factory=dict)
    portal: Portal | None = None  # the tenants' origin: pages and the whole /v1 (start_portal)
    portal_keyring: str = field(default_factory=Keyring.new_key_text, repr=False)
    # Idle connections are dropped long before the server's keep-alive timeout could close
    # one under a request: that race answers a GET with a ReadError.
    http: httpx.AsyncClient = field(
        default_factory=lambda: httpx.AsyncClient(timeout=10, limits=httpx.Limits(keepalive_expiry=1.0))
    )
    closed: bool = False

    deployment: TestDeployment | None = None

    @classmethod
    async def create(cls, servers: Servers, *, provisioned: bool = True, **overrides: Any) -> Stack:
        """A stack with its own prefix and database. `settings` are the administrator's (the
        services get their own); `amqp_url` / `database_url` overrides say where the services
        connect (a fault proxy, say), with their own credentials. `provisioned=False`: leave
        the provisioning step to the test (`await stack.deployment.provision()`)."""
        unknown = set(overrides) - set(StackSettings.model_fields)
        assert not unknown, f"no service reads {sorted(unknown)}"
        retry_delays_s = overrides.get("retry_delays_s", (0.2, 0.5, 1.0))  # retries that fit in a test
        deployment = await TestDeployment.create(servers, "test", retry_delays_s)
        settings = StackSettings(
            amqp_url=servers.amqp_url,
            database_url=deployment.database_url,
            topology_prefix=deployment.topology.prefix,
            host="127.0.0.1",
            drain_timeout_s=5.0,
            retry_delays_s=retry_delays_s,
            db_pool_size=5,
            id_secret=secrets.token_urlsafe(24),
            license_key_keyring=Keyring.new_key_text(),
            session_keyring=Keyring.new_key_text(),  # the console's pages
            api_key_pepper=deployment.pepper,
            forwarding_secret=secrets.token_urlsafe(24),
            # The suite sends many deliberate wrong keys, all from 127.0.0.1, to stacks that live
            # for the session: at the production budget the tests after them could not use a
            # new key. tests/integration/test_auth_throttle.py runs that budget on its own stack.
            auth_failure_burst=SUITE_AUTH_FAILURE_BURST,
            port=0, metrics_port=0,  # any free one, for each service
        )
        stack = cls(settings.replace(**overrides), servers, deployment=deployment)
        if provisioned:
            await deployment.provision()
        return stack

    @property
    def topology(self) -> Topology:
        return Topology(self.settings.topology_prefix, self.settings.retry_delays_s)

    def service_settings(self, name: str) -> Any:
        """The settings a service runs with (its model's: `MODELS[name]`): its own broker user and
        database role."""
        assert self.deployment is not None
        amqp_url, database_url = self.deployment.urls(BOUNDARY[name], self.settings.amqp_url, self.settings.database_url)
        return MODELS[name].model_validate({**dict(self.settings), "amqp_url": amqp_url, "database_url": database_url})

    async def start(self, *names: str) -> None:
        """Start the services named; with no names, every one this stack's fulfilment mode uses
        (the back-office console only where something is announced to it: not in simulator mode)."""
        console = self.settings.fulfilment != "simulator"
        for name in names or tuple(n for n in BUILDERS if n != "backoffice" or console):
            service = BUILDERS[name](self.service_settings(name))
            await service.start()
            self.services[name] = service

    async def start_portal(self) -> Portal:
        """The portal in front of this stack's intake and status (started before it)."""
        portal = build_portal(PortalSettings(
            host="127.0.0.1", intake_url=self.url("intake", ""), status_url=self.url("status", ""),
            session_keyring=self.portal_keyring, drain_timeout_s=self.settings.drain_timeout_s,
            forwarding_secret=self.settings.forwarding_secret,
            port=0, metrics_port=0,
        ))
        await portal.start()
        self.portal = portal
        return portal

    @property
    def portal_url(self) -> str:
        assert self.portal is not None, "start_portal() first"
        return f"http://127.0.0.1:{self.portal.bound_port}"

    async def stop(self, *names: str) -> None:
        """Stop (drain) the services named, one after the other; with no names, the portal and
        then every service at once, as a deployment stops (each drains on its own)."""
        if names:
            for name in names:
                await self.services.pop(name).stop()
            return
        if self.portal is not None:
            portal, self.portal = self.portal, None
            await portal.stop()
        services = [self.services.pop(name) for name in tuple(self.services)]
        stopped = await asyncio.gather(*(service.stop() for service in services), return_exceptions=True)
        for outcome in stopped:  # every one stopped, or tried to, before the first failure is raised
            if isinstance(outcome, BaseException):
                raise outcome

    async def close(self) -> None:
        """Stop the services, remove the topology and database; a second call does nothing."""
        if self.closed:
            return
        self.closed = True
        try:
            await self.stop()
            await self.http.aclose()
        finally:
            if self.deployment is not None:
                await self.deployment.remove()

    # ---- tenants and HTTP ----------------------------------------------------------------
    def new_publisher(self) -> tuple[str, str]:
        """Another system's broker user that submits, onboarded as docs/security.md says
        (removed with the stack); returns its name and its AMQP URL."""
        return self._onboard("billing", broker.direct_publisher)

    def new_fulfiller(self) -> tuple[str, str]:
        """Another system's broker user that fulfils tasks (`USER.fulfilment`, results to
        `arcserve.fulfilment`), as docs/security.md says; allowed for nothing yet."""
        name, url = self._onboard("orders", broker.fulfiller)
        assert self.deployment is not None
        self.deployment.extra_queues.append(broker.fulfilment_queue(name))
        return name, url

    def _onboard(self, what: str, definitions: Callable[[Topology, str, str], dict[str, Any]]) -> tuple[str, str]:
        assert self.deployment is not None
        name, password = f"{self.settings.topology_prefix}{what}-{uuid.uuid4().hex[:6]}", secrets.token_urlsafe(16)
        self.deployment.extra_users.append(name)
        management = broker.Management.for_amqp_url(self.settings.amqp_url, self.servers.management_url)
        management.import_definitions(definitions(self.topology, name, password))
        parts = urlsplit(self.settings.amqp_url)
        netloc = f"{quote(name, safe='')}:{quote(password, safe='')}@{parts.hostname}:{parts.port or 5672}"
        return name, urlunsplit(parts._replace(netloc=netloc))

    async def tenant(self) -> Tenant:
        """A new tenant with an API key, for which the administrator may also publish
        submissions straight to the broker (`publish_raw`), as an allowed direct publisher."""
        tenant = Tenant(f"tenant-{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(24))
        conn = await asyncpg.connect(self.settings.database_url)
        try:
            await seed_api_keys(conn, {tenant.key: tenant.name}, self.pepper)
            await tenancy.allow(conn, self.administrator, [tenant.name])
        finally:
            await conn.close()
        return tenant

    @property
    def pepper(self) -> bytes:
        return self.settings.api_key_pepper.get_secret_value().encode()

    @property
    def administrator(self) -> str:
        """The broker user of the administrator's AMQP URL."""
        return urlsplit(self.settings.amqp_url).username or "guest"

    def url(self, service: str, path: str) -> str:
        return f"http://127.0.0.1:{self.services[service].bound_port}{path}"

    def operator_url(self, service: str, path: str) -> str:
        """On the service's internal operator port (/metrics, /healthz, /readyz)."""
        return f"http://127.0.0.1:{self.services[service].bound_metrics_port}{path}"

    async def submit(self, tenant: Tenant, body: Any, *, idempotency_key: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {tenant.key}"}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        return await self.http.post(self.url("intake", "/v1/applications"), json=body, headers=headers)

    async def get(self, tenant: Tenant, path: str) -> httpx.Response:
        return await self.http.get(self.url("status", path), headers={"Authorization": f"Bearer {tenant.key}"})

    async def wait_application(self, tenant: Tenant, application_id: str, *statuses: str) -> dict[str, Any]:
        """Poll the application until it reaches one of `statuses` (default: it ended)."""
        wanted = statuses or ("completed", "rejected")

        async def probe() -> dict[str, Any] | None:
            response = await self.get(tenant, f"/v1/applications/{application_id}")
            if response.status_code == 200 and response.json()["status"] in wanted:
                return response.json()
            return None

        return await eventually(probe, f"application {application_id} to be {'/'.join(wanted)}")

    async def apply(self, tenant: Tenant, body: dict[str, Any], *statuses: str) -> dict[str, Any]:
        response = await self.submit(tenant, body)
        assert response.status_code == 202, response.text
        return await self.wait_application(tenant, response.json()["application_id"], *statuses)

    async def contract(self, tenant: Tenant, contract_id: str) -> dict[str, Any]:
        response = await self.get(tenant, f"/v1/contracts/{contract_id}")
        assert response.status_code == 200, response.text
        return response.json()

    async def active_contract(self, tenant: Tenant, licenses: list[dict[str, Any]] | None = None,
                              product: str = "arcserve-udp-10") -> dict[str, Any]:
        application = await self.apply(tenant, new_application(licenses, product=product))
        assert application["status"] == "completed", application
        return await self.contract(tenant, application["contract_id"])

    async def drained(self) -> None:
        """Wait until nothing is left in flight: outbox, queues, processing applications."""
        await drain(self.servers.rabbitmqctl, self.settings.database_url, work_queues(self.topology),
                    amqp_url=self.servers.amqp_url)

    async def handled(self, message_id: str, consumer: str) -> bool:
        """Whether `consumer` (a subscriber's name, e.g. "arcserve.status.results") has
        handled the message (its service's inbox)."""
        schema = next(b.schema.name for b in BOUNDARIES for s in b.subscribers if s.name == consumer and b.schema)
        conn = await asyncpg.connect(self.settings.database_url)
        try:
            return bool(await conn.fetchval(
                f"SELECT true FROM {schema}.inbox WHERE message_id = $1 AND consumer = $2", message_id, consumer
            ))
        finally:
            await conn.close()

    # ---- license keys (sealed, shared/sealing.py) ------------------------------------------
    @property
    def keyring(self) -> Keyring:
        return Keyring.parse(self.settings.license_key_keyring.get_secret_value())

    def opened(self, keys_event: dict[str, Any]) -> dict[str, str]:
        """A `license.keys` event's keys in clear: license id → key."""
        return {k["license_id"]: self.keyring.open(k["sealed_key"], context=k["license_id"])
                for k in keys_event["data"]["keys"]}

    def license_keys(self, tenant: str, application_id: str, contract_id: str,
                     keys: dict[str, str]) -> dict[str, Any]:
        """A `license.keys` event as the license issuer would send it (license id → key)."""
        return {
            "specversion": "1.0", "id": str(uuid.uuid4()), "source": "urn:test:issuer",
            "type": "arcserve.license.keys", "tenantid": tenant, "subject": contract_id,
            "data": {"application_id": application_id, "contract_id": contract_id,
                     "keys": [{"license_id": i, "sealed_key": self.keyring.seal(key, context=i)} for i, key in keys.items()]},
        }

    @property
    def keys_exchange(self) -> str:
        return self.topology.name(routing.LICENSE_KEYS_EXCHANGE)

    # ---- raw AMQP ------------------------------------------------------------------------
    async def publish_raw(self, exchange: str, routing_key: str, body: bytes, *, message_id: str | None = None,
                          amqp_url: str | None = None) -> None:
        """Publish as the administrator (or as the user of `amqp_url`), with `user_id` set
        as a direct publisher must set it."""
        amqp_url = amqp_url or self.settings.amqp_url
        connection = await aio_pika.connect(amqp_url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            target = await channel.get_exchange(exchange, ensure=False)
            await target.publish(
                aio_pika.Message(body, content_type=CONTENT_TYPE, message_id=message_id,
                                 delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                                 user_id=unquote(urlsplit(amqp_url).username or "guest")),
                routing_key,
            )

    async def publish_event(self, exchange: str, routing_key: str, event: dict[str, Any], *,
                            amqp_url: str | None = None) -> None:
        """Publish a CloudEvent: an event of the catalogue as the service that publishes its
        type (the only publisher its consumers trust), anything else as the administrator
        (or as the user of `amqp_url`)."""
        entry = catalogue.by_type(str(event.get("type")))
        if amqp_url is None and entry is not None and entry.publisher is not None:
            amqp_url = self.service_settings(entry.publisher.replace("-", "_")).amqp_url
        await self.publish_raw(exchange, routing_key, json.dumps(event).encode(), message_id=event.get("id"),
                               amqp_url=amqp_url)


def new_application(licenses: list[dict[str, Any]] | None = None, product: str = "arcserve-udp-10") -> dict[str, Any]:
    return {
        "kind": "new",
        "product": product,
        "contact": {"email": "ops@example.co.jp", "company_name": "Example K.K."},
        "licenses": licenses or [{"usage": "virtual_server", "license_type": "per_server", "quantity": 2}],
    }


def submission(tenant: str | None, body: dict[str, Any], *, application_id: str | None = None,
               event_id: str | None = None, **envelope: Any) -> dict[str, Any]:
    """A CloudEvent as another system would publish it to `arcserve.applications`."""
    application_id = application_id or str(uuid.uuid4())
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": event_id or str(uuid.uuid4()),
        "source": "urn:test:other-system",
        "type": f"arcserve.application.{body.get('kind')}",
        "time": "2026-11-27T01:00:00Z",
        "datacontenttype": "application/json",
        "data": {**body, "application_id": application_id},
    }
    if tenant is not None:
        event["tenantid"] = tenant
    event.update(envelope)
    return event


def _json_body(message: aio_pika.abc.AbstractIncomingMessage) -> Any:
    return json.loads(message.body)


class EventTap:
    """Everything published on `arcserve.events` (or another exchange: `exchange`) while the
    tap is open (its own queue, declared as the administrator), each message as `decode`
    reads it (its JSON body, by default), beside its routing key."""

    def __init__(self, stack: Stack, binding: str = "#", exchange: str = routing.EVENTS_EXCHANGE,
                 decode: Callable[[aio_pika.abc.AbstractIncomingMessage], Any] = _json_body):
        self.stack = stack
        self.binding = binding
        self.exchange = stack.topology.name(exchange)
        self.decode = decode
        self.events: list[tuple[str, Any]] = []

    async def __aenter__(self) -> EventTap:
        self._connection = await aio_pika.connect(self.stack.settings.amqp_url)
        channel = await self._connection.channel()
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(self.exchange, self.binding)

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            async with message.process():
                self.events.append((message.routing_key or "", self.decode(message)))

        await queue.consume(on_message)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._connection.close()

    def matching(self, routing_key: str, **data: Any) -> list[dict[str, Any]]:
        return [
            event for key, event in self.events
            if key == routing_key and all(event.get("data", {}).get(k) == v for k, v in data.items())
        ]

    async def wait_for(self, routing_key: str, **data: Any) -> dict[str, Any]:
        async def probe() -> dict[str, Any] | None:
            found = self.matching(routing_key, **data)
            return found[0] if found else None

        return await eventually(probe, f"event {routing_key} {data}")


class SubmissionTap:
    """Everything published to `arcserve.applications` while open (a queue of its own)."""

    def __init__(self, stack: Stack):
        self.stack = stack
        self.messages: list[dict[str, Any]] = []

    async def __aenter__(self) -> SubmissionTap:
        self._connection = await aio_pika.connect(self.stack.settings.amqp_url)
        channel = await self._connection.channel()
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(self.stack.topology.applications, "#")

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            async with message.process():
                self.messages.append(json.loads(message.body))

        await queue.consume(on_message)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._connection.close()

    def of(self, tenant: Tenant) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("tenantid") == tenant.name]

    async def wait_for(self, application_id: str) -> dict[str, Any]:
        async def probe() -> dict[str, Any] | None:
            found = [m for m in self.messages if m.get("data", {}).get("application_id") == application_id]
            return found[0] if found else None

        return await eventually(probe, f"submission {application_id} on the applications exchange")


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code and isinstance(body["message"], str) and body["message"], body
    return body


async def dead_letters(stack: Stack, queue: str, count: int) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """Take `count` messages from the dead-letter queue of `queue` (a QueueSpec name)."""
    spec = next(s for s in queue_specs() if s.name == queue)
    connection = await aio_pika.connect(stack.settings.amqp_url)
    taken: list[aio_pika.abc.AbstractIncomingMessage] = []
    async with connection:
        channel = await connection.channel()
        dlq = await channel.get_queue(stack.topology.dead_letter_queue(spec))

        async def probe() -> bool:
            message = await dlq.get(fail=False)
            if message is not None:
                await message.ack()
                taken.append(message)
            return len(taken) >= count

        await eventually(probe, f"{count} dead letters in {queue}")
    return taken


async def dead_letters_kept(stack: Stack, queue: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """The first dead letter of `queue` (a QueueSpec name), looked at and left there (for a replay)."""
    spec = next(s for s in queue_specs() if s.name == queue)
    connection = await aio_pika.connect(stack.settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        dlq = await channel.get_queue(stack.topology.dead_letter_queue(spec))

        async def probe() -> list[aio_pika.abc.AbstractIncomingMessage] | None:
            message = await dlq.get(fail=False)
            if message is None:
                return None
            await message.nack(requeue=True)
            return [message]

        return await eventually(probe, f"a dead letter in {queue}")
