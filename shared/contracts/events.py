"""The `data` of every event on `arcserve.events` (docs/architecture.md, "Public contract"), one model each. The
services that publish an event build it from its model, and the services that consume it
read it with the same model (shared/contracts/message.py)."""
from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import Field

from shared.contracts.applications import Kind, LicenseType, Usage
from shared.contracts.message import Message
from shared.contracts.reasons import ReasonCode

LicenseStatus = Literal["preparing", "active", "cancelled"]
ContractStatus = Literal["preparing", "active", "cancelled"]


class LicenseSummary(Message):
    """What any bound system may see of a license: everything but its key (docs/architecture.md, "Public contract":
    ids, usage, type, status; the VM count and whether it is billed, where known)."""

    license_id: UUID
    usage: Usage
    license_type: LicenseType
    status: LicenseStatus
    vm_count: int | None = None
    billable: bool | None = None


class ApplicationAccepted(Message):
    """`application.accepted.<kind>`: the status service took the application; the keys it
    creates or cancels are listed (R1, R5, R7, R8)."""

    application_id: UUID
    contract_id: UUID
    kind: Kind
    product: str  # the contract's product code
    licenses: list[LicenseSummary]
    expected_completion_at: datetime | None = None  # R12
    submitted_at: datetime | None = None  # when the system received it (R12 counts from it)


class NewAccepted(ApplicationAccepted):
    kind: Literal[Kind.NEW] = Kind.NEW


class AdditionAccepted(ApplicationAccepted):
    kind: Literal[Kind.ADDITION] = Kind.ADDITION


class VmCountIncreaseAccepted(ApplicationAccepted):
    kind: Literal[Kind.VM_COUNT_INCREASE] = Kind.VM_COUNT_INCREASE
    license_id: UUID  # the dedicated hypervisor license whose VM count rises (R7)
    additional_vms: int


class CancellationAccepted(ApplicationAccepted):
    kind: Literal[Kind.CANCELLATION] = Kind.CANCELLATION
    scope: Literal["all", "partial"]
    cancels_contract: bool  # no key is left: the order ID goes too (R9)
    arcserve_order_id: str | None = None  # the order ID to cancel, when cancels_contract


class ContactChangeAccepted(ApplicationAccepted):
    kind: Literal[Kind.CONTACT_CHANGE] = Kind.CONTACT_CHANGE


class Reason(Message):
    code: ReasonCode
    message: str


class ApplicationRejected(Message):
    """`application.rejected.<kind>`"""

    application_id: UUID
    contract_id: UUID | None = None
    kind: Kind
    reason: Reason


class ApplicationCompleted(Message):
    """`application.completed.<kind>`"""

    application_id: UUID
    contract_id: UUID | None = None
    kind: Kind


class LicenseIssued(Message):
    """`license.issued`: the license issuer obtained keys for an accepted application. Which
    licenses, never the keys (they travel as `license.keys`)."""

    application_id: UUID | None = None
    contract_id: UUID
    licenses: list[LicenseSummary]


class SealedKey(Message):
    license_id: UUID
    sealed_key: str = Field(min_length=1, max_length=512)  # shared/sealing.py, context: the license id


class LicenseKeys(Message):
    """`license.keys`, on `arcserve.license-keys` (not public): the keys of `license.issued`,
    sealed, for the status service alone."""

    application_id: UUID | None = None
    contract_id: UUID
    keys: list[SealedKey]


class LicenseRevoked(Message):
    """`license.revoked`: keys revoked at the vendor (R8)."""

    application_id: UUID | None = None
    contract_id: UUID
    licenses: list[LicenseSummary]


class LicenseRefused(Message):
    """`license.refused`: Arcserve refused an accepted application's keys (and order ID); the
    status service rejects the application with code `vendor_refused` and `reason`."""

    application_id: UUID
    contract_id: UUID
    kind: Kind
    licenses: list[LicenseSummary]
    reason: str = Field(min_length=1, max_length=500)


class OrderIdObtained(Message):
    """`order_id.obtained`, on `arcserve.fulfilled-order-ids` (not public): the order ID a fulfilment
    task's result brought, from the license issuer (which owns the task) to the order-ID
    service (which owns order IDs and announces `order_id.issued`)."""

    application_id: UUID
    contract_id: UUID
    arcserve_order_id: str = Field(min_length=1, max_length=64)


class OrderIdIssued(Message):
    """`order_id.issued` (R1)"""

    application_id: UUID | None = None
    contract_id: UUID
    arcserve_order_id: str = Field(min_length=1, max_length=64)


class OrderIdCancelled(Message):
    """`order_id.cancelled` (R9)"""

    application_id: UUID | None = None
    contract_id: UUID
    arcserve_order_id: str = Field(min_length=1, max_length=64)


class ContractStatusChanged(Message):
    """`contract.status_changed`"""

    application_id: UUID
    contract_id: UUID
    from_status: ContractStatus = Field(alias="from")
    to_status: ContractStatus = Field(alias="to")


ACCEPTED = (NewAccepted, AdditionAccepted, VmCountIncreaseAccepted, CancellationAccepted, ContactChangeAccepted)
