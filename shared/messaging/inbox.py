"""The inbox: which messages a consumer has already handled (key: message id, consumer),
in `<schema>.inbox` of the consumer's service.

Claimed in the same transaction as the handler's effect (shared/messaging/unit_of_work.py),
so a redelivered or duplicated message finds its id taken and has no second effect
(docs/architecture.md, "Reliability").
"""
from __future__ import annotations

from dataclasses import dataclass

from shared.db.pool import Connection, Queryable


@dataclass(frozen=True)
class Inbox:
    schema: str

    @property
    def table(self) -> str:
        return f"{self.schema}.inbox"

    async def claim_all(self, conn: Connection, consumer: str, message_ids: list[str]) -> set[str]:
        """Claim `message_ids` for `consumer`, in one statement: the ids claimed now (an id
        this consumer handled before is not among them)."""
        if not message_ids:
            return set()
        rows = await conn.fetch(
            f"""INSERT INTO {self.table} (message_id, consumer) SELECT DISTINCT unnest($1::text[]), $2
                ON CONFLICT DO NOTHING RETURNING message_id""",
            message_ids,
            consumer,
        )
        return {row["message_id"] for row in rows}

    async def seen(self, conn: Queryable, consumer: str, message_id: str) -> bool:
        return bool(await conn.fetchval(
            f"SELECT true FROM {self.table} WHERE message_id = $1 AND consumer = $2", message_id, consumer
        ))

    async def prune(self, conn: Connection, older_than_days: float) -> int:
        deleted = await conn.execute(
            f"DELETE FROM {self.table} WHERE processed_at < now() - make_interval(secs => $1)",
            older_than_days * 86400,
        )
        return int(deleted.split()[-1])
