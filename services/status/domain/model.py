"""The contract aggregate and the rules R1–R12 (docs/architecture.md, "Rules"). Pure: no I/O, no clock (the
time comes in as `now`), no wire schema (applications carry domain commands).

Every change fires only from the state it expects, so a duplicate or late event is a
harmless no-op. What happens is recorded as domain events by the aggregate it happens in:
the contract records what happens to it and to the applications it decides, in order
(`Contract.events`); an application decided without a contract to hold it (not found, its
schema broken, R2) records its own rejection (`Application.events`). The service layer
collects them and the status service turns them into outgoing messages in the same
transaction.
"""
from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal
from uuid import UUID

from services.status.domain.calendar import BusinessCalendar
from services.status.domain.commands import (
    KIND_OF,
    AddLicenses,
    CancelLicenses,
    ChangeContact,
    Command,
    Contact,
    IncreaseVmCount,
    Kind,
    LicenseLine,
    LicenseType,
    OpenContract,
    Usage,
)
from shared.contracts.reasons import ReasonCode

# Deterministic ids: a message handled twice yields the same contract and license ids.
_IDS = uuid.UUID("6f1d7e0c-2a59-4c1b-9a9e-0d5f1b7a4e21")


class ContractStatus(StrEnum):
    PREPARING = "preparing"
    ACTIVE = "active"
    CANCELLED = "cancelled"


class LicenseStatus(StrEnum):
    PREPARING = "preparing"
    ACTIVE = "active"
    CANCELLED = "cancelled"


class ApplicationStatus(StrEnum):
    RECEIVED = "received"
    PROCESSING = "processing"
    COMPLETED = "completed"
    REJECTED = "rejected"


class OrderIdStatus(StrEnum):
    ACTIVE = "active"
    CANCELLED = "cancelled"


LIVE_STATUSES = frozenset({ContractStatus.PREPARING, ContractStatus.ACTIVE})
ISSUING = frozenset({Kind.NEW, Kind.ADDITION, Kind.VM_COUNT_INCREASE})  # the kinds Arcserve fulfils

# R12: expected completion per kind.
# docs/architecture.md, "Security": what one contract may hold, so that its detail view and
# every load of it stay bounded (a body holds at most 100 keys: MAX_KEYS_PER_APPLICATION).
MAX_LICENSES_PER_CONTRACT = 1000
NEW_BUSINESS_DAYS = 5
CHANGE_DURATION = timedelta(minutes=30)


class Rejected(Exception):
    """A rule says no; the aggregate turns it into the application's rejection."""

    def __init__(self, code: ReasonCode, message: str):
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


@dataclass(frozen=True)
class Reason:
    code: ReasonCode
    message: str


@dataclass
class License:
    license_id: UUID
    application_id: UUID  # the application that created it
    usage: Usage
    license_type: LicenseType
    vm_count: int | None
    billable: bool
    status: LicenseStatus = LicenseStatus.PREPARING
    license_key: str | None = None  # as held: sealed (shared/sealing.py); the rules only ask whether it is there
    parent_license_id: UUID | None = None  # set on the VM keys of a VM-count increase (R7)
    issued_at: datetime | None = None
    charge_start_at: datetime | None = None
    charge_end_at: datetime | None = None
    revoked_at: datetime | None = None  # the vendor confirmed the revocation

    @property
    def is_hypervisor(self) -> bool:
        return self.usage is Usage.HYPERVISOR

    @property
    def is_dedicated_hypervisor(self) -> bool:
        return self.is_hypervisor and self.license_type is LicenseType.DEDICATED_HYPERVISOR

    def vm_count_increase_refusal(self) -> Rejected | None:
        """R7: only an active dedicated hypervisor license takes more VMs; None if this one does."""
        if not (self.is_dedicated_hypervisor and self.status is LicenseStatus.ACTIVE):
            return Rejected(
                ReasonCode.NOT_DEDICATED_HYPERVISOR,
                f"license {self.license_id} is not an active hypervisor license of type dedicated_hypervisor",
            )
        if self.parent_license_id is not None:  # VMs are counted on the license itself
            return Rejected(
                ReasonCode.NOT_DEDICATED_HYPERVISOR,
                f"license {self.license_id} holds the VM keys of license {self.parent_license_id}; "
                "increase that license instead",
            )
        return None


@dataclass
class OrderId:
    value: str
    status: OrderIdStatus = OrderIdStatus.ACTIVE
    cancel_confirmed_at: datetime | None = None  # the vendor confirmed the cancellation


