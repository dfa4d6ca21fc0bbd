"""Each service owns its boundary, proven on the real broker and database: a service's broker
user and Postgres role can do what it needs and nothing of another service's; a service
started before its schema is at its version waits, not ready, and says so; and the four
services started at the same moment, with a thousand tenants' keys provisioned, all come up.
"""
from __future__ import annotations

import asyncio
import logging
import os
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import aio_pika
import aiormq
import asyncpg
import httpx
import pytest

from services.provisioning.boundaries import BOUNDARIES
from services.status.handlers import RESULTS, SUBMISSIONS
from shared.sealing import Keyring
from tests.support.deployment import TestDeployment
from tests.support.infra import Servers
from tests.support.ports import free_ports
from tests.support.stack import BUILDERS, Stack, eventually, new_application

ROOT = Path(__file__).resolve().parents[2]


async def _ignore(message: aio_pika.abc.AbstractIncomingMessage) -> None:
    return None


async def _connect_as(stack: Stack, service: str) -> aio_pika.abc.AbstractConnection:
    return await aio_pika.connect(stack.service_settings(service).amqp_url)


async def test_the_license_issuers_broker_user_cannot_consume_the_status_queues(stack: Stack) -> None:
    connection = await _connect_as(stack, "license_issuer")
    async with connection:
        own = await (await connection.channel()).get_queue(stack.topology.name("arcserve.license-issuer"))
        assert await own.get(fail=False) is None  # its own queue: allowed (and empty)
        for spec in (SUBMISSIONS.spec, RESULTS.spec):
            channel = await connection.channel()
            queue = await channel.get_queue(stack.topology.queue(spec))  # passive: no right needed
            with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
                await queue.consume(_ignore)


REFUSED = (aiormq.exceptions.ChannelAccessRefused, aiormq.exceptions.ChannelInvalidStateError)


async def test_the_license_issuers_broker_user_publishes_only_its_own_events(new_stack: Callable[..., Any]) -> None:
    stack: Stack = await new_stack()  # its own: the allowed publish below reaches its status queue
    connection = await _connect_as(stack, "license_issuer")
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        events = await channel.get_exchange(stack.topology.events, ensure=False)
        await events.publish(aio_pika.Message(b"{}"), "license.issued")  # its own kind of event: confirmed
        for exchange, routing_key in (
            (stack.topology.events, "application.accepted.new"),  # passing itself off as the status service
            (stack.topology.events, "order_id.issued"),
            (stack.topology.applications, "new"),  # a submission
            ("", stack.topology.queue(SUBMISSIONS.spec)),  # the default exchange, which reaches any queue
        ):
            channel = await connection.channel(publisher_confirms=True)
            target = channel.default_exchange if exchange == "" else await channel.get_exchange(exchange, ensure=False)
            with pytest.raises(REFUSED):
                await target.publish(aio_pika.Message(b"{}"), routing_key)


async def _as_role(stack: Stack, service: str) -> asyncpg.Connection:
    return await asyncpg.connect(stack.service_settings(service).database_url)


