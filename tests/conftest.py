from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support import leftovers
from tests.support.infra import Servers, servers
from tests.support.stack import Stack, Tenant


def pytest_configure(config: pytest.Config) -> None:
    leftovers.unwind_on_signals()  # SIGTERM too ends with the stacks' clean-up


@pytest.fixture(scope="session")
async def infrastructure() -> AsyncIterator[Servers]:
    """The broker and database of the session (URLs, rabbitmqctl); see tests/support/infra.py."""
    async with servers() as found:
        yield found


@pytest.fixture(scope="session")
async def stack(infrastructure: Servers) -> AsyncIterator[Stack]:
    """The four services and the portal, shared by the tests that do not need a stack of their own; each
    test isolates itself by its own tenants."""
    system = await Stack.create(infrastructure)
    await system.start()
    await system.start_portal()
    yield system
    await system.close()


@pytest.fixture
async def new_stack(infrastructure: Servers) -> AsyncIterator:
    """A factory of private stacks (own prefix and database), closed after the test."""
    made: list[Stack] = []

    async def make(**overrides: Any) -> Stack:  # forwarded to Stack.create as they are
        system = await Stack.create(infrastructure, **overrides)
        made.append(system)
        return system

    yield make
    for system in made:
        await system.close()


@pytest.fixture
async def tenant(stack: Stack) -> Tenant:
    return await stack.tenant()


@pytest.fixture
async def other_tenant(stack: Stack) -> Tenant:
    return await stack.tenant()
