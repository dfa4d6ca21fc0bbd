"""What the read API shows (docs/architecture.md, "Public contract"), rendered from the domain: the application view,
the contract summary of the list, and the detail view (R11)."""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from services.status.domain.model import STATUS_LABELS_JA, Application, Contract, ContractStatus, License
from services.status.service import Detail
from shared.catalog import products
from shared.sealing import Keyring, KeyringError

log = logging.getLogger(__name__)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def application_view(app: Application) -> dict[str, Any]:
    return {
        "application_id": str(app.application_id),
        "kind": app.kind.value,
        "contract_id": str(app.contract_id) if app.contract_id else None,
        "status": app.status.value,
        "reason": {"code": app.reason.code.value, "message": app.reason.message} if app.reason else None,
        "submitted_at": _iso(app.submitted_at),
        "expected_completion_at": _iso(app.expected_completion_at),
        "completed_at": _iso(app.completed_at),
        "submitted_by": {"kind": app.submitted_by.kind, "id": app.submitted_by.id} if app.submitted_by else None,
    }


def _product_view(code: str) -> dict[str, str]:
    p = products().get(code)
    if p is None:  # withdrawn from the catalog since: the contract still shows
        return {"code": code, "name": code, "version": ""}
    return {"code": p.code, "name": p.name, "version": p.version}


def contract_summary(contract: Contract) -> dict[str, Any]:
    order = contract.order_id
    return {
        "contract_id": str(contract.contract_id),
        "status": contract.status.value,
        "status_label": STATUS_LABELS_JA[contract.status],
        "product": _product_view(contract.product_code),
        "contact": {"email": contract.contact.email, "company_name": contract.contact.company_name},
        "arcserve_order_id": {"value": order.value, "status": order.status.value} if order else None,
        "created_at": _iso(contract.created_at),
        "updated_at": _iso(contract.updated_at),
    }


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
        "license_type": lic.license_type.value,
        "vm_count": lic.vm_count,
        "billable": lic.billable,
        "status": lic.status.value,
        "status_label": STATUS_LABELS_JA[ContractStatus(lic.status.value)],
        "charge_start_at": _iso(lic.charge_start_at),
        "charge_end_at": _iso(lic.charge_end_at),
        "parent_license_id": str(lic.parent_license_id) if lic.parent_license_id else None,
    }


def contract_detail(detail: Detail, keyring: Keyring) -> dict[str, Any]:
    """R11: product and version, support desk, order ID and its status, every key with its
    status and charge start and end, and the application history (the newest applications,
    oldest first, with how many there are in all)."""
    contract = detail.contract
    view = contract_summary(contract)
    desk = products().get(contract.product_code)
    view["support_desk"] = desk.support_desk.model_dump() if desk else None
    view["licenses"] = [license_view(lic, keyring) for lic in contract.licenses.values()]
    view["applications"] = [application_view(app) for app in detail.history]
    view["applications_total"] = detail.applications_total
    return view
