"""The console's subscription: every fulfilment task and every revocation at Arcserve the
license issuer announces (`fulfilment.requested`, `fulfilment.revocation_requested`), kept
for the operators (services/backoffice/tasks.py, services/backoffice/revocations.py); one
announced twice is kept once."""
from __future__ import annotations

from dataclasses import dataclass

from services.backoffice.revocations import PostgresRevocations, revocation_of
from services.backoffice.tasks import PostgresTasks, task_of
from shared.contracts import fulfilment
from shared.messaging.subscriber import Subscriber
from shared.messaging.unit_of_work import ConsumeContext


@dataclass(frozen=True)
class Deps:
    pass


TASKS: Subscriber[Deps] = Subscriber("arcserve.backoffice")


@TASKS.handler(fulfilment.FulfilmentRequested)
async def requested(task: fulfilment.FulfilmentRequested, ctx: ConsumeContext[Deps]) -> None:
    await PostgresTasks(ctx.conn).record(task_of(task), ctx.now)


@TASKS.handler(fulfilment.RevocationRequested)
async def revocation_requested(revocation: fulfilment.RevocationRequested, ctx: ConsumeContext[Deps]) -> None:
    await PostgresRevocations(ctx.conn).record(revocation_of(revocation), ctx.now)
