"""Tasks past their due time (R12's expected completion; docs/operations.md, "Fulfilment"):
an open task that passes its due time is logged once, as it does, by a job of the service
(shared/due.py) that marks it so; the open and overdue tasks, by kind and by where their
result is to come from, are gauges read when metrics are scraped."""
from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from shared import metrics
from shared.config import FulfilmentSource
from shared.db.pool import Connection, Queryable
from shared.due import Due, Pass, about

log = logging.getLogger(__name__)
BATCH = 100


class Work(Protocol):
    """A unit of work of the service's own (shared/runtime.py's Transaction)."""

    conn: Connection

    def after_commit(self, effect: Callable[[], None]) -> None: ...


class Overdue:
    def __init__(self, source: FulfilmentSource):
        self.source = source  # where results come from for a task the simulator does not answer
        self.job: Due[Work] = Due("the overdue watch", self._pass, poll_s=60.0)
        self._seen: set[tuple[str, str]] = set()  # gauge labels set before: set to 0 when none is left

    async def _pass(self, work: Work, now: datetime) -> Pass:
        conn = work.conn
        rows = await conn.fetch(
            """UPDATE license_issuer.requests SET overdue_at = $1
               WHERE (tenant_id, application_id) IN (
                   SELECT tenant_id, application_id FROM license_issuer.requests
                   WHERE fulfilled_at IS NULL AND refused_at IS NULL AND overdue_at IS NULL AND due_at < $1
                   ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED)
               RETURNING tenant_id, application_id, contract_id, kind, due_at, traceparent,
                         simulate_at IS NOT NULL AS simulated""",
            now, BATCH,
        )
        for row in rows:  # once committed: a pass run again after a lost race logs nothing twice
            work.after_commit(functools.partial(self._logged, dict(row)))
        full = len(rows) == BATCH
        next_due: datetime | None = None if full else await conn.fetchval(
            """SELECT min(due_at) FROM license_issuer.requests
               WHERE fulfilled_at IS NULL AND refused_at IS NULL AND overdue_at IS NULL""")
        return Pass(len(rows), next_due, full)

    def _logged(self, r: dict[str, Any]) -> None:
        with about(r["traceparent"], tenant_id=r["tenant_id"], contract_id=str(r["contract_id"]),
                   application_id=str(r["application_id"])):
            log.warning("fulfilment task overdue: %s due %s, still open (%s)", r["kind"], r["due_at"].isoformat(),
                        "simulator" if r["simulated"] else self.source)

    async def read(self, db: Queryable) -> None:
        """The gauges, at scrape time."""
        rows = await db.fetch(
            """SELECT kind, simulate_at IS NOT NULL AS simulated, count(*) AS open,
                      count(*) FILTER (WHERE due_at < now()) AS overdue
               FROM license_issuer.requests WHERE fulfilled_at IS NULL AND refused_at IS NULL
               GROUP BY 1, 2""")
        now: dict[tuple[str, str], tuple[int, int]] = {}
        for row in rows:
            labels: tuple[str, str] = (row["kind"], "simulator" if row["simulated"] else self.source)
            opened, overdue = now.get(labels, (0, 0))
            now[labels] = (opened + row["open"], overdue + row["overdue"])
        for labels in self._seen | set(now):
            opened, overdue = now.get(labels, (0, 0))
            metrics.FULFILMENT_OPEN.labels(*labels).set(opened)
            metrics.FULFILMENT_OVERDUE.labels(*labels).set(overdue)
        self._seen |= set(now)

