"""The answers of the HTTP API (docs/architecture.md, "Public contract"), as models: they document each route in
the OpenAPI documents, and the tests check real answers against them (extra fields refused),
so the documents stay true to the API. The services build their answers as plain JSON
(services/status/views.py); nothing is filtered through these models at run time."""
from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.vocabulary import Kind, LicenseType, Usage

Status = Literal["preparing", "active", "cancelled"]
ApplicationStatus = Literal["received", "processing", "completed", "rejected"]


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FieldProblem(_Answer):
    field: str
    problem: str


class ErrorBody(_Answer):
    """Every error: a stable code, a message for people, and each bad field on a 422."""

    code: str = Field(examples=["invalid_application"])
    message: str
    errors: list[FieldProblem] | None = None


class Received(_Answer):
    """202: the application is taken (its `Location` is where to follow it)."""

    application_id: UUID
    status: Literal["received"]


class ReasonView(_Answer):
    code: str
    message: str


class SubmitterView(_Answer):
    kind: Literal["api_key", "publisher"]
    id: str


class ApplicationView(_Answer):
    application_id: UUID
    kind: Kind
    kind_label: str
    contract_id: UUID | None
    status: ApplicationStatus
    status_label: str
    reason: ReasonView | None
    submitted_at: datetime
    expected_completion_at: datetime | None
    overdue: bool = Field(description="still processing past its expected completion (R12)")
    completed_at: datetime | None
    submitted_by: SubmitterView | None


class ProductView(_Answer):
    code: str
    name: str
    version: str


class SupportDeskView(_Answer):
    name: str
    phone: str
    url: str
    hours: str


class ContactView(_Answer):
    email: str
    company_name: str


class OrderIdView(_Answer):
    value: str
    status: Literal["active", "cancelled"]


class Action(_Answer):  # R3, R6, R7, R10
    """Whether the rules allow it now, and why not."""

    allowed: bool
    reason: ReasonView | None


class Actions(_Answer):
    addition: Action
    vm_count_increase: Action
    contact_change: Action
    cancellation: Action


class _ContractBase(_Answer):
    contract_id: UUID
    status: Status
    status_label: str
    product: ProductView
    support_desk: SupportDeskView | None
    contact: ContactView
    arcserve_order_id: OrderIdView | None
    created_at: datetime
    updated_at: datetime | None
    actions: Actions


class LicenseCount(_Answer):
    usage: Usage
    usage_label: str
    license_type: LicenseType
    license_type_label: str
    active: int
    preparing: int
    cancelled: int


class ContractSummary(_ContractBase):
    """A row of the main menu, whole."""

    license_types: list[LicenseCount]
    application_ids: list[UUID]
    applications_total: int
    applied_at: datetime
    cancelled_at: datetime | None
    charge_start_at: datetime | None
    charge_end_at: datetime | None


class LicenseView(_Answer):
    license_id: UUID
    license_key: str | None = Field(description="Shown once the key is live; only to its tenant.")
    usage: Usage
    usage_label: str
    license_type: LicenseType
    license_type_label: str
    vm_count: int | None
    billable: bool
    status: Status
    status_label: str
    charge_start_at: datetime | None
    charge_end_at: datetime | None
    parent_license_id: UUID | None
    vm_count_increase: Action


class ContractDetail(_ContractBase):  # R11
    """The detail view: the contract, its keys and order ID, its newest applications."""

    licenses: list[LicenseView]
    applications: list[ApplicationView] = Field(description="The newest applications, oldest first.")
    applications_total: int


class ContractPage(_Answer):
    items: list[ContractSummary]
    next_cursor: str | None


class ApplicationPage(_Answer):
    items: list[ApplicationView]
    next_cursor: str | None
