"""License issuer: keys for accepted new applications, additions and VM-count increases
(R1, R5, R7); revocation for accepted cancellations (R8).

The issuance backend is called the way every worker calls it (shared/messaging/subscriber.py):
outside any transaction, in the handler's `outside` step, then recorded idempotently in the
unit of work. A key already stored for a license wins over one the backend handed out
again, so a redelivery or a second message about the same acceptance re-announces the
stored keys and never new ones."""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from services.license_issuer.keys import IssuedKey, Keys, PostgresKeys
from shared.contracts import events
from shared.contracts.applications import Kind
from shared.db.pool import Queryable
from shared.issuance import IssuanceBackend
from shared.messaging.delivery import Delivery
from shared.messaging.subscriber import Subscriber
from shared.messaging.unit_of_work import ConsumeContext
from shared.sealing import Keyring

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Deps:
    backend: IssuanceBackend
    keyring: Keyring  # keys are sealed at rest and on their way to the status service
    keys: Callable[[Queryable], Keys] = PostgresKeys  # its table, on the unit of work's transaction


QUEUE: Subscriber[Deps] = Subscriber("arcserve.license-issuer")
ISSUES = (events.NewAccepted, events.AdditionAccepted, events.VmCountIncreaseAccepted)


async def obtain_keys(accepted: events.ApplicationAccepted, delivery: Delivery[Deps]) -> dict[UUID, str]:
    if not accepted.licenses:
        return {}
    return await delivery.deps.backend.issue_license_keys(
        accepted.application_id, [lic.license_id for lic in accepted.licenses], new=accepted.kind is Kind.NEW
    )


@QUEUE.handler(*ISSUES, outside=obtain_keys)
async def issue(accepted: events.ApplicationAccepted, ctx: ConsumeContext[Deps, dict[UUID, str]]) -> None:
    keys = ctx.obtained
    if not keys:
        return
    keyring = ctx.deps.keyring
    stored = await ctx.deps.keys(ctx.conn).keep([
        IssuedKey(i, accepted.contract_id, accepted.application_id, keyring.seal(key, context=str(i)), ctx.now)
        for i, key in keys.items()
    ])
    # Which licenses, for anyone bound to arcserve.events; their keys, sealed, for the status
    # service alone (docs/architecture.md, "Security").
    ctx.publish(events.LicenseIssued(
        application_id=accepted.application_id,
        contract_id=accepted.contract_id,
        licenses=[lic.model_copy(update={"status": "active"}) for lic in accepted.licenses],
    ))
    ctx.publish(events.LicenseKeys(
        application_id=accepted.application_id,
        contract_id=accepted.contract_id,
        keys=[events.SealedKey(license_id=lic.license_id, sealed_key=stored[lic.license_id])
              for lic in accepted.licenses],
    ))
    ctx.after_commit(lambda: log.info("issued %d license keys (%s)", len(keys), accepted.kind))


async def revoke_at_vendor(accepted: events.CancellationAccepted, delivery: Delivery[Deps]) -> None:
    """Revocation is immediate at the vendor (R8); revoking a key twice is harmless there."""
    sealed = await delivery.deps.keys(delivery.pool).unrevoked([lic.license_id for lic in accepted.licenses])
    keys = [delivery.deps.keyring.open(key, context=str(license_id)) for license_id, key in sealed.items()]
    await delivery.deps.backend.revoke_license_keys(accepted.application_id, keys)


@QUEUE.handler(events.CancellationAccepted, outside=revoke_at_vendor)
async def revoke(accepted: events.CancellationAccepted, ctx: ConsumeContext[Deps, None]) -> None:
    await ctx.deps.keys(ctx.conn).revoke([lic.license_id for lic in accepted.licenses], ctx.now)
    ctx.publish(events.LicenseRevoked(
        application_id=accepted.application_id,
        contract_id=accepted.contract_id,
        licenses=[lic.model_copy(update={"status": "cancelled"}) for lic in accepted.licenses],
    ))
    ctx.after_commit(lambda: log.info("revoked %d license keys", len(accepted.licenses)))
