"""Revocation at Arcserve (docs/architecture.md, "Fulfilment"). A cancellation is immediate
for the tenant (R8, R9): its keys are marked revoked and announced so in the transaction that
takes it (services/license_issuer/handlers.py). What Arcserve is to do about it, revoke those
keys and, when the whole contract ends, cancel its order ID, is a request recorded in that
same transaction, `license_issuer.revocations`, kept until it is confirmed.

A job of the service (shared/due.py) takes each request when it is due:
- `simulator`: Arcserve, simulated, confirms it (`ARCSERVE_SIM_CHANGE_DELAY_S` after it was
  made);
- `back-office` and `external`: it is announced on `arcserve.fulfilment`
  (`fulfilment.revocation_requested`), and announced again, `revocation_retry_s` later, then
  twice as long each time up to a day, until a system allowed for fulfilment (the console is
  one) answers `fulfilment.revocation_confirmed`. Announcing again is how a request that
  another system dropped is not lost; taking it twice is harmless at Arcserve, and a second
  confirmation changes nothing.
"""
from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol
from uuid import UUID

from services.license_issuer.fulfilment import Work
from services.license_issuer.keys import Keys, PostgresKeys
from shared import metrics
from shared.config import FulfilmentSource
from shared.contracts import fulfilment
from shared.db.pool import Queryable
from shared.due import Due, Pass, about
from shared.sealing import Keyring

log = logging.getLogger(__name__)
BATCH = 100  # requests taken per transaction
LONGEST_WAIT = timedelta(days=1)  # between two announcements of one request


@dataclass(frozen=True)
class Revocation:
    application_id: UUID  # the cancellation's
    contract_id: UUID
    tenant_id: str
    license_ids: tuple[UUID, ...]  # whose keys Arcserve is to revoke
    arcserve_order_id: str | None  # to cancel too (R9)
    requested_at: datetime
    next_at: datetime  # when it is next due
    announced: int = 0
    traceparent: str | None = None


Confirmation = Literal["confirmed", "confirmed before"]


class Revocations(Protocol):
    async def record(self, revocation: Revocation) -> None:
        """Keep the request unless the cancellation has one."""

    async def due(self, now: datetime, limit: int) -> list[Revocation]:
        """Unconfirmed requests due by `now`, oldest first, locked until the unit of work ends
        (another replica skips them)."""

    async def announced_again(self, revocation: Revocation, next_at: datetime) -> None:
        """Count one more announcement, and when it is due next."""

    async def confirm(self, tenant_id: str, application_id: UUID, at: datetime) -> Confirmation | None:
        """Mark the request confirmed (one confirmed before keeps its time); None if there is none."""

    async def next_due(self) -> datetime | None:
        """When the next unconfirmed request is due."""


_COLUMNS = "application_id, contract_id, tenant_id, license_ids, arcserve_order_id, requested_at, next_at, announced, traceparent"


class PostgresRevocations:
    def __init__(self, db: Queryable):
        self.db = db

    async def record(self, revocation: Revocation) -> None:
        r = revocation
        await self.db.execute(
            f"""INSERT INTO license_issuer.revocations ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                ON CONFLICT (tenant_id, application_id) DO NOTHING""",
            r.application_id, r.contract_id, r.tenant_id, list(r.license_ids), r.arcserve_order_id, r.requested_at,
            r.next_at, r.announced, r.traceparent,
        )

    async def due(self, now: datetime, limit: int) -> list[Revocation]:
        rows = await self.db.fetch(
            f"""SELECT {_COLUMNS} FROM license_issuer.revocations
                WHERE confirmed_at IS NULL AND next_at <= $1 ORDER BY next_at LIMIT $2 FOR UPDATE SKIP LOCKED""",
            now, limit,
        )
        return [Revocation(row["application_id"], row["contract_id"], row["tenant_id"], tuple(row["license_ids"]),
                           row["arcserve_order_id"], row["requested_at"], row["next_at"], row["announced"],
                           row["traceparent"]) for row in rows]

    async def announced_again(self, revocation: Revocation, next_at: datetime) -> None:
        await self.db.execute(
            """UPDATE license_issuer.revocations SET announced = announced + 1, next_at = $3
               WHERE tenant_id = $1 AND application_id = $2""",
            revocation.tenant_id, revocation.application_id, next_at,
        )

    async def confirm(self, tenant_id: str, application_id: UUID, at: datetime) -> Confirmation | None:
        first: bool | None = await self.db.fetchval(
            """WITH before AS (SELECT confirmed_at FROM license_issuer.revocations
                               WHERE tenant_id = $1 AND application_id = $2 FOR UPDATE)
               UPDATE license_issuer.revocations r SET confirmed_at = coalesce(r.confirmed_at, $3) FROM before
               WHERE r.tenant_id = $1 AND r.application_id = $2
               RETURNING before.confirmed_at IS NULL""",
            tenant_id, application_id, at,
        )
        return None if first is None else "confirmed" if first else "confirmed before"

    async def next_due(self) -> datetime | None:
        at: datetime | None = await self.db.fetchval(
            "SELECT min(next_at) FROM license_issuer.revocations WHERE confirmed_at IS NULL")
        return at


