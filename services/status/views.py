"""What the read API shows (docs/architecture.md, "Public contract"), rendered from the domain: the application view,
the contract summary of the main menu, and the detail view (R11). English values carry their
Japanese labels beside them (shared/contracts/labels.py)."""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from services.status.domain.commands import Kind
from services.status.domain.model import Application, Contract, License, ReasonCode, Rejected
from services.status.queries import Summary
from services.status.service import Detail
from shared.catalog import products
from shared.contracts import labels
from shared.sealing import Keyring, KeyringError

log = logging.getLogger(__name__)
# What a client may offer on an existing contract; `new` is the tenant's, not a contract's.
CONTRACT_ACTIONS = (Kind.ADDITION, Kind.VM_COUNT_INCREASE, Kind.CONTACT_CHANGE, Kind.CANCELLATION)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _reason(refused: Rejected | None) -> dict[str, str] | None:
    return {"code": refused.code.value, "message": refused.message} if refused else None


def application_view(app: Application, now: datetime) -> dict[str, Any]:
    """`overdue`: still processing past its expected completion (R12), as the tenant is told."""
    expected = app.expected_completion_at
    return {
        "application_id": str(app.application_id),
        "kind": app.kind.value,
        "kind_label": labels.KIND[app.kind],
        "contract_id": str(app.contract_id) if app.contract_id else None,
        "status": app.status.value,
        "status_label": labels.APPLICATION_STATUS[app.status.value],
        "reason": {"code": app.reason.code.value, "message": app.reason.message} if app.reason else None,
        "submitted_at": _iso(app.submitted_at),
        "expected_completion_at": _iso(app.expected_completion_at),
        "overdue": app.is_open and expected is not None and now > expected,
        "completed_at": _iso(app.completed_at),
        "submitted_by": {"kind": app.submitted_by.kind, "id": app.submitted_by.id} if app.submitted_by else None,
    }


def _product_view(code: str) -> dict[str, str]:
    p = products().get(code)
    if p is None:  # withdrawn from the catalog since: the contract still shows
        return {"code": code, "name": code, "version": ""}
    return {"code": p.code, "name": p.name, "version": p.version}


NO_KEY_TAKES_VMS = Rejected(ReasonCode.NOT_DEDICATED_HYPERVISOR,
                            "no key of the contract is an active hypervisor license of type dedicated_hypervisor")


def _actions(contract: Contract, takes_vms: bool) -> dict[str, Any]:
    """What the rules allow on the contract now (R3, R6, R10; R7: a key that takes more VMs is
    there), and why not; the gate still decides each application. Which key may take VMs
    (R7) is on each key of the detail view."""
    def refusal(kind: Kind) -> Rejected | None:
        refused = contract.refusal(kind)
        if refused is None and kind is Kind.VM_COUNT_INCREASE and not takes_vms:
            return NO_KEY_TAKES_VMS
        return refused

    return {
        kind.value: {"allowed": (refused := refusal(kind)) is None, "reason": _reason(refused)}
        for kind in CONTRACT_ACTIONS
    }


def _contract_base(contract: Contract, takes_vms: bool) -> dict[str, Any]:
    order = contract.order_id
    product = products().get(contract.product_code)
    return {
        "contract_id": str(contract.contract_id),
        "status": contract.status.value,
        "status_label": labels.CONTRACT_STATUS[contract.status.value],
        "product": _product_view(contract.product_code),
        "support_desk": product.support_desk.model_dump() if product else None,
        "contact": {"email": contract.contact.email, "company_name": contract.contact.company_name},
        "arcserve_order_id": {"value": order.value, "status": order.status.value} if order else None,
        "created_at": _iso(contract.created_at),
        "updated_at": _iso(contract.updated_at),
        "actions": _actions(contract, takes_vms),
    }


def contract_summary(summary: Summary) -> dict[str, Any]:
    """A row of the main menu, whole: no second call per row."""
    view = _contract_base(summary.contract, summary.takes_vms)
    view.update(
        license_types=[
            {
                "usage": count.usage.value, "usage_label": labels.USAGE[count.usage],
                "license_type": count.license_type.value, "license_type_label": labels.LICENSE_TYPE[count.license_type],
                "active": count.active, "preparing": count.preparing, "cancelled": count.cancelled,
            }
            for count in summary.license_types
        ],
        application_ids=[str(a) for a in summary.application_ids],
        applications_total=summary.applications_total,
        applied_at=_iso(summary.contract.created_at),
        cancelled_at=_iso(summary.cancelled_at),
        charge_start_at=_iso(summary.charge_start_at),
        charge_end_at=_iso(summary.charge_end_at),
    )
    return view


def _key(lic: License, keyring: Keyring) -> str | None:
    """A key is shown once it is live (R1: both key and order ID are there), and only here:
    it is held sealed."""
    if lic.license_key is None or lic.status.value == "preparing":
        return None
    try:
        return keyring.open(lic.license_key, context=str(lic.license_id))
    except KeyringError as exc:  # a key sealed with a key no longer in the keyring
        log.error("license %s: its key cannot be shown: %s", lic.license_id, exc)
        return None


def license_view(lic: License, keyring: Keyring) -> dict[str, Any]:
    return {
        "license_id": str(lic.license_id),
        "license_key": _key(lic, keyring),
        "usage": lic.usage.value,
        "usage_label": labels.USAGE[lic.usage],
        "license_type": lic.license_type.value,
        "license_type_label": labels.LICENSE_TYPE[lic.license_type],
        "vm_count": lic.vm_count,
        "billable": lic.billable,
        "status": lic.status.value,
        "status_label": labels.LICENSE_STATUS[lic.status.value],
        "charge_start_at": _iso(lic.charge_start_at),
        "charge_end_at": _iso(lic.charge_end_at),
        "parent_license_id": str(lic.parent_license_id) if lic.parent_license_id else None,
        "vm_count_increase": {  # R7
            "allowed": (refused := lic.vm_count_increase_refusal()) is None, "reason": _reason(refused),
        },
    }


def contract_detail(detail: Detail, keyring: Keyring, now: datetime) -> dict[str, Any]:
    """R11: product and version, support desk, order ID and its status, every key with its
    status and charge start and end, and the application history (the newest applications,
    oldest first, with how many there are in all)."""
    contract = detail.contract
    view = _contract_base(contract, any(lic.vm_count_increase_refusal() is None for lic in contract.licenses.values()))
    view["licenses"] = [license_view(lic, keyring) for lic in detail.contract.licenses.values()]
    view["applications"] = [application_view(app, now) for app in detail.history]
    view["applications_total"] = detail.applications_total
    return view
