"""The status service's message handlers: the gate that decides submissions (R1–R10,
R12), and the join of issuance results (R1, R5, R7, R9). Each runs in one transaction
with the contract row locked; the events it causes go to the outbox in that transaction.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import asyncpg

from services.status.messages import to_outgoing
from services.status.repository import ContractRepository
from shared import metrics
from shared.contracts import routing
from shared.contracts.applications import (
    InvalidApplication,
    Kind,
    NewApplication,
    parse_application,
)
from shared.contracts.envelope import CloudEvent, PoisonMessage, RetryLater
from shared.contracts.events import LicenseEvent, OrderIdEvent, parse_data
from shared.contracts.reasons import ReasonCode
from shared.domain.calendar import BusinessCalendar
from shared.domain.model import (
    Application,
    ApplicationRejected,
    Contract,
    DomainEvent,
    Rejected,
    expected_completion,
    reject,
)
from shared.messaging import inbox
from shared.messaging.outbox import enqueue
from shared.messaging.topology import Topology
from shared.runtime import Service

SUBMISSIONS = "status.submissions"
RESULTS = "status.results"
PUBLISHER = "status"


@dataclass(frozen=True)
class Context:
    service: Service
    calendar: BusinessCalendar

    @property
    def pool(self) -> asyncpg.Pool:
        return self.service.pool

    @property
    def topology(self) -> Topology:
        return self.service.topology


def _now() -> datetime:
    return datetime.now(UTC)


# ---- submissions -------------------------------------------------------------------------


def _submission_kind(event: CloudEvent) -> Kind:
    name = event.type.removeprefix(routing.SUBMISSION_TYPE_PREFIX)
    if name == event.type or name not in Kind.__members__.values():
        raise PoisonMessage(f"unknown_type: {event.type!r} is not a submission type")
    return Kind(name)


async def _known_tenant(conn: asyncpg.Connection, tenant_id: str | None) -> str:
    if tenant_id is None:
        raise PoisonMessage("missing_tenant: the CloudEvents extension `tenantid` is required")
    if not await conn.fetchval("SELECT true FROM tenancy.tenants WHERE tenant_id = $1", tenant_id):
        raise PoisonMessage(f"unknown_tenant: {tenant_id!r}")
    return tenant_id


@dataclass(frozen=True)
class _Submission:
    """What a submission message says, read before any I/O; `problem` is why it cannot be
    decided (R4, for submissions that bypassed intake)."""

    kind: Kind
    application_id: UUID | None
    body: Any
    problem: InvalidApplication | None

    @classmethod
    def read(cls, event: CloudEvent) -> _Submission:
        kind = _submission_kind(event)
        application_id = _uuid_or_none(event.data.get("application_id") if isinstance(event.data, dict) else None)
        body, problem = None, None
        if not isinstance(event.data, dict):
            problem = InvalidApplication([{"field": "data", "problem": "must be a JSON object"}])
        else:
            try:
                body = parse_application({k: v for k, v in event.data.items() if k != "application_id"})
            except InvalidApplication as exc:
                problem = exc
        if body is not None and body.kind != kind:
            body, problem = None, InvalidApplication([{"field": "kind", "problem": f"{body.kind!r} under type {event.type!r}"}])
        if application_id is None and problem is None:
            problem = InvalidApplication([{"field": "application_id", "problem": "a UUID is required"}])
        return cls(kind, application_id, body, problem)

    def application(self, event: CloudEvent, tenant_id: str, calendar: BusinessCalendar) -> Application:
        contract_id = getattr(self.body, "contract_id", None)
        if contract_id is None and isinstance(event.data, dict):
            contract_id = _uuid_or_none(event.data.get("contract_id"))
        submitted_at = event.time or _now()
        return Application(
            # Without an id of the submitter's, a rejection names one derived from the message.
            application_id=self.application_id or uuid5(NAMESPACE_URL, f"urn:cloudevent:{event.id}"),
            tenant_id=tenant_id,
            kind=self.kind,
            contract_id=contract_id,
            body=self.body,
            submitted_at=submitted_at,
            expected_completion_at=expected_completion(self.kind, submitted_at, calendar),  # R12
        )


async def handle_submission(ctx: Context, event: CloudEvent) -> None:
    submission = _Submission.read(event)
    async with ctx.pool.acquire() as conn, conn.transaction():
        tenant_id = await _known_tenant(conn, event.tenantid)
        repo = ContractRepository(conn)
        application = submission.application(event, tenant_id, ctx.calendar)
        # Two messages naming one application id may be in hand at once: one decides, the
        # other waits here and then finds the decision.
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _lock_key(application.application_id))
        if not await _first_time(conn, repo, submission, application, event):
            return
        now = _now()
        if submission.problem is not None:
            rejection = reject(application, Rejected(ReasonCode.INVALID_APPLICATION, str(submission.problem)), now)
            await repo.save_application(application)
            await _emit(conn, ctx, [rejection], None)
        else:
            contract, events = await _decide(repo, application, now)
            if contract is not None:
                await repo.save(contract, now)
            else:
                await repo.save_application(application)
            await _emit(conn, ctx, events, contract)
    metrics.DECISIONS.labels(submission.kind.value, application.status.value).inc()
    if submission.problem is not None:  # recorded and announced; now off to the dead letters
        raise PoisonMessage(f"invalid_application: {submission.problem}")


async def _first_time(
    conn: asyncpg.Connection, repo: ContractRepository, submission: _Submission, application: Application,
    event: CloudEvent,
) -> bool:
    """Claim the message in the inbox; and a resubmitted application id has no second effect."""
    previous = await repo.find_application(application.application_id)
    if not await inbox.claim(conn, SUBMISSIONS, event.id):
        if previous and previous["reason_code"] == ReasonCode.INVALID_APPLICATION:
            # Recorded before, but the move to the dead letters did not happen: do it now.
            raise PoisonMessage(f"invalid_application: {submission.problem}")
        return False
    if previous is None:
        return True
    if previous["tenant_id"] != application.tenant_id:  # never a silent no-op across tenants
        raise PoisonMessage(f"duplicate_application_id: {application.application_id} belongs to another tenant")
    return False


def _lock_key(application_id: UUID) -> int:
    return int.from_bytes(application_id.bytes[:8], "big", signed=True)


async def _decide(
    repo: ContractRepository, application: Application, now: datetime
) -> tuple[Contract | None, list[DomainEvent]]:
    """Run the rules on the locked contract; a rejection leaves the contract unchanged."""
    body = application.body
    if isinstance(body, NewApplication):
        live = await repo.live_for_product(application.tenant_id, body.product)
        try:
            contract = Contract.open(application, live, now)
        except Rejected as error:
            return None, [reject(application, error, now)]
        return contract, contract.events
    assert application.contract_id is not None
    contract = await repo.get(application.contract_id, application.tenant_id)
    if contract is None:
        error = Rejected(ReasonCode.NOT_FOUND, f"contract {application.contract_id} not found")
        return None, [reject(application, error, now)]
    try:
        contract.apply(application, now)
    except Rejected as error:
        rejection: ApplicationRejected = reject(application, error, now)
        contract.applications[application.application_id] = application
        contract.events.append(rejection)
    return contract, contract.events


async def _emit(
    conn: asyncpg.Connection, ctx: Context, events: list[DomainEvent], contract: Contract | None
) -> None:
    await enqueue(conn, PUBLISHER, [to_outgoing(e, contract, ctx.topology) for e in events])


def _uuid_or_none(raw: Any) -> UUID | None:
    try:
        return UUID(str(raw)) if raw is not None else None
    except ValueError:
        return None


# ---- issuance results (the R1 join, in either order) ---------------------------------------


async def _on_contract(ctx: Context, event: CloudEvent, contract_id: UUID, apply: Callable[[Contract, datetime], None]) -> None:
    async with ctx.pool.acquire() as conn, conn.transaction():
        if not await inbox.claim(conn, RESULTS, event.id):
            return
        repo = ContractRepository(conn)
        contract = await repo.get(contract_id, event.tenantid or "")
        if contract is None:  # a result that overtook the acceptance it follows, or a stray one
            raise RetryLater(f"unknown_contract: {contract_id} of tenant {event.tenantid!r}")
        now = _now()
        apply(contract, now)
        await repo.save(contract, now)
        await _emit(conn, ctx, contract.events, contract)


async def handle_license_issued(ctx: Context, event: CloudEvent) -> None:
    data = parse_data(LicenseEvent, event)
    if any(not lic.license_key for lic in data.licenses):
        raise PoisonMessage("invalid_data: license.issued without license_key")

    def apply(contract: Contract, now: datetime) -> None:
        for lic in data.licenses:
            contract.license_issued(lic.license_id, lic.license_key or "", now)

    await _on_contract(ctx, event, data.contract_id, apply)


async def handle_license_revoked(ctx: Context, event: CloudEvent) -> None:
    data = parse_data(LicenseEvent, event)

    def apply(contract: Contract, now: datetime) -> None:
        for lic in data.licenses:
            contract.license_revoked(lic.license_id, now)

    await _on_contract(ctx, event, data.contract_id, apply)


async def handle_order_id_issued(ctx: Context, event: CloudEvent) -> None:
    data = parse_data(OrderIdEvent, event)
    await _on_contract(ctx, event, data.contract_id, lambda c, now: c.order_id_issued(data.arcserve_order_id, now))


async def handle_order_id_cancelled(ctx: Context, event: CloudEvent) -> None:
    data = parse_data(OrderIdEvent, event)
    await _on_contract(ctx, event, data.contract_id, lambda c, now: c.order_id_cancelled(now))


Route = Callable[[Context, CloudEvent], Awaitable[None]]

# The routing tables: CloudEvents type → handler.
SUBMISSION_ROUTES: dict[str, Route] = {routing.submission_type(kind): handle_submission for kind in Kind}
RESULT_ROUTES: dict[str, Route] = {
    routing.event_type(routing.LICENSE_ISSUED): handle_license_issued,
    routing.event_type(routing.LICENSE_REVOKED): handle_license_revoked,
    routing.event_type(routing.ORDER_ID_ISSUED): handle_order_id_issued,
    routing.event_type(routing.ORDER_ID_CANCELLED): handle_order_id_cancelled,
}
