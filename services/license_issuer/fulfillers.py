"""Who may publish fulfilment results (docs/architecture.md, "Fulfilment"): the filter the
license issuer installs on its results queue (shared/messaging/delivery.py).

A result completes a task with keys the tenant will use, or refuses it, so it counts only
from a broker user an operator allowed for fulfilment (`python -m services.tools.publishers
allow-fulfilment`) or the deployment's own back-office console: anything else is
dead-lettered `unauthorized_publisher`, judged in its unit of work before the inbox claim, nothing written. The inbox
tells duplicates apart by tenant and message id, as the gate's does.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from shared import tenancy
from shared.contracts.envelope import PoisonMessage
from shared.db.pool import Queryable
from shared.messaging.delivery import Delivery

MayFulfil = Callable[[Queryable, str], Awaitable[bool]]  # (database, broker user) -> allowed


@dataclass(frozen=True)
class Fulfillers:
    may_fulfil: MayFulfil = tenancy.may_fulfil

    async def __call__(self, delivery: Delivery[Any]) -> None:
        delivery.key = f"{delivery.event.tenantid or ''}/{delivery.event.id}"
        if not (delivery.publisher and await self.may_fulfil(delivery.db, delivery.publisher)):
            raise PoisonMessage(f"unauthorized_publisher: {delivery.publisher or 'a message without user_id'} "
                                "may not publish fulfilment results")
