"""The local three-node RabbitMQ cluster of the broker node loss fault
(scripts/rabbitmq-cluster.sh), as the fault suite drives it: made fresh for a run, removed
after it, and asked which node leads which queue."""
from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import subprocess
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.infra import Servers

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "rabbitmq-cluster.sh"
NODES = ("rc1", "rc2", "rc3")


def _script(*args: str, timeout: float = 180) -> str:
    done = subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    if done.returncode:
        raise RuntimeError(f"rabbitmq-cluster.sh {' '.join(args)} failed: {done.stdout}{done.stderr}")
    return done.stdout.strip()


@dataclass(frozen=True)
class Cluster:
    urls: str  # every node's AMQP URL, comma-separated, as a service's setting lists them
    management_urls: tuple[str, ...]

    async def start(self, *nodes: str) -> None:
        await asyncio.to_thread(_script, "start", *nodes)

    async def kill(self, node: str) -> None:
        await asyncio.to_thread(_script, "kill", node)

    def servers(self, database: Servers) -> Servers:
        """The cluster as the fault stack's broker, beside the usual database."""
        return Servers(self.urls, database.admin_url, _rabbitmqctl, self.management_urls[0])

    async def queues(self, prefix: str) -> list[dict[str, Any]]:
        """The quorum queues named `prefix…`, with their leader and members, from the first
        node whose management API answers."""
        def fetch() -> list[dict[str, Any]]:
            failure: Exception | None = None
            for url in self.management_urls:
                request = urllib.request.Request(f"{url}/api/queues?columns=name,type,leader,members", headers={
                    "Authorization": "Basic " + base64.b64encode(b"guest:guest").decode()})
                try:
                    with urllib.request.urlopen(request, timeout=10) as response:
                        found = json.loads(response.read())
                except OSError as exc:
                    failure = exc
                    continue
                return [q for q in found if q["name"].startswith(prefix) and q.get("type") == "quorum"]
            raise RuntimeError(f"no node's management API answers: {failure}")

        return await asyncio.to_thread(fetch)


def _rabbitmqctl(args: list[str]) -> tuple[int, str]:
    """rabbitmqctl on the first node that answers (one may be down mid-fault)."""
    done = None
    for node in NODES:
        done = subprocess.run([str(SCRIPT), "ctl", node, *args], capture_output=True, text=True, timeout=60, cwd=ROOT)
        if done.returncode == 0:
            return 0, done.stdout
    assert done is not None
    return done.returncode, done.stderr


@contextlib.asynccontextmanager
async def local_cluster() -> AsyncIterator[Cluster]:
    """A fresh cluster (whatever an earlier run left is removed first), removed at the end."""
    await asyncio.to_thread(_script, "remove")
    try:
        await asyncio.to_thread(_script, "start")
        management = await asyncio.to_thread(_script, "management")
        base = int(management.rsplit(":", 1)[1])
        yield Cluster(await asyncio.to_thread(_script, "urls"),
                      tuple(f"http://127.0.0.1:{base + n}" for n in range(len(NODES))))
    finally:
        await asyncio.to_thread(_script, "remove")
