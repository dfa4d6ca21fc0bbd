"""License issuer: keys for accepted new applications, additions and VM-count increases
(R1, R5, R7); revocation for accepted cancellations (R8).

Keys are a fulfilment: asked for here, obtained later (services/license_issuer/fulfilment.py),
the first key stored for a license winning over any other result, so a redelivery or a
second message about the same acceptance never announces new ones. Outside simulator mode
the request is a task announced on `arcserve.fulfilment`, and its result comes back there
(`RESULTS`), from the back-office console or another system allowed for fulfilment
(services/license_issuer/fulfillers.py). Revocation is immediate for the tenant (R8); at
Arcserve it is a request too, kept until confirmed (services/license_issuer/revocations.py)."""
from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from services.license_issuer.fulfillers import Fulfillers
from services.license_issuer.fulfilment import Simulator, announced, settle, task
from services.license_issuer.keys import Keys, PostgresKeys, Request
from services.license_issuer.revocations import PostgresRevocations, Revocation, Revocations, Revoker, confirmed_by
from shared import metrics
from shared.config import FulfilmentSource
from shared.contracts import events, fulfilment
from shared.contracts.applications import Kind
from shared.contracts.envelope import PoisonMessage
from shared.db.pool import Queryable
from shared.messaging.subscriber import Subscriber
from shared.messaging.unit_of_work import ConsumeContext
from shared.observability.tracing import current_traceparent
from shared.sealing import Keyring

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Deps:
    keyring: Keyring  # keys are sealed at rest and on their way to the status service
    simulator: Simulator  # answers requests in simulator mode (services/license_issuer/fulfilment.py)
    source: FulfilmentSource = "simulator"  # where results come from (ARCSERVE_FULFILMENT)
    overdue: Callable[[], None] = lambda: None  # wakes the overdue watch (services/license_issuer/overdue.py)
    keys: Callable[[Queryable], Keys] = PostgresKeys  # its tables, on the unit of work's transaction
    revoker: Revoker = field(default_factory=lambda: Revoker("simulator", retry_s=900.0))  # takes them when due
    revocations: Callable[[Queryable], Revocations] = PostgresRevocations


QUEUE: Subscriber[Deps] = Subscriber("arcserve.license-issuer")
RESULTS: Subscriber[Deps] = Subscriber("arcserve.license-issuer.fulfilment", filters=(Fulfillers(),))
ISSUES = (events.NewAccepted, events.AdditionAccepted, events.VmCountIncreaseAccepted)


@QUEUE.handler(*ISSUES)
async def request(accepted: events.ApplicationAccepted, ctx: ConsumeContext[Deps]) -> None:
    """Ask for the application's keys and be done: the result completes the request later (in
    simulator mode with a delay of 0, at once, in this unit of work). An application asked for
    and answered before is announced again, with its stored keys; one still awaited is asked
    for once."""
    if not accepted.licenses:
        return
    keys = ctx.deps.keys(ctx.conn)
    simulated = ctx.deps.source == "simulator"
    asked = Request(accepted.application_id, accepted.contract_id, ctx.event.tenantid or "", accepted.kind,
                    tuple(accepted.licenses), ctx.now, accepted.expected_completion_at,
                    ctx.deps.simulator.answers_at(accepted.kind, ctx.now) if simulated else None,
                    current_traceparent(), accepted.submitted_at, needs_order_id=accepted.kind is Kind.NEW)
    state = await keys.request(asked)
    if state == "open" and asked.due_at is not None and asked.due_at <= ctx.now:
        ctx.after_commit(ctx.deps.overdue)  # due already (the service was away): said at once, not at the next look
    if state == "fulfilled":
        for message in announced(asked, await keys.stored([lic.license_id for lic in accepted.licenses])):
            ctx.publish(message)
    elif state == "open" and simulated and ctx.deps.simulator.due_at_once(asked, ctx.now):
        for message in await ctx.deps.simulator.answer(keys, ctx.deps.keyring, asked, ctx.now, ctx.after_commit):
            ctx.publish(message)
    elif state == "open" and simulated:
        ctx.after_commit(ctx.deps.simulator.wake)
    elif state == "open":
        ctx.publish(task(asked))


