"""The asyncpg pool, and which database errors are worth a retry."""
from __future__ import annotations

import asyncio
import logging

import asyncpg

log = logging.getLogger(__name__)


def is_transient(exc: BaseException) -> bool:
    """A fault that goes away by itself: the database restarting, a dropped connection,
    a lost race between transactions. Anything else is a bug or a bad message."""
    return isinstance(
        exc,
        (
            OSError,
            asyncio.TimeoutError,
            asyncpg.PostgresConnectionError,
            asyncpg.InterfaceError,  # includes "connection was closed in the middle of operation"
            asyncpg.CannotConnectNowError,
            asyncpg.TooManyConnectionsError,
            asyncpg.SerializationError,
            asyncpg.DeadlockDetectedError,
            asyncpg.AdminShutdownError,
            asyncpg.UniqueViolationError,  # a concurrent insert won; the retry sees its row
        ),
    )


async def create_pool(url: str, size: int, stopping: asyncio.Event | None = None) -> asyncpg.Pool:
    """Create the pool, waiting with backoff while the database does not answer."""
    delay = 0.2
    while True:
        try:
            return await asyncpg.create_pool(url, min_size=1, max_size=size, command_timeout=30)
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            if stopping is not None and stopping.is_set() or isinstance(exc, asyncpg.InvalidCatalogNameError):
                raise
            log.warning("database not reachable (%s); retrying in %.1fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
