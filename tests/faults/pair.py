"""The local PostgreSQL primary and synchronous standby of the database failover fault
(scripts/postgres-pair.sh), as the fault suite drives it: made fresh for a run, removed after
it."""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.infra import Servers

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "postgres-pair.sh"
NODES = ("pg1", "pg2")


def _script(*args: str, timeout: float = 180) -> str:
    done = subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    if done.returncode:
        raise RuntimeError(f"postgres-pair.sh {' '.join(args)} failed: {done.stdout}{done.stderr}")
    return done.stdout.strip()


async def _timed(*args: str) -> float:
    started = time.monotonic()
    await asyncio.to_thread(_script, *args)
    return time.monotonic() - started


@dataclass(frozen=True)
class Pair:
    admin_url: str  # both hosts, read-write: whichever is the primary

    def servers(self, broker: Servers) -> Servers:
        """The pair as the fault stack's database, beside the broker it runs on."""
        return dataclasses.replace(broker, admin_url=self.admin_url)

    async def primary(self) -> str:
        return await asyncio.to_thread(_script, "primary")

    async def kill(self, node: str) -> float:
        return await _timed("kill", node)

    async def promote(self, node: str) -> float:
        return await _timed("promote", node)

    async def rejoin(self, node: str) -> float:
        return await _timed("rejoin", node)


@contextlib.asynccontextmanager
async def local_pair() -> AsyncIterator[Pair]:
    """A fresh pair (whatever an earlier run left is removed first), removed at the end."""
    await asyncio.to_thread(_script, "remove")
    try:
        await asyncio.to_thread(_script, "start")
        yield Pair(await asyncio.to_thread(_script, "url"))
    finally:
        await asyncio.to_thread(_script, "remove")
