"""The status service's subscriptions and message handlers: the gate that decides
submissions (R1–R10, R12), and the join of issuance results (R1, R5, R7, R9). Each handler
maps its message onto the service layer (services/status/service.py) with a Postgres
repository on the unit of work's transaction, and publishes what happened."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from services.status import service
from services.status.domain import commands as domain
from services.status.domain.calendar import BusinessCalendar
from services.status.domain.model import (
    Application,
    ApplicationAccepted,
    ApplicationCompleted,
    ApplicationRejected,
    DomainEvent,
)
from services.status.messages import command_of, to_message
from services.status.repository import PostgresRepository
from services.status.submitters import Submitters
from shared import metrics
from shared.contracts import applications as wire
from shared.contracts import events, routing
from shared.contracts.catalogue import InvalidData
from shared.contracts.envelope import PoisonMessage, RetryLater
from shared.messaging.subscriber import Subscriber
from shared.messaging.unit_of_work import ConsumeContext
from shared.observability import logs
from shared.sealing import Keyring, KeyringError
from shared.tenancy import Role

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Deps:
    calendar: BusinessCalendar
    keyring: Keyring  # license keys arrive sealed and stay so; it checks they open


Context = ConsumeContext[Deps]

# Everything published to `arcserve.applications` reaches the gate: a submission under a
# routing key that is no kind is dead-lettered (unknown_type), never silently unroutable.
SUBMISSIONS: Subscriber[Deps] = Subscriber("arcserve.status.submissions", takes_all_of=(routing.APPLICATIONS_EXCHANGE,),
                                           filters=(Submitters(),))
RESULTS: Subscriber[Deps] = Subscriber("arcserve.status.results")


def _publish(ctx: Context, happened: list[DomainEvent]) -> None:
    for event in happened:
        message, subject = to_message(event)
        ctx.publish(message, subject=subject)
        if isinstance(event, ApplicationCompleted) and event.application.completed_at is not None:
            _completed(ctx, event.application)


def _completed(ctx: Context, app: Application) -> None:
    seconds = (app.completed_at - app.submitted_at).total_seconds() if app.completed_at else 0.0

    def record() -> None:
        log.info("application %s completed: %s in %.3fs", app.application_id, app.kind.value, seconds,
                 extra={"application_id": str(app.application_id), "kind": app.kind.value})
        metrics.COMPLETION_SECONDS.labels(app.kind.value).observe(seconds)

    ctx.after_commit(record)


async def _decide(ctx: Context, submission: service.Submission) -> None:
    repo = PostgresRepository(ctx.conn, ctx.now)
    try:
        happened = await service.decide(submission, repo, ctx.deps.calendar, ctx.now)
    except service.UnknownTenant as exc:
        raise PoisonMessage(f"unknown_tenant: {str(exc)!r}") from None
    _publish(ctx, happened)
    for event in happened:
        if isinstance(event, ApplicationAccepted | ApplicationRejected) \
                and event.application.application_id == submission.application_id:
            _decided(ctx, event)


def _decided(ctx: Context, event: ApplicationAccepted | ApplicationRejected) -> None:
    """One log line per decision, with its reason, and its count: once it is committed (a
    transaction that loses a race is run again)."""
    app = event.application
    outcome = "accepted" if isinstance(event, ApplicationAccepted) else "rejected"
    logs.bind(application_id=str(app.application_id), contract_id=str(app.contract_id) if app.contract_id else None)
    reason = {"code": str(app.reason.code), "message": app.reason.message} if app.reason else None

    def record() -> None:
        log.info("application %s %s: %s%s", app.application_id, outcome, app.kind.value,
                 f" ({reason['code']}: {reason['message']})" if reason else "",
                 extra={"decision": outcome, "kind": app.kind.value, "reason": reason})
        metrics.DECISIONS.labels(app.kind.value, outcome).inc()

    ctx.after_commit(record)


async def reject_invalid(invalid: InvalidData, ctx: Context) -> None:
    """R4 for direct publishers: a submission that fails its schema is rejected (and then
    dead-lettered by the consumer), under the application id it names if it names one."""
    data = ctx.event.data if isinstance(ctx.event.data, dict) else {}
    application_id = _uuid(data.get("application_id")) or uuid5(NAMESPACE_URL, f"urn:cloudevent:{ctx.event.id}")
    await _decide(ctx, service.Submission(
        application_id=application_id,
        tenant_id=ctx.event.tenantid or "",
        kind=domain.Kind(invalid.entry.routing_key),  # a submission's routing key is its kind
        command=None,
        claimed_at=ctx.event.time,
        contract_id=_uuid(data.get("contract_id")),
        problem="; ".join(f"{e['field']}: {e['problem']}" for e in invalid.errors),
        publisher=ctx.publisher or "",
        role=ctx.fact(Role),  # as the submissions filter found it (services/status/submitters.py)
        api_key_id=_api_key_id(ctx),
    ))


@SUBMISSIONS.handler(*wire.SUBMISSIONS.values(), on_invalid=reject_invalid)
async def decide(submission: wire.Submission, ctx: Context) -> None:
    await _decide(ctx, service.Submission(
        application_id=submission.application_id,
        tenant_id=ctx.event.tenantid or "",
        kind=domain.Kind(submission.kind),
        command=command_of(submission),
        claimed_at=ctx.event.time,
        publisher=ctx.publisher or "",
        role=ctx.fact(Role),  # as the submissions filter found it (services/status/submitters.py)
        api_key_id=_api_key_id(ctx),
    ))


async def _join(ctx: Context, result: domain.Result) -> None:
    try:
        happened = await service.apply(result, ctx.event.tenantid or "", PostgresRepository(ctx.conn, ctx.now), ctx.now)
    except service.TooEarly as exc:  # a result that overtook the acceptance it follows
        raise RetryLater(f"unknown_contract: {exc}") from None
    _publish(ctx, happened)


@RESULTS.handler(events.LicenseKeys)
async def license_keys(message: events.LicenseKeys, ctx: Context) -> None:
    """The keys of `license.issued`, sealed, by their private route; kept sealed."""
    for key in message.keys:
        try:
            ctx.deps.keyring.open(key.sealed_key, context=str(key.license_id))
        except KeyringError as exc:
            raise PoisonMessage(f"invalid_data: the key of license {key.license_id}: {exc}") from None
    await _join(ctx, domain.KeysIssued(message.contract_id, tuple((k.license_id, k.sealed_key) for k in message.keys)))


@RESULTS.handler(events.LicenseRevoked)
async def license_revoked(message: events.LicenseRevoked, ctx: Context) -> None:
    await _join(ctx, domain.KeysRevoked(message.contract_id, tuple(lic.license_id for lic in message.licenses)))


@RESULTS.handler(events.OrderIdIssued)
async def order_id_issued(message: events.OrderIdIssued, ctx: Context) -> None:
    await _join(ctx, domain.OrderIdIssued(message.contract_id, message.arcserve_order_id))


@RESULTS.handler(events.LicenseRefused)
async def license_refused(message: events.LicenseRefused, ctx: Context) -> None:
    await _join(ctx, domain.Refused(message.contract_id, message.application_id, message.reason))


@RESULTS.handler(events.OrderIdCancelled)
async def order_id_cancelled(message: events.OrderIdCancelled, ctx: Context) -> None:
    await _join(ctx, domain.OrderIdCancelled(message.contract_id))


def _api_key_id(ctx: Context) -> str | None:
    """The CloudEvents extension `apikeyid` intake sets (the service layer trusts it from intake only)."""
    value = getattr(ctx.event, "apikeyid", None)
    return value if isinstance(value, str) and value and len(value) <= 64 else None


def _uuid(raw: Any) -> UUID | None:
    try:
        return UUID(str(raw)) if raw is not None else None
    except ValueError:
        return None
