"""The inbox: which messages a consumer has already handled (key: message id, consumer).

Claimed in the same transaction as the handler's effect, so a redelivered or duplicated
message finds its id taken and has no second effect (DESIGN.md §5).
"""
from __future__ import annotations

import asyncpg


async def claim(conn: asyncpg.Connection, consumer: str, message_id: str) -> bool:
    """True the first time; False if this consumer already handled the message."""
    row = await conn.fetchval(
        """INSERT INTO messaging.inbox (message_id, consumer) VALUES ($1, $2)
           ON CONFLICT DO NOTHING RETURNING true""",
        message_id,
        consumer,
    )
    return bool(row)


async def seen(conn: asyncpg.Connection | asyncpg.Pool, consumer: str, message_id: str) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT true FROM messaging.inbox WHERE message_id = $1 AND consumer = $2", message_id, consumer
        )
    )


async def prune(conn: asyncpg.Connection, older_than_days: float) -> int:
    deleted = await conn.execute(
        "DELETE FROM messaging.inbox WHERE processed_at < now() - make_interval(secs => $1)",
        older_than_days * 86400,
    )
    return int(deleted.split()[-1])