# Domain events: what happened, for the outbox.
@dataclass(frozen=True)
class ApplicationAccepted:
    application: Application
    licenses: tuple[License, ...]  # the keys it creates or cancels
    product: str  # of its contract
    order_id: str | None = None  # a cancellation that cancels the contract: the order ID that goes with it (R9)


@dataclass(frozen=True)
class ApplicationRejected:
    application: Application


@dataclass(frozen=True)
class ApplicationCompleted:
    application: Application


@dataclass(frozen=True)
class ContractStatusChanged:
    contract_id: UUID
    tenant_id: str
    from_status: ContractStatus
    to_status: ContractStatus
    application_id: UUID


DomainEvent = ApplicationAccepted | ApplicationRejected | ApplicationCompleted | ContractStatusChanged


@dataclass(frozen=True)
class Submitter:
    """Who submitted an application: an API key (through intake) or a publisher's broker user."""

    kind: Literal["api_key", "publisher"]
    id: str


@dataclass
class Application:
    application_id: UUID
    tenant_id: str
    kind: Kind
    contract_id: UUID | None
    command: Command | None  # None only for a submission that failed its schema
    submitted_at: datetime
    expected_completion_at: datetime | None = None
    status: ApplicationStatus = ApplicationStatus.RECEIVED
    reason: Reason | None = None
    completed_at: datetime | None = None  # when it ended, completed or rejected
    license_ids: list[UUID] = field(default_factory=list)  # keys it creates or cancels
    cancels_contract: bool = False  # a cancellation that left no key (R9)
    submitted_by: Submitter | None = None  # for the record (docs/architecture.md, "Security")
    events: list[DomainEvent] = field(default_factory=list, repr=False, compare=False)

    @classmethod
    def received(cls, application_id: UUID, tenant_id: str, command: Command | None, *, kind: Kind,
                 contract_id: UUID | None, submitted_at: datetime, calendar: BusinessCalendar,
                 submitted_by: Submitter | None = None) -> Application:
        """`kind` and `contract_id` count only without a command (one that failed its schema)."""
        if command is not None:
            kind, contract_id = KIND_OF[type(command)], getattr(command, "contract_id", None)
        return cls(
            application_id=application_id,
            tenant_id=tenant_id,
            kind=kind,
            contract_id=contract_id,
            command=command,
            submitted_at=submitted_at,
            expected_completion_at=expected_completion(kind, submitted_at, calendar),  # R12
            submitted_by=submitted_by,
        )

    @property
    def is_open(self) -> bool:
        return self.status is ApplicationStatus.PROCESSING

    def accept(self, licenses: Iterable[License], *, product: str, order_id: str | None = None) -> None:
        if self.status is not ApplicationStatus.RECEIVED:
            return
        licenses = tuple(licenses)
        self.status = ApplicationStatus.PROCESSING
        self.license_ids = [lic.license_id for lic in licenses]
        self.events.append(ApplicationAccepted(self, licenses, product, order_id))

    def reject(self, code: ReasonCode, message: str, now: datetime) -> None:
        if self.status is not ApplicationStatus.RECEIVED:
            return
        self.status = ApplicationStatus.REJECTED
        self.reason = Reason(code, message)
        self.completed_at = now
        self.events.append(ApplicationRejected(self))

    def refuse(self, message: str, now: datetime) -> None:
        """Arcserve refused what it was accepted for: it ends rejected after all."""
        if self.status is not ApplicationStatus.PROCESSING:
            return
        self.status = ApplicationStatus.REJECTED
        self.reason = Reason(ReasonCode.VENDOR_REFUSED, message)
        self.completed_at = now
        self.events.append(ApplicationRejected(self))

    def complete(self, now: datetime) -> None:
        if self.status is not ApplicationStatus.PROCESSING:
            return
        self.status = ApplicationStatus.COMPLETED
        self.completed_at = now
        self.events.append(ApplicationCompleted(self))


def expected_completion(kind: Kind, submitted_at: datetime, calendar: BusinessCalendar) -> datetime:
    """R12: new takes 5 business days; additions and VM-count increases 30 minutes;
    cancellations and contact changes are immediate."""
    if kind is Kind.NEW:
        return calendar.add_business_days(submitted_at, NEW_BUSINESS_DAYS)
    if kind in (Kind.ADDITION, Kind.VM_COUNT_INCREASE):
        return submitted_at + CHANGE_DURATION
    return submitted_at