async def test_the_license_issuers_role_cannot_read_status_tables(stack: Stack) -> None:
    conn = await _as_role(stack, "license_issuer")
    try:
        assert await conn.fetchval("SELECT count(*) FROM license_issuer.keys") >= 0  # its own: allowed
        for table in ("status.contracts", "status.licenses", "status.applications", "status.outbox", "tenancy.api_keys"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetchval(f"SELECT count(*) FROM {table}")
    finally:
        await conn.close()


async def test_the_intakes_role_reads_tenancy_and_cannot_write_contracts(stack: Stack) -> None:
    conn = await _as_role(stack, "intake")
    try:
        assert await conn.fetchval("SELECT count(*) FROM tenancy.api_keys") >= 0
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(
                """INSERT INTO status.contracts (contract_id, tenant_id, product_code, status, contact_email,
                       contact_company_name, created_at, updated_at)
                   VALUES (gen_random_uuid(), 't', 'p', 'active', 'e', 'c', now(), now())""")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("INSERT INTO tenancy.tenants (tenant_id) VALUES ('forged')")
    finally:
        await conn.close()


async def test_a_service_role_cannot_rewrite_its_migrations(stack: Stack) -> None:
    conn = await _as_role(stack, "status")
    try:
        assert await conn.fetchval("SELECT count(*) FROM status.contracts") >= 0
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM status.schema_migrations")
    finally:
        await conn.close()


async def test_a_service_started_before_its_schema_is_at_its_version_waits_not_ready(
    new_stack: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    stack: Stack = await new_stack()
    admin = await asyncpg.connect(stack.settings.database_url)
    try:
        # The database is one migration behind what this build of the service needs.
        await admin.execute("DELETE FROM status.schema_migrations WHERE version = '0001_status'")
        service = BUILDERS["status"](stack.service_settings("status"))
        caplog.set_level(logging.WARNING, logger="shared.runtime")
        starting = asyncio.create_task(service.start())
        try:
            async def waiting() -> bool:
                return "status is not ready: waiting for its database schemas" in caplog.text

            await eventually(waiting, "the service to say what it waits for")
            assert "schema status lacks 0001_status" in caplog.text
            readyz = await stack.http.get(f"http://127.0.0.1:{service.bound_port}/readyz")
            assert readyz.status_code == 503 and not starting.done()

            # The provisioning step catches up: the service goes on by itself.
            await admin.execute("INSERT INTO status.schema_migrations (version) VALUES ('0001_status')")
            await asyncio.wait_for(starting, timeout=30)
            readyz = await stack.http.get(f"http://127.0.0.1:{service.bound_port}/readyz")
            assert readyz.status_code == 200
        finally:
            if not starting.done():
                service.stopping.set()
                await asyncio.gather(starting, return_exceptions=True)
            await service.stop()
    finally:
        await admin.close()




@pytest.mark.slow
async def test_four_services_started_at_once_with_a_thousand_tenants_keys_all_come_up(
    infrastructure: Servers, tmp_path: Path
) -> None:
    keys = {secrets.token_urlsafe(18): f"tenant-{n:04d}" for n in range(1000)}
    deployment = await TestDeployment.create(infrastructure, "test", (0.2, 0.5, 1.0))
    processes: list[asyncio.subprocess.Process] = []
    logs: dict[str, BinaryIO] = {}
    try:
        await deployment.provision(keys=keys)
        ports = dict(zip(("intake", "status", "license_issuer", "order_id"), free_ports(4), strict=True))
        env = {**os.environ, "ARCSERVE_TOPOLOGY_PREFIX": deployment.topology.prefix, "ARCSERVE_HOST": "127.0.0.1",
               "ARCSERVE_ID_SECRET": secrets.token_urlsafe(24), "ARCSERVE_LICENSE_KEY_KEYRING": Keyring.new_key_text(),
               "ARCSERVE_API_KEY_PEPPER": deployment.pepper,
               "ARCSERVE_RETRY_DELAYS_S": "0.2,0.5,1", "ARCSERVE_API_KEYS": ",".join(f"{t}:{k}" for k, t in keys.items()),
               **{f"{name.upper()}_PORT": str(port) for name, port in ports.items()}}
        for boundary in BOUNDARIES:
            amqp_url, database_url = deployment.urls(boundary, infrastructure.amqp_url, deployment.database_url)
            env[f"{boundary.env_prefix}_AMQP_URL"], env[f"{boundary.env_prefix}_DATABASE_URL"] = amqp_url, database_url
        logs.update({name: (tmp_path / f"{name}.log").open("wb") for name in ports})  # read if one crashes
        processes = list(await asyncio.gather(*(
            asyncio.create_subprocess_exec(sys.executable, "-m", f"services.{name}", cwd=ROOT, env=env,
                                           stdout=logs[name], stderr=logs[name])
            for name in ports
        )))
        async with httpx.AsyncClient(timeout=5) as http:
            deadline = time.monotonic() + 60
            for name, port in ports.items():
                while True:
                    crashed = [n for n, p in zip(ports, processes, strict=True) if p.returncode is not None]
                    assert not crashed, (tmp_path / f"{crashed[0]}.log").read_text(errors="replace")
                    try:
                        if (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    assert time.monotonic() < deadline, f"{name} did not become ready"
                    await asyncio.sleep(0.1)
            last_key, last_tenant = list(keys.items())[-1]
            answer = await http.post(f"http://127.0.0.1:{ports['intake']}/v1/applications", json=new_application(),
                                     headers={"Authorization": f"Bearer {last_key}"})
            assert answer.status_code == 202, answer.text
    finally:
        for process in processes:
            if process.returncode is None:
                process.terminate()
        for process in processes:
            await process.wait()
        for log in logs.values():
            log.close()
        await deployment.remove()
