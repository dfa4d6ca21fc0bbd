"""The console's subscription: every fulfilment task the license issuer announces
(`fulfilment.requested`), kept for the operators (services/backoffice/tasks.py); one
announced twice is kept once."""
from __future__ import annotations

from dataclasses import dataclass

from services.backoffice.tasks import PostgresTasks, task_of
from shared.contracts import fulfilment
from shared.messaging.subscriber import Subscriber
from shared.messaging.unit_of_work import ConsumeContext


@dataclass(frozen=True)
class Deps:
    pass


TASKS: Subscriber[Deps] = Subscriber("arcserve.backoffice")


@TASKS.handler(fulfilment.FulfilmentRequested)
async def requested(task: fulfilment.FulfilmentRequested, ctx: ConsumeContext[Deps, None]) -> None:
    await PostgresTasks(ctx.conn).record(task_of(task), ctx.now)
