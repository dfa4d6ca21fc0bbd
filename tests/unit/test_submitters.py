"""Who may submit for which tenant: the status service's filter on its submissions queue
(services/status/submitters.py), with the tenancy lookup in memory.
tests/integration/test_direct_publishers.py proves it on the real broker and database."""
from __future__ import annotations

from typing import Any, cast

import pytest

from services.status.submitters import Submitters
from shared.contracts.envelope import PoisonMessage, new_event
from shared.db.pool import Connection, Queryable
from shared.messaging.delivery import Delivery
from shared.messaging.testing import NoDatabase
from shared.tenancy import Role

ALLOWED = {("arcserve-intake", "acme"): Role.EDGE, ("arcserve-intake", "globex"): Role.EDGE,
           ("billing-system", "acme"): Role.PUBLISHER}


async def trust(_db: Queryable, broker_user: str, tenant_id: str) -> Role | None:
    return ALLOWED.get((broker_user, tenant_id))


def delivery(publisher: str | None, tenant: str) -> Delivery[Any]:
    event = new_event(type="arcserve.application.new", source="/test", data={}, tenant_id=tenant, id="m-1")
    judged: Delivery[Any] = Delivery(event, publisher, None)
    judged.within(cast(Connection, NoDatabase()))  # the trust lookup here is in memory
    return judged


@pytest.mark.parametrize("publisher, tenant, role", [
    ("arcserve-intake", "acme", Role.EDGE), ("billing-system", "acme", Role.PUBLISHER),
])
async def test_an_allowed_publisher_passes_with_its_role_and_a_key_of_the_tenant(publisher, tenant, role):
    submitted = delivery(publisher, tenant)

    await Submitters(trust)(submitted)

    assert submitted.fact(Role) is role
    assert submitted.key == f"{tenant}/m-1"  # one tenant's message ids never suppress another's


@pytest.mark.parametrize("publisher, tenant", [
    ("billing-system", "globex"),  # allowed for acme only
    ("stranger", "acme"),
    (None, "acme"),  # no user_id: nobody's
])
async def test_a_publisher_not_allowed_for_the_tenant_is_refused(publisher, tenant):
    with pytest.raises(PoisonMessage) as refused:
        await Submitters(trust)(delivery(publisher, tenant))

    assert refused.value.reason == (f"unauthorized_publisher: {publisher or 'a message without user_id'} "
                                    f"may not act for tenant {tenant!r}")
