"""The status service's repository on Postgres, where its few round trips must not cost
correctness: two units of work at once on one application or one contract, each on a
connection of its own, the second one's statements waiting on the first one's lock. On a
database of their own, with no service running: what they decide is never completed, and
would hold up the shared stack's drain."""
from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from datetime import datetime, timedelta
from typing import Any, TypeVar

import asyncpg
import pytest

from services.status import service
from services.status.domain.calendar import JST, BusinessCalendar
from services.status.domain.commands import Contact, KeysIssued, Kind, LicenseLine, LicenseType, OpenContract, Usage
from services.status.domain.model import ApplicationAccepted, ApplicationRejected, ContractStatus
from services.status.repository import PostgresRepository
from shared.tenancy import Role
from tests.support.stack import Stack, Tenant

T = TypeVar("T")
NOW = datetime(2026, 6, 1, 10, 0, tzinfo=JST)
CALENDAR = BusinessCalendar()


@pytest.fixture
async def database(new_stack: Any) -> Stack:
    """A deployment's database and topology, its services not started."""
    made: Stack = await new_stack()
    return made


@pytest.fixture
async def tenant(database: Stack) -> Tenant:
    return await database.tenant()


@pytest.fixture
async def two(database: Stack) -> AsyncIterator[tuple[asyncpg.Connection[Any], asyncpg.Connection[Any]]]:
    """Two connections of the database, as two units of work would hold them."""
    a, b = [await asyncpg.connect(database.settings.database_url) for _ in range(2)]
    yield a, b
    await a.close()
    await b.close()


@pytest.fixture
async def watcher(database: Stack) -> AsyncIterator[asyncpg.Connection[Any]]:
    """A connection outside both, never in a transaction: Postgres shows a transaction the
    activity of the others as it was at its first look."""
    conn = await asyncpg.connect(database.settings.database_url)
    yield conn
    await conn.close()


async def waiting_on_a_lock(watcher: asyncpg.Connection[Any], second: asyncpg.Connection[Any],
                            step: Awaitable[T]) -> asyncio.Task[T]:
    """Start `step` on `second` and return once Postgres shows it waiting for a lock (polled
    with a deadline)."""
    task = asyncio.ensure_future(step)
    pid, deadline = second.get_server_pid(), time.monotonic() + 10
    while not await watcher.fetchval(
        "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", pid
    ):
        assert not task.done(), f"it did not wait: {task.result()!r}"
        assert time.monotonic() < deadline, "the second unit of work never waited for the first's lock"
        await asyncio.sleep(0.01)
    return task


def rejected(tenant: Tenant, application_id: uuid.UUID) -> service.Submission:
    return service.Submission(application_id, tenant.name, Kind.NEW, None, NOW, Role.EDGE, problem="body: invalid")


async def test_one_application_id_decided_by_two_units_of_work_at_once_is_decided_once(
        tenant: Tenant, two: tuple[asyncpg.Connection[Any], asyncpg.Connection[Any]], watcher: asyncpg.Connection[Any],
) -> None:
    a, b = two
    application_id = uuid.uuid4()
    tx = a.transaction()
    await tx.start()
    [decision] = await service.decide(rejected(tenant, application_id), PostgresRepository(a, NOW), CALENDAR, NOW)
    assert isinstance(decision, ApplicationRejected)
    async with b.transaction():
        second = await waiting_on_a_lock(
            watcher, b, service.decide(rejected(tenant, application_id), PostgresRepository(b, NOW), CALENDAR, NOW))
        await tx.commit()  # the first one's decision is in, its lock let go
        assert await second == []  # the second found it made, and made none
    assert await a.fetchval("SELECT count(*) FROM status.applications WHERE tenant_id = $1 AND application_id = $2",
                            tenant.name, application_id) == 1


async def test_a_contract_locked_by_another_unit_of_work_is_read_as_it_committed(
        tenant: Tenant, two: tuple[asyncpg.Connection[Any], asyncpg.Connection[Any]], watcher: asyncpg.Connection[Any],
) -> None:
    a, b = two
    opened = service.Submission(uuid.uuid4(), tenant.name, Kind.NEW, OpenContract(
        "arcserve-udp-10", Contact("ops@example.co.jp", "Acme K.K."),
        (LicenseLine(Usage.VIRTUAL_SERVER, LicenseType.PER_SERVER, 2),)), NOW, Role.EDGE)
    async with a.transaction():
        [accepted] = await service.decide(opened, PostgresRepository(a, NOW), CALENDAR, NOW)
    assert isinstance(accepted, ApplicationAccepted) and accepted.application.contract_id is not None
    contract_id, license_ids = accepted.application.contract_id, accepted.application.license_ids
    later = NOW + timedelta(minutes=1)

    tx = a.transaction()
    await tx.start()
    keys = tuple((license_id, f"sealed-{n}") for n, license_id in enumerate(license_ids))
    await service.apply(KeysIssued(contract_id, keys), tenant.name, PostgresRepository(a, later), later)
    async with b.transaction():
        read = await waiting_on_a_lock(watcher, b, PostgresRepository(b, later).get(contract_id, tenant.name))
        await tx.commit()
        contract = await read
    assert contract is not None
    # The keys the first one stored, and its application still open (the order ID is not in).
    assert [lic.license_key for lic in contract.licenses.values()] == ["sealed-0", "sealed-1"]
    assert [app.application_id for app in contract.applications.values()] == [opened.application_id]
    assert contract.status is ContractStatus.PREPARING
