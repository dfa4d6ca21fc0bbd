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
from urllib.parse import urlsplit

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
        """The quorum queues named `prefix…`, with their leader and members."""
        found = await self._api("queues?columns=name,type,leader,members")
        return [q for q in found if q["name"].startswith(prefix) and q.get("type") == "quorum"]

    async def connections(self, prefix: str) -> dict[str, set[str]]:
        """The nodes each broker user named `prefix…` is connected to now, as the cluster lists
        them (the listening port tells the node; the management API's statistics lag seconds)."""
        node_of = {urlsplit(url).port: node for url, node in zip(self.urls.split(","), NODES, strict=True)}
        code, out = await asyncio.to_thread(_rabbitmqctl, ["list_connections", "-q", "--no-table-headers", "user", "port"])
        if code:
            raise RuntimeError(f"rabbitmqctl list_connections failed: {out}")
        nodes: dict[str, set[str]] = {}
        for line in out.splitlines():
            user, _, port = line.partition("\t")
            if user.startswith(prefix) and port.strip().isdigit():
                nodes.setdefault(user, set()).add(node_of.get(int(port), port))
        return nodes

    async def _api(self, path: str) -> Any:
        """A GET of the management API, from the first node whose API answers."""
        def fetch() -> Any:
            failure: Exception | None = None
            for url in self.management_urls:
                request = urllib.request.Request(f"{url}/api/{path}", headers={
                    "Authorization": "Basic " + base64.b64encode(b"guest:guest").decode()})
                try:
                    with urllib.request.urlopen(request, timeout=10) as response:
                        return json.loads(response.read())
                except OSError as exc:
                    failure = exc
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
