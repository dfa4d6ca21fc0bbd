"""License issuer: keys for accepted new applications, additions and VM-count increases
(R1, R5, R7); revocation for accepted cancellations (R8).

The issuance backend is called the way every worker calls it (shared/messaging/subscriber.py):
outside any transaction, in the handler's `outside` step, then recorded idempotently in the
unit of work. A key already stored for a license wins over one the backend handed out
again, so a redelivery or a second message about the same acceptance re-announces the
stored keys and never new ones."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from uuid import UUID

from shared.contracts import events
from shared.contracts.applications import Kind
from shared.issuance import IssuanceBackend
from shared.messaging.subscriber import Subscriber
from shared.messaging.unit_of_work import ConsumeContext, OutsideContext
from shared.sealing import Keyring

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class Deps:
    backend: IssuanceBackend
    keyring: Keyring  # keys are sealed at rest and on their way to the status service


QUEUE: Subscriber[Deps] = Subscriber("arcserve.license-issuer")
ISSUES = (events.NewAccepted, events.AdditionAccepted, events.VmCountIncreaseAccepted)


async def obtain_keys(accepted: events.ApplicationAccepted, ctx: OutsideContext[Deps]) -> dict[UUID, str]:
    if not accepted.licenses:
        return {}
    return await ctx.deps.backend.issue_license_keys(
        accepted.application_id, [lic.license_id for lic in accepted.licenses], new=accepted.kind is Kind.NEW
    )


@QUEUE.handler(*ISSUES, outside=obtain_keys)
async def issue(accepted: events.ApplicationAccepted, ctx: ConsumeContext[Deps]) -> None:
    keys: dict[UUID, str] = ctx.obtained
    if not keys:
        return
    keyring = ctx.deps.keyring
    await ctx.conn.executemany(
        """INSERT INTO license_issuer.keys (license_id, contract_id, application_id, sealed_key, issued_at)
           VALUES ($1, $2, $3, $4, $5) ON CONFLICT (license_id) DO NOTHING""",
        [(i, accepted.contract_id, accepted.application_id, keyring.seal(key, context=str(i)), ctx.now)
         for i, key in keys.items()],
    )
    stored = dict(await ctx.conn.fetch(
        "SELECT license_id, sealed_key FROM license_issuer.keys WHERE license_id = ANY($1::uuid[])", list(keys)
    ))
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


async def revoke_at_vendor(accepted: events.CancellationAccepted, ctx: OutsideContext[Deps]) -> None:
    """Revocation is immediate at the vendor (R8); revoking a key twice is harmless there."""
    rows = await ctx.pool.fetch(
        "SELECT license_id, sealed_key FROM license_issuer.keys WHERE license_id = ANY($1::uuid[]) AND revoked_at IS NULL",
        [lic.license_id for lic in accepted.licenses],
    )
    keys = [ctx.deps.keyring.open(r["sealed_key"], context=str(r["license_id"])) for r in rows]
    await ctx.deps.backend.revoke_license_keys(accepted.application_id, keys)


@QUEUE.handler(events.CancellationAccepted, outside=revoke_at_vendor)
async def revoke(accepted: events.CancellationAccepted, ctx: ConsumeContext[Deps]) -> None:
    await ctx.conn.execute(
        "UPDATE license_issuer.keys SET revoked_at = $2 WHERE license_id = ANY($1::uuid[]) AND revoked_at IS NULL",
        [lic.license_id for lic in accepted.licenses],
        ctx.now,
    )
    ctx.publish(events.LicenseRevoked(
        application_id=accepted.application_id,
        contract_id=accepted.contract_id,
        licenses=[lic.model_copy(update={"status": "cancelled"}) for lic in accepted.licenses],
    ))
    ctx.after_commit(lambda: log.info("revoked %d license keys", len(accepted.licenses)))
