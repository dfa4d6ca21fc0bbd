"""Domain events of the contract aggregate → CloudEvents for `arcserve.events`
(DESIGN.md §4: routing keys and `data` fields)."""
from __future__ import annotations

from typing import Any

from shared.contracts import routing
from shared.contracts.applications import (
    CancellationApplication,
    VmCountIncreaseApplication,
)
from shared.contracts.envelope import new_event
from shared.domain.model import (
    Application,
    ApplicationAccepted,
    ApplicationCompleted,
    ApplicationRejected,
    Contract,
    ContractStatusChanged,
    DomainEvent,
    License,
)
from shared.messaging.outbox import Outgoing
from shared.messaging.topology import Topology

SOURCE = "urn:arcserve:status"


def license_summary(lic: License) -> dict[str, Any]:
    """What consumers may see of a key: everything but the key itself."""
    return {
        "license_id": str(lic.license_id),
        "usage": lic.usage.value,
        "license_type": lic.license_type.value,
        "vm_count": lic.vm_count,
        "billable": lic.billable,
        "status": lic.status.value,
    }


def _application_data(app: Application) -> dict[str, Any]:
    return {
        "application_id": str(app.application_id),
        "contract_id": str(app.contract_id) if app.contract_id else None,
        "kind": app.kind.value,
    }


def _accepted_data(event: ApplicationAccepted, contract: Contract | None) -> dict[str, Any]:
    app = event.application
    data = _application_data(app)
    data["licenses"] = [license_summary(lic) for lic in event.licenses]
    data["expected_completion_at"] = app.expected_completion_at.isoformat() if app.expected_completion_at else None
    if contract is not None:
        data["product"] = contract.product_code
    body = app.body
    if isinstance(body, VmCountIncreaseApplication):
        data["license_id"] = str(body.license_id)
        data["additional_vms"] = body.additional_vms
    if isinstance(body, CancellationApplication):
        data["scope"] = "all" if body.scope == "all" else "partial"
        data["cancels_contract"] = app.cancels_contract
        if app.cancels_contract and contract is not None and contract.order_id is not None:
            data["arcserve_order_id"] = contract.order_id.value
    return data


def to_outgoing(event: DomainEvent, contract: Contract | None, topology: Topology) -> Outgoing:
    if isinstance(event, ContractStatusChanged):
        key = routing.CONTRACT_STATUS_CHANGED
        tenant, subject = event.tenant_id, str(event.contract_id)
        data: dict[str, Any] = {
            "application_id": str(event.application_id),
            "contract_id": subject,
            "from": event.from_status.value,
            "to": event.to_status.value,
        }
    else:
        app = event.application
        tenant, subject = app.tenant_id, str(app.contract_id) if app.contract_id else None
        if isinstance(event, ApplicationAccepted):
            key, data = routing.accepted(app.kind), _accepted_data(event, contract)
        elif isinstance(event, ApplicationRejected):
            key, data = routing.rejected(app.kind), _application_data(app)
            assert app.reason is not None
            data["reason"] = {"code": app.reason.code.value, "message": app.reason.message}
        elif isinstance(event, ApplicationCompleted):
            key, data = routing.completed(app.kind), _application_data(app)
        else:  # pragma: no cover - the union is closed
            raise TypeError(event)
    cloud_event = new_event(
        type=routing.event_type(key), source=SOURCE, data=data, tenant_id=tenant, subject=subject
    )
    return Outgoing(topology.events, key, cloud_event)
