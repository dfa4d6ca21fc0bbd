"""No topology or database left behind by the tests and the fault suite.

- Every test, fault or benchmark stack is named `test-<unix time>-<8 hex>.` / `faults-…` /
  `bench-…` (exchanges,
  queues and broker users) and `arcserve_test_<unix time>_<12 hex>` (its database, and
  its roles after it), so its age can be read off its name.
- Stacks register here while they live. They remove their own topology and database when
  they close; on SIGINT/SIGTERM the process unwinds (the handlers turn both into
  KeyboardInterrupt) so that closing still happens, and at exit whatever is still registered
  is removed. An unwinding that hangs (a task that outlives its cancellation while the event
  loop closes) is cut short after UNWIND_GRACE_S: what is still registered is removed from
  another thread and the process exits.
- Their queues' policies go with them: a policy left behind is matched against every queue
  the broker declares from then on.
- What a killed run (SIGKILL, a crash) still leaves is swept at the start of the next run:
  only names of this pattern, only older than any run lasts, and never a stack that still
  has consumers. `make clean-broker` sweeps by hand (`python -m tests.support.leftovers`).
"""
from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import re
import signal
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aio_pika
import asyncpg

log = logging.getLogger(__name__)

UNWIND_GRACE_S = float(os.environ.get("LEFTOVERS_UNWIND_GRACE_S", "30"))
STALE_AFTER_S = 3 * 3600.0  # longer than any run: `make faults` at 500 takes about 15 min
_PREFIX = re.compile(r"^(?:test|faults|bench)-(\d{10})-[0-9a-f]{8}\.")  # exchanges, queues, broker users
_DATABASE = re.compile(r"^arcserve_test_(\d{10})_[0-9a-f]{12}$")
_ROLE = re.compile(r"^(arcserve_test_(\d{10})_[0-9a-f]{12})_\w+$")  # a test database's roles


def new_prefix(kind: str = "test") -> str:
    """A topology prefix of this suite's pattern (`kind`: test, faults or bench)."""
    return f"{kind}-{int(time.time())}-{uuid.uuid4().hex[:8]}."


def new_database_name() -> str:
    return f"arcserve_test_{int(time.time())}_{uuid.uuid4().hex[:12]}"


# ---- what this process holds, removed however it ends ------------------------------------

Closer = Callable[[], Awaitable[None]]
_live: dict[str, Closer] = {}
_closing = threading.Lock()  # the exit hook and the unwinding watchdog, never both at once


def hold(name: str, close: Closer) -> None:
    """`close` removes `name` (a topology prefix or a database); it runs at exit unless
    `release(name)` came first."""
    _live[name] = close


def release(name: str) -> None:
    _live.pop(name, None)


@atexit.register
def _close_what_is_left() -> None:
    async def close_all() -> None:
        for name, close in list(_live.items()):
            try:
                await asyncio.wait_for(close(), timeout=30)
            except Exception as exc:  # the next run's sweep gets it
                print(f"leftovers: could not remove {name}: {exc!r}", file=sys.stderr)
            _live.pop(name, None)

    with _closing:
        if _live:
            asyncio.run(close_all())  # its own event loop, whichever thread calls


def unwind_on_signals() -> None:
    """SIGTERM, like SIGINT, raises KeyboardInterrupt, so `finally` blocks and fixture
    teardowns run, and then the exit hook above; the first signal also starts a watchdog
    that ends an unwinding still going after UNWIND_GRACE_S."""
    signal.signal(signal.SIGTERM, _interrupted)
    signal.signal(signal.SIGINT, _interrupted)


_watchdog: threading.Timer | None = None


def _interrupted(signum: int, frame: object) -> None:
    global _watchdog
    if _watchdog is None:
        _watchdog = threading.Timer(UNWIND_GRACE_S, _cut_short, args=(signum,))
        _watchdog.daemon = True  # a process that unwinds in time exits without waiting for it
        _watchdog.start()
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        raise KeyboardInterrupt from None
    # Inside an event loop, not at whatever bytecode the signal landed on: raised halfway
    # through one of the loop's own callbacks, the interrupt can leave a future that is never
    # resolved, and the unwinding then waits on it for ever (seen in CI). Between callbacks,
    # every task is whole, and cancelling them unwinds each.
    loop.call_soon_threadsafe(_raise_interrupt)


def _raise_interrupt() -> None:
    raise KeyboardInterrupt


def _cut_short(signum: int) -> None:
    print(f"leftovers: still unwinding {UNWIND_GRACE_S:g} s after {signal.Signals(signum).name}; "
          "removing what this run holds and exiting", file=sys.stderr, flush=True)
    _close_what_is_left()
    _kill_children()
    os._exit(128 + signum)