@RESULTS.handler(fulfilment.FulfilmentFulfilled, fulfilment.FulfilmentRejected)
async def result(result: fulfilment.FulfilmentFulfilled | fulfilment.FulfilmentRejected,
                 ctx: ConsumeContext[Deps]) -> None:
    """A task's result from the back office or another allowed system: the first one closes
    it; one for a task that is closed, or that was never asked for, changes nothing."""
    keys = ctx.deps.keys(ctx.conn)
    found = await keys.task(ctx.event.tenantid or "", result.application_id)
    if found is None:
        raise PoisonMessage(f"unknown_task: no fulfilment task for application {result.application_id}")
    request, state = found
    if state != "open":
        ctx.after_commit(lambda: log.warning("a result for a task already %s: nothing changed", state))
        return
    for message in await settle(keys, ctx.deps.keyring, request, result, ctx.now):
        ctx.publish(message)
    outcome = "refused" if isinstance(result, fulfilment.FulfilmentRejected) else "fulfilled"
    source, publisher = ctx.deps.source, ctx.publisher or ""
    ctx.after_commit(lambda: _settled(source, publisher, outcome, len(request.licenses)))


def _settled(source: str, publisher: str, outcome: str, licenses: int) -> None:
    metrics.FULFILMENTS.labels("license-issuer", source).inc()
    log.info("fulfilment task %s by %s (%d license keys)", outcome, publisher, licenses)


@QUEUE.handler(events.CancellationAccepted)
async def revoke(accepted: events.CancellationAccepted, ctx: ConsumeContext[Deps]) -> None:
    """Cancelled for the tenant at once (R8): the keys marked revoked and announced so. What
    Arcserve is to do, revoke the keys it issued and cancel the order ID when the contract
    ends (R9), is a request kept until confirmed (services/license_issuer/revocations.py)."""
    keys = ctx.deps.keys(ctx.conn)
    license_ids = [lic.license_id for lic in accepted.licenses]
    issued = await keys.unrevoked(license_ids)
    await keys.revoke(license_ids, ctx.now)
    ctx.publish(events.LicenseRevoked(
        application_id=accepted.application_id,
        contract_id=accepted.contract_id,
        licenses=[lic.model_copy(update={"status": "cancelled"}) for lic in accepted.licenses],
    ))
    order_id = accepted.arcserve_order_id if accepted.cancels_contract else None
    if issued or order_id:
        await ctx.deps.revocations(ctx.conn).record(Revocation(
            accepted.application_id, accepted.contract_id, ctx.event.tenantid or "",
            tuple(lic for lic in license_ids if lic in issued), order_id, ctx.now,
            ctx.deps.revoker.first_due(ctx.now), traceparent=current_traceparent()))
        ctx.after_commit(ctx.deps.revoker.wake)
    ctx.after_commit(lambda: log.info("revoked %d license keys", len(accepted.licenses)))


@RESULTS.handler(fulfilment.RevocationConfirmed)
async def revocation_confirmed(confirmed: fulfilment.RevocationConfirmed, ctx: ConsumeContext[Deps]) -> None:
    """Arcserve revoked what a cancellation named: the request is done; a second confirmation
    changes nothing, and one for a request never made is dead-lettered."""
    done = await ctx.deps.revocations(ctx.conn).confirm(ctx.event.tenantid or "", confirmed.application_id, ctx.now)
    if done is None:
        raise PoisonMessage(f"unknown_task: no revocation for application {confirmed.application_id}")
    if done == "confirmed before":
        ctx.after_commit(lambda: log.warning("a revocation confirmed before was confirmed again: nothing changed"))
        return
    ctx.after_commit(functools.partial(confirmed_by, ctx.deps.source, ctx.publisher or ""))