# Derived ids name the tenant: an application id is the submitter's choice, so another
# tenant may choose the same one, and their contracts and keys must still be apart.
def contract_id_for(tenant_id: str, application_id: UUID) -> UUID:
    return uuid.uuid5(_IDS, f"contract:{tenant_id}:{application_id}")


def license_id_for(tenant_id: str, application_id: UUID, position: int) -> UUID:
    """The id of the application's `position`-th key (0-based, in the order of its lines)."""
    return uuid.uuid5(_IDS, f"license:{tenant_id}:{application_id}:{position}")


def _licenses_from(lines: Iterable[LicenseLine], tenant_id: str, application_id: UUID) -> list[License]:
    """One key per unit of quantity (R1, R5)."""
    licenses: list[License] = []
    for line in lines:
        for _ in range(line.quantity):
            licenses.append(
                License(
                    license_id=license_id_for(tenant_id, application_id, len(licenses)),
                    application_id=application_id,
                    usage=line.usage,
                    license_type=line.license_type,
                    vm_count=line.vm_count,
                    billable=True,
                )
            )
    return licenses


@dataclass
class Contract:
    contract_id: UUID
    tenant_id: str
    product_code: str
    contact: Contact
    status: ContractStatus
    created_at: datetime
    order_id: OrderId | None = None
    updated_at: datetime | None = None  # when it was last written (storage's, for the views)
    licenses: dict[UUID, License] = field(default_factory=dict)  # in issue order
    # Applications still processing, plus any this unit of work touched.
    applications: dict[UUID, Application] = field(default_factory=dict)
    events: list[DomainEvent] = field(default_factory=list)

    # ---- R1, R2: a new contract ------------------------------------------------------
    @classmethod
    def open(cls, application: Application, now: datetime) -> Contract:
        """R1: the contract is created as `preparing`, with one key per unit."""
        command = application.command
        assert isinstance(command, OpenContract)
        contract = cls(
            contract_id=contract_id_for(application.tenant_id, application.application_id),
            tenant_id=application.tenant_id,
            product_code=command.product,
            contact=command.contact,
            status=ContractStatus.PREPARING,
            created_at=now,
        )
        application.contract_id = contract.contract_id
        contract._accept(application, _licenses_from(command.lines, application.tenant_id, application.application_id))
        return contract

    def refuse_second_contract(self, application: Application, now: datetime) -> None:
        """R2: one live contract per tenant and product; this one is live."""
        if self.status in LIVE_STATUSES:
            application.reject(
                ReasonCode.CONTRACT_EXISTS,
                f"the tenant already holds contract {self.contract_id} ({self.status.value}) "
                f"for {self.product_code}",
                now,
            )

    # ---- R3–R10: applications on an existing contract ---------------------------------
    def apply(self, application: Application, now: datetime) -> None:
        """Decide an application on this contract; a rule that says no rejects it, naming
        the rule, and leaves the contract as it was."""
        self.applications[application.application_id] = application
        try:
            self._decide(application, now)
        except Rejected as error:
            application.reject(error.code, error.message, now)
            self._record(application)

    def refusal(self, kind: Kind) -> Rejected | None:
        """Why the rules refuse an application of this kind on the contract as it stands
        (R10, R3, R6), or None. The gate decides with it, and the views show it beforehand."""
        if self.status is ContractStatus.CANCELLED:  # R10
            return Rejected(
                ReasonCode.CONTRACT_CANCELLED,
                "the contract is cancelled; apply for a new contract instead",
            )
        if self.status is ContractStatus.PREPARING:  # R3
            return Rejected(
                ReasonCode.CONTRACT_PREPARING,
                "the contract is still being prepared (新規準備中); no other application "
                "is possible until it is active",
            )
        if kind is Kind.CANCELLATION and (changing := self.changes_in_progress()):  # R6
            return Rejected(
                ReasonCode.CHANGE_IN_PROGRESS,
                f"{changing[0].kind.value} {changing[0].application_id} is still processing; "
                "cancel after it completes",
            )
        return None

    def changes_in_progress(self) -> list[Application]:
        """Additions and VM-count increases still processing (R6)."""
        return [
            a for a in self.applications.values()
            if a.is_open and a.kind in (Kind.ADDITION, Kind.VM_COUNT_INCREASE)
        ]

    def _decide(self, application: Application, now: datetime) -> None:
        if (refused := self.refusal(application.kind)) is not None:
            raise refused
        command = application.command
        if isinstance(command, AddLicenses):
            self._add_licenses(application, command)
        elif isinstance(command, IncreaseVmCount):
            self._increase_vm_count(application, command)
        elif isinstance(command, CancelLicenses):
            self._cancel(application, command, now)
        elif isinstance(command, ChangeContact):
            self.contact = command.contact
            self._accept(application, [])
            self._complete(application, now)
        else:  # a `new` naming an existing contract cannot be built by the schema
            raise TypeError(f"cannot apply {application.kind} to a contract")

    def _add_licenses(self, application: Application, command: AddLicenses) -> None:
        """R5: new keys are `preparing` until issued; the contract stays active."""
        adding = _licenses_from(command.lines, application.tenant_id, application.application_id)
        self._within_license_limit(len(adding))
        self._accept(application, adding)

    def _within_license_limit(self, adding: int) -> None:
        """A contract holds at most MAX_LICENSES_PER_CONTRACT keys, cancelled ones included,
        so that its detail view and every load of it stay bounded."""
        if len(self.licenses) + adding > MAX_LICENSES_PER_CONTRACT:
            raise Rejected(
                ReasonCode.TOO_MANY_LICENSES,
                f"the contract holds {len(self.licenses)} keys, cancelled ones included; {adding} more "
                f"would pass the limit of {MAX_LICENSES_PER_CONTRACT} keys per contract",
            )

    def _increase_vm_count(self, application: Application, command: IncreaseVmCount) -> None:
        """R7: only an active dedicated hypervisor license; the new VM keys are not billable."""
        target = self._license(command.license_id)
        if (refused := target.vm_count_increase_refusal()) is not None:
            raise refused
        self._within_license_limit(1)
        vm_key = License(
            license_id=license_id_for(application.tenant_id, application.application_id, 0),
            application_id=application.application_id,
            usage=target.usage,
            license_type=target.license_type,
            vm_count=command.additional_vms,
            billable=False,
            parent_license_id=target.license_id,
        )
        self._accept(application, [vm_key])

    def _cancel(self, application: Application, command: CancelLicenses, now: datetime) -> None:
        """R8, R9: effective at once; hypervisor keys only all together (R6 is in `refusal`)."""
        uncancelled = [lic for lic in self.licenses.values() if lic.status is not LicenseStatus.CANCELLED]
        if command.license_ids is None:
            named = uncancelled
        else:
            named = [self._license(license_id) for license_id in command.license_ids]
            inactive = [lic for lic in named if lic.status is not LicenseStatus.ACTIVE]
            if inactive:  # R8
                raise Rejected(
                    ReasonCode.LICENSE_NOT_ACTIVE,
                    f"license {inactive[0].license_id} is {inactive[0].status.value}, not active",
                )
            hypervisor = {lic.license_id for lic in uncancelled if lic.is_hypervisor}
            named_hypervisor = {lic.license_id for lic in named if lic.is_hypervisor}
            if named_hypervisor and named_hypervisor != hypervisor:  # R8
                raise Rejected(
                    ReasonCode.HYPERVISOR_PARTIAL_CANCELLATION,
                    f"hypervisor keys can only be cancelled all together: name all "
                    f"{len(hypervisor)} of them, or use scope \"all\"",
                )
        for lic in named:
            lic.status = LicenseStatus.CANCELLED
            lic.charge_end_at = now if lic.billable else None
        application.cancels_contract = all(
            lic.status is LicenseStatus.CANCELLED for lic in self.licenses.values()
        )
        self._accept(application, named)
        if application.cancels_contract:  # R9
            self._set_status(ContractStatus.CANCELLED, application)
            if self.order_id is not None:
                self.order_id.status = OrderIdStatus.CANCELLED
        self._complete_if_done(application, now)

    # ---- results from the issuers (R1 join, in either order) --------------------------
    def license_issued(self, license_id: UUID, license_key: str, now: datetime) -> None:
        lic = self.licenses.get(license_id)
        if lic is None or lic.status is not LicenseStatus.PREPARING or lic.license_key is not None:
            return  # duplicate or late: already issued, or cancelled meanwhile
        lic.license_key = license_key
        lic.issued_at = now
        if self.status is ContractStatus.ACTIVE:  # R5, R7: a key on a live contract is live at once
            _activate(lic, now)
        self._complete_finished(now)

    def order_id_issued(self, value: str, now: datetime) -> None:
        if self.order_id is not None or self.status is not ContractStatus.PREPARING:
            return  # duplicate, or late after the contract moved on
        self.order_id = OrderId(value=value)
        self._complete_finished(now)

    def vendor_refused(self, application_id: UUID, reason: str, now: datetime) -> None:
        """Arcserve refused an accepted application's keys: it is rejected with Arcserve's
        reason, and its keys, never issued, are cancelled (never billed). A refused new
        application leaves no live contract, so the tenant may apply again (R2); a refused
        addition or VM-count increase leaves the contract active as it was (R5, R7)."""
        application = self.applications.get(application_id)
        if application is None or not application.is_open or application.kind not in ISSUING:
            return  # duplicate or late: it ended meanwhile
        for lic in (self.licenses[i] for i in application.license_ids):
            if lic.status is LicenseStatus.PREPARING and lic.license_key is None:
                lic.status = LicenseStatus.CANCELLED
        application.refuse(reason, now)
        self._record(application)
        if application.kind is Kind.NEW:
            self._set_status(ContractStatus.CANCELLED, application)

    def license_revoked(self, license_id: UUID, now: datetime) -> None:
        lic = self.licenses.get(license_id)
        if lic is None or lic.status is not LicenseStatus.CANCELLED or lic.revoked_at is not None:
            return
        lic.revoked_at = now
        self._complete_finished(now)

    def order_id_cancelled(self, now: datetime) -> None:
        order = self.order_id
        if order is None or order.status is not OrderIdStatus.CANCELLED or order.cancel_confirmed_at:
            return
        order.cancel_confirmed_at = now
        self._complete_finished(now)

    # ---- helpers ---------------------------------------------------------------------
    def _license(self, license_id: UUID) -> License:
        lic = self.licenses.get(license_id)
        if lic is None:
            raise Rejected(ReasonCode.NOT_FOUND, f"license {license_id} is not on this contract")
        return lic

    def _accept(self, application: Application, licenses: list[License]) -> None:
        for lic in licenses:
            self.licenses.setdefault(lic.license_id, lic)
        self.applications[application.application_id] = application
        ending = application.cancels_contract and self.order_id is not None
        application.accept(licenses, product=self.product_code,
                           order_id=self.order_id.value if ending and self.order_id else None)
        self._record(application)

    def _complete(self, application: Application, now: datetime) -> None:
        application.complete(now)
        self._record(application)

    def _record(self, application: Application) -> None:
        """What happened to an application it holds is the contract's to record, in order."""
        self.events += application.events
        application.events.clear()

    def _set_status(self, to: ContractStatus, application: Application) -> None:
        if self.status is to:
            return
        self.events.append(
            ContractStatusChanged(self.contract_id, self.tenant_id, self.status, to, application.application_id)
        )
        self.status = to

    def _complete_finished(self, now: datetime) -> None:
        for application in list(self.applications.values()):
            if application.is_open:
                self._complete_if_done(application, now)

    def _complete_if_done(self, application: Application, now: datetime) -> None:
        licenses = [self.licenses[i] for i in application.license_ids]
        if application.kind is Kind.CANCELLATION:
            if not all(lic.revoked_at for lic in licenses):
                return
            if application.cancels_contract and self.order_id and not self.order_id.cancel_confirmed_at:
                return
            self._complete(application, now)
            return
        if not all(lic.license_key is not None for lic in licenses):
            return
        if application.kind is Kind.NEW:
            if self.order_id is None:
                return  # R1: keys and order ID join in either order
            for lic in licenses:  # R1: the contract and its keys become active together
                _activate(lic, now)
            self._set_status(ContractStatus.ACTIVE, application)
        elif application.kind is Kind.VM_COUNT_INCREASE:
            for vm_key in licenses:  # R7: the parent covers the added VMs once keys exist
                parent = self.licenses[vm_key.parent_license_id]  # type: ignore[index]
                parent.vm_count = (parent.vm_count or 0) + (vm_key.vm_count or 0)
        self._complete(application, now)


def _activate(lic: License, now: datetime) -> None:
    lic.status = LicenseStatus.ACTIVE
    lic.charge_start_at = now if lic.billable else None  # R7: VM keys have no billing effect


def collect_events(contracts: Iterable[Contract], applications: Iterable[Application]) -> list[DomainEvent]:
    """Every event recorded since the last collection: the contracts', then those of the
    applications decided without one."""
    events: list[DomainEvent] = []
    recorders: list[Contract | Application] = [*contracts, *applications]
    for recorder in recorders:
        events += recorder.events
        recorder.events.clear()
    return events
