"""Who may submit for which tenant (docs/architecture.md, "Security"): the filter the status
service installs on its submissions queue (shared/messaging/delivery.py).

Submissions come from other systems, each allowed for some tenants (intake, the edge, for
all of them), so:
- a publisher not allowed for the submission's tenant decides nothing: its message is
  dead-lettered `unauthorized_publisher`, judged in its unit of work before the inbox claim, nothing written;
- the inbox tells duplicates apart by tenant and message id, so one tenant's ids never
  suppress another's;
- the handler learns the role the publisher acts in (`ctx.fact(Role)`): R12 trusts the
  submission time only from the edge.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from shared import tenancy
from shared.contracts.envelope import PoisonMessage
from shared.db.pool import Queryable
from shared.messaging.delivery import Delivery
from shared.tenancy import Role

Trust = Callable[[Queryable, str, str], Awaitable[Role | None]]  # (database, broker user, tenant) -> role


@dataclass(frozen=True)
class Submitters:
    trust: Trust = tenancy.trust

    async def __call__(self, delivery: Delivery[Any]) -> None:
        tenant = delivery.event.tenantid or ""
        delivery.key = f"{tenant}/{delivery.event.id}"
        role = await self.trust(delivery.db, delivery.publisher, tenant) if delivery.publisher else None
        if role is None:
            raise PoisonMessage(f"unauthorized_publisher: {delivery.publisher or 'a message without user_id'} "
                                f"may not act for tenant {tenant!r}")
        delivery.attach(role)
