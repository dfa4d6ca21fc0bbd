"""License issuer: keys for accepted new applications, additions and VM-count increases
(R1, R5, R7); revocation for accepted cancellations (R8). A redelivered message is a no-op
(inbox); the same acceptance in another message re-announces the keys already stored,
never new ones."""
from __future__ import annotations

from datetime import UTC, datetime

from shared.contracts import routing
from shared.contracts.envelope import CloudEvent
from shared.contracts.events import ApplicationAccepted, parse_data
from shared.messaging import inbox
from shared.messaging.outbox import enqueue
from shared.workers import Route, WorkerContext


async def issue(ctx: WorkerContext, event: CloudEvent) -> None:
    accepted = parse_data(ApplicationAccepted, event)
    # A cheap look before calling the vendor; the claim in the transaction is what counts.
    if not accepted.licenses or await inbox.seen(ctx.pool, ctx.consumer, event.id):
        return
    keys = await ctx.backend.issue_license_keys(
        accepted.application_id, [lic.license_id for lic in accepted.licenses], new=accepted.kind == "new"
    )
    now = datetime.now(UTC)
    async with ctx.pool.acquire() as conn, conn.transaction():
        if not await inbox.claim(conn, ctx.consumer, event.id):
            return
        await conn.executemany(
            """INSERT INTO license_issuer.keys (license_id, contract_id, application_id, license_key, issued_at)
               VALUES ($1, $2, $3, $4, $5) ON CONFLICT (license_id) DO NOTHING""",
            [(i, accepted.contract_id, accepted.application_id, key, now) for i, key in keys.items()],
        )
        stored = dict(
            await conn.fetch(
                "SELECT license_id, license_key FROM license_issuer.keys WHERE license_id = ANY($1::uuid[])",
                list(keys),
            )
        )
        licenses = [
            {**lic.model_dump(mode="json", exclude_none=True), "status": "active", "license_key": stored[lic.license_id]}
            for lic in accepted.licenses
        ]
        data = {"application_id": str(accepted.application_id), "contract_id": str(accepted.contract_id), "licenses": licenses}
        await enqueue(conn, ctx.consumer, [ctx.follow_up(routing.LICENSE_ISSUED, event, data)])


async def revoke(ctx: WorkerContext, event: CloudEvent) -> None:
    accepted = parse_data(ApplicationAccepted, event)
    ids = [lic.license_id for lic in accepted.licenses]
    async with ctx.pool.acquire() as conn, conn.transaction():
        if not await inbox.claim(conn, ctx.consumer, event.id):
            return
        revoked = await conn.fetch(
            """UPDATE license_issuer.keys SET revoked_at = now()
               WHERE license_id = ANY($1::uuid[]) AND revoked_at IS NULL RETURNING license_key""",
            ids,
        )
        # Revocation is immediate at the vendor (R8); a failure rolls the claim back and retries.
        await ctx.backend.revoke_license_keys(accepted.application_id, [r["license_key"] for r in revoked])
        licenses = [{**lic.model_dump(mode="json", exclude_none=True), "status": "cancelled"} for lic in accepted.licenses]
        data = {"application_id": str(accepted.application_id), "contract_id": str(accepted.contract_id), "licenses": licenses}
        await enqueue(conn, ctx.consumer, [ctx.follow_up(routing.LICENSE_REVOKED, event, data)])


ROUTES: dict[str, Route] = {
    routing.event_type(routing.accepted("new")): issue,
    routing.event_type(routing.accepted("addition")): issue,
    routing.event_type(routing.accepted("vm_count_increase")): issue,
    routing.event_type(routing.accepted("cancellation")): revoke,
}
