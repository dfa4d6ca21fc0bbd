"""The four services as real processes, on their own topology prefix and database, reached
through fault proxies, so a fault can kill, stop, or cut any part of the system."""
from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

from shared.messaging.topology import Topology
from tests.support import leftovers
from tests.support.drain import drain, work_queues
from tests.support.infra import Servers, create_database, delete_topology, drop_database
from tests.support.proxy import FaultProxy

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("intake", "status", "license_issuer", "order_id")
PORT_VARIABLES = {
    "intake": "INTAKE_PORT",
    "status": "STATUS_PORT",
    "license_issuer": "LICENSE_ISSUER_PORT",
    "order_id": "ORDER_ID_PORT",
}
RETRY_DELAYS = "0.5,1,2,4,8"  # short retries: a fault run is minutes, not hours


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ProcessStack:
    servers: Servers
    logs: Path
    sabotage: str | None = None  # a breakage of tests/faults/sabotage.py, for the checker's own test
    database_url: str = ""
    prefix: str = field(default_factory=lambda: leftovers.new_prefix("faults"))
    ports: dict[str, int] = field(default_factory=lambda: {name: _free_port() for name in SERVICES})
    processes: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)
    exit_codes: list[tuple[str, int]] = field(default_factory=list)

    @property
    def amqp_url(self) -> str:
        return self.servers.amqp_url

    @property
    def admin_url(self) -> str:
        return self.servers.admin_url

    async def __aenter__(self) -> ProcessStack:
        self.database_url = await create_database(self.admin_url)
        leftovers.hold(self.prefix, self._remove)
        amqp, pg = self._split(self.amqp_url), self._split(self.database_url)
        self.broker_proxy = FaultProxy(*amqp)
        self.database_proxy = FaultProxy(*pg)
        await self.broker_proxy.start()
        await self.database_proxy.start()
        self.logs.mkdir(parents=True, exist_ok=True)
        for name in SERVICES:
            await self.start(name)
        await self.wait_ready()
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            for name in list(self.processes):
                await self.terminate(name)
            await self.broker_proxy.close()
            await self.database_proxy.close()
        finally:
            await self._remove()
            leftovers.release(self.prefix)

    async def _remove(self) -> None:
        """Its exchanges, queues (the checker's event log among them) and database."""
        for name in list(self.processes):  # a service still up would declare them again
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.processes.pop(name).pid, signal.SIGKILL)
        await delete_topology(self.amqp_url, self.topology, also=[f"{self.prefix}faults.event-log"])
        await drop_database(self.admin_url, self.database_url)

    @staticmethod
    def _split(url: str) -> tuple[str, int]:
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        return parts.hostname or "127.0.0.1", parts.port or (5672 if parts.scheme.startswith("amqp") else 5432)

    @property
    def topology(self) -> Topology:
        return Topology(self.prefix, tuple(float(d) for d in RETRY_DELAYS.split(",")))

    def url(self, name: str, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}{path}"

    def environment(self, name: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            AMQP_URL=self.broker_proxy.url_for(self.amqp_url),
            DATABASE_URL=self.database_proxy.url_for(self.database_url),
            ARCSERVE_TOPOLOGY_PREFIX=self.prefix,
            ARCSERVE_RETRY_DELAYS_S=RETRY_DELAYS,
            ARCSERVE_HOST="127.0.0.1",
            ARCSERVE_DRAIN_TIMEOUT_S="10",
            LOG_LEVEL="WARNING",
        )
        env[PORT_VARIABLES[name]] = str(self.ports[name])
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
                    deadline_s=deadline_s, what=f"the fault stack {self.prefix}")

    async def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2) as client:
            for name in SERVICES:
                while True:
                    try:
                        if (await client.get(self.url(name, "/readyz"))).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{name} not ready after {timeout}s; see {self.logs}")
                    await asyncio.sleep(0.1)
