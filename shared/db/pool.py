"""The asyncpg pool, and which database errors are worth a retry."""
from __future__ import annotations

import asyncio
import logging
from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from shared.backoff import Backoff

# A connection of its own or one lent by a pool: both take the same queries.
Connection: TypeAlias = "asyncpg.Connection[Any] | PoolConnectionProxy[Any]"
# Where a single query may run: a connection, or the pool (which lends one for it).
Queryable: TypeAlias = "asyncpg.Connection[Any] | PoolConnectionProxy[Any] | asyncpg.Pool[Any]"

log = logging.getLogger(__name__)


def is_outage(exc: BaseException) -> bool:
    """The database (or the network to it) is down or restarting: wait for it, however long;
    counting it against the message would dead-letter everything during an outage."""
    return isinstance(
        exc,
        (
            OSError,
            asyncio.TimeoutError,
            asyncpg.PostgresConnectionError,
            asyncpg.InterfaceError,  # includes "connection was closed in the middle of operation"
            asyncpg.CannotConnectNowError,
            asyncpg.TooManyConnectionsError,
            asyncpg.AdminShutdownError,
            # A backend killed while its connection sat idle in the pool: asyncpg reads the
            # server's FATAL before the socket's end, and the next borrower meets a protocol
            # stuck mid-error ("cannot switch to state …") before anything is sent; the pool
            # replaces the connection once the end is read, so running again succeeds.
            asyncpg.InternalClientError,
        ),
    )


def is_conflict(exc: BaseException) -> bool:
    """A lost race between transactions: running again sees the winner's rows."""
    return isinstance(
        exc,
        (asyncpg.SerializationError, asyncpg.DeadlockDetectedError, asyncpg.UniqueViolationError),
    )


def is_transient(exc: BaseException) -> bool:
    return is_outage(exc) or is_conflict(exc)


async def _keep_session(_conn: asyncpg.Connection[Any]) -> None:
    """What a pooled connection needs between two borrowers: nothing. asyncpg's default reset
    (advisory locks, cursors, LISTEN, settings) is a round trip at every release, the most
    frequent statement of all; the services change none of that session state on a pooled
    connection (their locks are transaction-scoped, their listeners on connections of their
    own), and an open transaction is still rolled back before the connection is lent again."""


async def create_pool(url: str, size: int, stopping: asyncio.Event | None = None) -> asyncpg.Pool:
    """Create the pool, waiting with backoff while the database does not answer."""
    backoff = Backoff()
    while True:
        try:
            return await asyncpg.create_pool(url, min_size=1, max_size=size, command_timeout=30, reset=_keep_session)
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            if stopping is not None and stopping.is_set() or isinstance(exc, asyncpg.InvalidCatalogNameError):
                raise
            delay = backoff.next()
            log.warning("database not reachable (%s); retrying in %.1fs", exc, delay)
            await asyncio.sleep(delay)