def requested(revocation: Revocation, attempt: int, keys: Mapping[UUID, str]) -> fulfilment.RevocationRequested:
    """The request as other systems see it (`fulfilment.revocation_requested`): each license
    with the last group of its key (`keys`, in clear, by license), never the whole key."""
    return fulfilment.RevocationRequested(
        application_id=revocation.application_id, tenant=revocation.tenant_id, contract_id=revocation.contract_id,
        requested_at=revocation.requested_at, arcserve_order_id=revocation.arcserve_order_id, attempt=attempt,
        licenses=[fulfilment.RevokedLicense(license_id=i, key_ends_with=keys[i].rsplit("-", 1)[-1])
                  for i in revocation.license_ids])


class Revoker:
    """The job that takes revocations when they are due, for the deployment's source."""

    def __init__(self, source: FulfilmentSource, retry_s: float, simulated_s: float = 0.0, *,
                 keyring: Keyring | None = None, keys: Callable[[Queryable], Keys] = PostgresKeys,
                 revocations: Callable[[Queryable], Revocations] = PostgresRevocations):
        self.source = source
        self.keyring = keyring  # opens the keys whose last group an announcement names
        self.keys = keys
        self.retry = timedelta(seconds=retry_s)
        self.simulated = timedelta(seconds=simulated_s)  # the simulator's delay
        self.revocations = revocations
        self.job: Due[Work] = Due("revocations at Arcserve", self.take_due)

    def wake(self) -> None:
        self.job.wake()

    def first_due(self, requested_at: datetime) -> datetime:
        """When a request made at `requested_at` is first due: announced at once, or answered
        after the simulator's delay."""
        return requested_at + self.simulated if self.source == "simulator" else requested_at

    def wait_after(self, attempt: int) -> timedelta:
        """How long the `attempt`-th announcement waits for its confirmation."""
        return min(self.retry * 2 ** min(attempt - 1, 20), LONGEST_WAIT)

    async def take_due(self, work: Work, now: datetime) -> Pass:
        """Confirm (simulator) or announce the requests due by `now` (one batch)."""
        store = self.revocations(work.conn)
        due = await store.due(now, BATCH)
        for revocation in due:
            if self.source == "simulator":  # Arcserve, simulated, confirms at once
                await store.confirm(revocation.tenant_id, revocation.application_id, now)
                work.after_commit(functools.partial(_confirmed, revocation, "simulator"))
                continue
            assert self.keyring is not None, "announcing a revocation names its keys' last groups"
            attempt = revocation.announced + 1
            sealed = await self.keys(work.conn).stored(revocation.license_ids)
            keys = {i: self.keyring.open(key, context=str(i)) for i, key in sealed.items()}
            with about(revocation.traceparent, **_fields(revocation)):
                work.publish(requested(revocation, attempt, keys), tenant_id=revocation.tenant_id,
                             subject=str(revocation.contract_id))
            await store.announced_again(revocation, now + self.wait_after(attempt))
            if attempt > 1:
                work.after_commit(functools.partial(_unconfirmed, revocation, attempt))
        full = len(due) == BATCH
        return Pass(len(due), None if full else await store.next_due(), full)

    async def read(self, db: Queryable) -> None:
        """The gauge, at scrape time."""
        open_: int = await db.fetchval("SELECT count(*) FROM license_issuer.revocations WHERE confirmed_at IS NULL")
        metrics.REVOCATIONS_OPEN.labels(self.source).set(open_)


def confirmed_by(source: str, publisher: str) -> None:
    """A confirmation from another system was taken (after commit)."""
    metrics.REVOCATIONS.labels(source).inc()
    log.info("revocation at Arcserve confirmed by %s", publisher)


def _confirmed(revocation: Revocation, source: str) -> None:
    metrics.REVOCATIONS.labels(source).inc()
    with about(revocation.traceparent, **_fields(revocation)):
        log.info("revoked %d license keys at Arcserve%s (%s)", len(revocation.license_ids),
                 " and cancelled the order ID" if revocation.arcserve_order_id else "", source)


def _unconfirmed(revocation: Revocation, attempt: int) -> None:
    with about(revocation.traceparent, **_fields(revocation)):
        log.warning("revocation at Arcserve still unconfirmed since %s: announced again (%d times now)",
                    revocation.requested_at.isoformat(), attempt)


def _fields(revocation: Revocation) -> dict[str, Any]:
    return {"tenant_id": revocation.tenant_id, "contract_id": str(revocation.contract_id),
            "application_id": str(revocation.application_id)}
