"""The four services as real processes, on their own topology prefix and database,
provisioned as a deployment is, each connecting with its own credentials through fault
proxies, so a fault can kill, stop, or cut any part of the system."""
from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

from services.provisioning.boundaries import BOUNDARIES
from shared.messaging.topology import Topology
from shared.sealing import Keyring
from tests.support.deployment import TestDeployment
from tests.support.drain import drain, work_queues
from tests.support.infra import Servers
from tests.support.ports import free_ports
from tests.support.proxy import FaultProxy

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("intake", "status", "license_issuer", "order_id")  # and the console, outside simulator mode
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)  # short retries: a fault run is minutes, not hours
BOUNDARY = {boundary.name.replace("-", "_"): boundary for boundary in BOUNDARIES}  # by module name




@dataclass
class ProcessStack:
    servers: Servers
    logs: Path
    sabotage: str | None = None  # a breakage of tests/faults/sabotage.py, for the checker's own test
    log_level: str = "WARNING"
    kind: str = "faults"  # of its names (tests/support/leftovers.py): faults, or bench
    proxied: bool = True  # through fault proxies (the fault suite), or straight (the benchmark)
    extra_env: dict[str, str] = field(default_factory=dict)  # for every service, e.g. where traces go
    fulfilment: str = "simulator"  # ARCSERVE_FULFILMENT: where keys, order IDs and confirmations come from
    services: tuple[str, ...] = SERVICES
    _ports: list[int] = field(default_factory=list)
    processes: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)
    exit_codes: list[tuple[str, int]] = field(default_factory=list)
    id_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    keyring: str = field(default_factory=Keyring.new_key_text)  # ARCSERVE_LICENSE_KEY_KEYRING
    pepper: str = field(default_factory=lambda: secrets.token_urlsafe(24))  # ARCSERVE_API_KEY_PEPPER
    session_keyring: str = field(default_factory=Keyring.new_key_text)  # the console's

    def __post_init__(self) -> None:
        if self.fulfilment != "simulator":  # the console takes what is announced, whoever answers it
            self.services = (*SERVICES, "backoffice")
        # Each service's public port, then its operator port (all bound at once, so they differ).
        self._ports = free_ports(2 * len(self.services))

    @property
    def ports(self) -> dict[str, int]:
        return dict(zip(self.services, self._ports[:len(self.services)], strict=True))

    @property
    def metrics_ports(self) -> dict[str, int]:
        return dict(zip(self.services, self._ports[len(self.services):], strict=True))

    @property
    def amqp_url(self) -> str:
        return self.servers.amqp_url

    @property
    def admin_url(self) -> str:
        return self.servers.admin_url

    @property
    def database_url(self) -> str:
        """Its database, with the administrator's credentials."""
        return self.deployment.database_url

    @property
    def prefix(self) -> str:
        return self.deployment.topology.prefix

    async def __aenter__(self) -> ProcessStack:
        self.deployment = await TestDeployment.create(self.servers, self.kind, RETRY_DELAYS)
        self.deployment.extra_queues.append(f"{self.prefix}faults.event-log")
        await self.deployment.provision()
        if self.proxied:  # before one broker and one database (a cluster's nodes are reached directly)
            self.broker_proxy = FaultProxy(*self._split(self.amqp_url))
            self.database_proxy = FaultProxy(*self._split(self.database_url))
            await self.broker_proxy.start()
            await self.database_proxy.start()
        self.logs.mkdir(parents=True, exist_ok=True)
        try:
            for name in self.services:
                await self.start(name)
            await self.wait_ready()
        except BaseException:  # interrupted while starting: `async with` will not exit for us
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        running = list(self.processes.values())
        try:
            # All at once, as a deployment stops: each drains on its own (a service's drain does
            # not wait on another's), so one after the other only added up their drains.
            await asyncio.gather(*(self.terminate(name) for name in list(self.processes)))
            if self.proxied:
                await self.broker_proxy.close()
                await self.database_proxy.close()
        finally:
            for process in [*running, *self.processes.values()]:  # a service still up holds its connections
                if process.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(process.pid, signal.SIGKILL)
            self.processes.clear()
            await self.deployment.remove()

    @staticmethod
    def _split(url: str) -> tuple[str, int]:
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        return parts.hostname or "127.0.0.1", parts.port or (5672 if parts.scheme.startswith("amqp") else 5432)

    @property
    def topology(self) -> Topology:
        return self.deployment.topology

    def url(self, name: str, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}{path}"

    def environment(self, name: str) -> dict[str, str]:
        env = dict(os.environ)
        boundary = BOUNDARY[name]
        amqp_url, database_url = self.deployment.urls(
            boundary, *((self.broker_proxy.url_for(self.amqp_url), self.database_proxy.url_for(self.database_url))
                        if self.proxied else (self.amqp_url, self.database_url))
        )
        env.update({
            f"{boundary.env_prefix}_AMQP_URL": amqp_url,
            f"{boundary.env_prefix}_DATABASE_URL": database_url,
        })
        env.update(
            ARCSERVE_TOPOLOGY_PREFIX=self.prefix,
            ARCSERVE_RETRY_DELAYS_S=",".join(f"{d:g}" for d in RETRY_DELAYS),
            ARCSERVE_HOST="127.0.0.1",
            ARCSERVE_DRAIN_TIMEOUT_S="10",
            ARCSERVE_ID_SECRET=self.id_secret,
            ARCSERVE_LICENSE_KEY_KEYRING=self.keyring,
            ARCSERVE_API_KEY_PEPPER=self.pepper,
            ARCSERVE_FULFILMENT=self.fulfilment,
            ARCSERVE_BACKOFFICE_SESSION_KEYRING=self.session_keyring,
            LICENSE_ISSUER_REVOCATION_RETRY_S="2",  # an announcement lost to a fault is made again soon
            LOG_LEVEL=self.log_level,
        )
        env.update(self.extra_env)
        env[f"{boundary.env_prefix}_PORT"] = str(self.ports[name])
        env[f"{boundary.env_prefix}_METRICS_PORT"] = str(self.metrics_ports[name])
        return env

    async def start(self, name: str) -> None:
        log = open(self.logs / f"{self.prefix}{name}.log", "ab")
        module = ["-m", f"services.{name}"]
        if self.sabotage:  # the service runs through the breakage's wrapper
            module = ["-m", "tests.faults.sabotage", self.sabotage, *module]
        self.processes[name] = await asyncio.create_subprocess_exec(
            sys.executable, *module, cwd=ROOT, env=self.environment(name), stdout=log, stderr=log
        )
        log.close()

    async def kill(self, name: str) -> None:
        """kill -9: no drain, no goodbye."""
        process = self.processes.pop(name)
        process.send_signal(signal.SIGKILL)
        await process.wait()

    async def terminate(self, name: str, timeout: float = 30.0) -> int:
        """SIGTERM, and the exit code once it has drained."""
        process = self.processes.pop(name)
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            process.kill()
            code = await process.wait()
        self.exit_codes.append((name, code))
        return code

    async def execute(self, sql: str) -> None:
        conn = await asyncpg.connect(self.database_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def drained(self, *also: str, deadline_s: float = 120.0) -> None:
        """Nothing left in flight (tests/support/drain.py); `also`: more queues to wait on."""
        await drain(self.servers.rabbitmqctl, self.database_url, [*work_queues(self.topology), *also],
                    deadline_s=deadline_s, what=f"the fault stack {self.prefix}", amqp_url=self.amqp_url)

    async def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2) as client:
            for name in self.services:
                while True:
                    try:
                        if (await client.get(self.url(name, "/readyz"))).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{name} not ready after {timeout}s; see {self.logs}")
                    await asyncio.sleep(0.1)
