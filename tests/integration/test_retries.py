"""Out-of-order and late events, and the delayed retries that absorb them (docs/architecture.md, "Reliability"):
a result that overtakes its acceptance is retried until it applies; one that never can is
dead-lettered after the last retry; a late result changes nothing."""
from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from services.status.domain.model import contract_id_for, license_id_for
from services.status.handlers import RESULTS
from shared.contracts import routing
from tests.support.stack import EventTap, Stack, dead_letters, eventually, new_application, submission

FORGED_KEYS = ["AAAAA-BBBBB-CCCCC-DDDDD-00001", "AAAAA-BBBBB-CCCCC-DDDDD-00002"]


def license_keys(stack: Stack, tenant: str, application_id: str, contract_id: str, keys: list[str]) -> dict[str, Any]:
    """The keys of an application's licenses, as the license issuer sends them (sealed)."""
    ids = [str(license_id_for(tenant, uuid.UUID(application_id), n)) for n in range(len(keys))]
    return stack.license_keys(tenant, application_id, contract_id, dict(zip(ids, keys)))


async def test_license_issued_before_the_acceptance_applies_once_it_exists(new_stack: Callable[..., Any]) -> None:
    stack: Stack = await new_stack(retry_delays_s=(0.5, 1, 2, 4, 8))
    await stack.start("intake", "status", "order_id")  # the real issuer comes later
    tenant = await stack.tenant()
    application_id = str(uuid.uuid4())
    contract_id = str(contract_id_for(tenant.name, uuid.UUID(application_id)))

    # The result arrives first: its contract does not exist yet, so it waits in a retry queue.
    await stack.publish_event(stack.keys_exchange, "license.keys",
                              license_keys(stack, tenant.name, application_id, contract_id, FORGED_KEYS))
    await stack.publish_event(stack.topology.applications, "new",
                              submission(tenant.name, new_application(), application_id=application_id))

    application = await stack.wait_application(tenant, application_id)
    assert application["status"] == "completed"
    contract = await stack.contract(tenant, contract_id)
    assert contract["status"] == "active"
    assert [lic["license_key"] for lic in contract["licenses"]] == FORGED_KEYS

    # The issuer's own result, later, is a no-op: no key is issued twice.
    async with EventTap(stack, "license.keys", exchange=routing.LICENSE_KEYS_EXCHANGE) as tap:
        await stack.start("license_issuer")
        real = await tap.wait_for("license.keys", application_id=application_id)
    await eventually(lambda: stack.handled(real["id"], RESULTS.name), "the status service to take the late result")
    assert (await stack.contract(tenant, contract_id))["licenses"] == contract["licenses"]


async def test_a_result_that_can_never_apply_is_dead_lettered_after_the_last_retry(stack: Stack, tenant) -> None:
    application_id = str(uuid.uuid4())
    stray = license_keys(stack, tenant.name, application_id, str(contract_id_for(tenant.name, uuid.UUID(application_id))),
                         FORGED_KEYS[:1])
    await stack.publish_event(stack.keys_exchange, "license.keys", stray)

    [letter] = await dead_letters(stack, "arcserve.status.results", 1)
    assert letter.message_id == stray["id"]
    reason = letter.headers["x-arcserve-reason"]
    assert isinstance(reason, str) and reason.startswith("retries_exhausted: unknown_contract"), reason
    assert letter.headers["x-arcserve-original-routing-key"] == "license.keys"
    assert letter.headers["x-arcserve-original-exchange"] == stack.keys_exchange
    assert letter.headers["x-arcserve-attempt"] == len(stack.settings.retry_delays_s)


async def test_order_id_issued_after_a_full_cancellation_changes_nothing(stack: Stack, tenant) -> None:
    async with EventTap(stack, "order_id.issued") as tap:
        contract = await stack.active_contract(tenant)
        issued = await tap.wait_for("order_id.issued", contract_id=contract["contract_id"])
    cancellation = await stack.apply(tenant, {"kind": "cancellation", "contract_id": contract["contract_id"], "scope": "all"})
    assert cancellation["status"] == "completed"

    late = {**issued, "id": str(uuid.uuid4()), "data": {**issued["data"], "arcserve_order_id": "ARC-20990101-LATE0-LATE0"}}
    async with EventTap(stack) as after:
        await stack.publish_event(stack.topology.events, "order_id.issued", late)
        await eventually(lambda: stack.handled(late["id"], RESULTS.name), "the late event to be handled")
    final = await stack.contract(tenant, contract["contract_id"])
    assert final["status"] == "cancelled"
    assert final["arcserve_order_id"] == {"value": contract["arcserve_order_id"]["value"], "status": "cancelled"}
    assert [key for key, _ in after.events if key != "order_id.issued"] == []  # it caused nothing