def _kill_children() -> None:
    """SIGKILL to this process's children (the fault suite's services), so that none
    outlives it; Linux's /proc names them."""
    me = str(os.getpid())
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me:  # the parent's pid, after the state
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(stat.parent.name), signal.SIGKILL)


# ---- what earlier runs left ------------------------------------------------------------------

Rabbitmqctl = Callable[..., Awaitable[str]]


@dataclass(frozen=True)
class Swept:
    prefixes: list[str]
    databases: list[str]
    users: list[str]
    roles: list[str]
    policies: list[str]


def _stale(created: str, now: float) -> bool:
    return now - int(created) > STALE_AFTER_S


async def sweep(rabbitmqctl: Rabbitmqctl, amqp_url: str, admin_url: str, now: float | None = None,
                management_url: str = "") -> Swept:
    """Delete this suite's stale exchanges, queues and databases (see the module docstring)."""
    now = time.time() if now is None else now
    queues = (await rabbitmqctl("list_queues", "-q", "--no-table-headers", "name")).split()
    # list_consumers, not list_queues' consumer count, which quorum queues report late.
    consumed = set((await rabbitmqctl("list_consumers", "-q", "--no-table-headers", "queue_name")).split())
    exchanges = (await rabbitmqctl("list_exchanges", "-q", "--no-table-headers", "name")).split()
    by_prefix: dict[str, tuple[list[str], int]] = {}
    for name in queues:
        if (match := _PREFIX.match(name)) and _stale(match.group(1), now):
            names, busy = by_prefix.get(match.group(0), ([], 0))
            by_prefix[match.group(0)] = ([*names, name], busy + (name in consumed))
    for name in exchanges:
        if (match := _PREFIX.match(name)) and _stale(match.group(1), now):
            by_prefix.setdefault(match.group(0), ([], 0))
    swept = []
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        for prefix, (names, consumers) in sorted(by_prefix.items()):
            if consumers:  # something still consumes: a stack that runs, however old
                continue
            for name in names:
                await channel.queue_delete(name)
            for name in exchanges:
                if name.startswith(prefix):
                    await channel.exchange_delete(name)
            swept.append(prefix)
    from services.provisioning.broker import Management

    management = Management.for_amqp_url(amqp_url, management_url)
    users = [
        name for name in management.users()
        if (match := _PREFIX.match(name)) and _stale(match.group(1), now) and by_prefix.get(match.group(0), ([], 0))[1] == 0
    ]
    management.delete_users(users)
    policies = [
        (vhost, name) for vhost, name in management.policies()
        if (match := _PREFIX.match(name)) and _stale(match.group(1), now) and by_prefix.get(match.group(0), ([], 0))[1] == 0
    ]
    for vhost, name in policies:
        management.delete_policy(vhost, name)
    databases, roles = [], []
    conn = await asyncpg.connect(admin_url)
    try:
        rows = await conn.fetch(
            """SELECT d.datname FROM pg_database d
               WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datname = d.datname)"""
        )
        for row in rows:
            if (match := _DATABASE.match(row["datname"])) and _stale(match.group(1), now):
                await conn.execute(f'DROP DATABASE IF EXISTS "{row["datname"]}"')
                databases.append(row["datname"])
        remaining = {r["datname"] for r in await conn.fetch("SELECT datname FROM pg_database")}
        for row in await conn.fetch("SELECT rolname FROM pg_roles"):
            match = _ROLE.match(row["rolname"])
            if match and _stale(match.group(2), now) and match.group(1) not in remaining:
                await conn.execute(f'DROP ROLE IF EXISTS "{row["rolname"]}"')
                roles.append(row["rolname"])
    finally:
        await conn.close()
    if swept or databases or users or roles or policies:
        log.warning("swept what earlier runs left: %d topologies, %d policies, %d broker users, %d databases, %d roles",
                    len(swept), len(policies), len(users), len(databases), len(roles))
    return Swept(swept, databases, users, roles, [name for _, name in policies])


async def _main() -> int:
    from tests.support.infra import servers

    async with servers(sweep_first=False) as infrastructure:
        swept = await sweep(infrastructure.rabbitmqctl, infrastructure.amqp_url, infrastructure.admin_url,
                            management_url=infrastructure.management_url)
    print(f"removed {len(swept.prefixes)} stale topologies, {len(swept.policies)} policies, {len(swept.users)} broker users, "
          f"{len(swept.databases)} databases and {len(swept.roles)} roles (this suite's names, older than "
          f"{STALE_AFTER_S / 3600:g} h, with no consumer or connection)")
    for name in swept.prefixes + swept.policies + swept.users + swept.databases + swept.roles:
        print(f"  {name}")
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "WARNING"))
    sys.exit(asyncio.run(_main()))
