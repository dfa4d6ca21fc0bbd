"""The status service's service layer (as cosmicpython's `services.py`): plain functions over
a repository port, with the time and the business calendar passed in. The message handlers
call them with a Postgres repository inside the consumer's unit of work
(services/status/handlers.py); the unit tests call them with an in-memory one
(tests/unit/test_status_service.py)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from services.status.domain.calendar import BusinessCalendar
from services.status.domain.commands import (
    Command,
    KeysIssued,
    KeysRevoked,
    Kind,
    OpenContract,
    OrderIdCancelled,
    OrderIdIssued,
    Refused,
    Result,
)
from services.status.domain.model import (
    Application,
    Contract,
    DomainEvent,
    ReasonCode,
    Submitter,
)
from shared.tenancy import Role


class Repository(Protocol):
    """What the service layer needs of storage. Contracts it returns are locked until the
    unit of work ends (one writer per contract); `save` writes what changed."""

    async def hold(self, tenant_id: str, application_id: UUID) -> bool:
        """Until the unit of work ends, no other one decides this tenant's application id;
        False if the tenant is not known (both at once: the gate's first round trip)."""

    async def decided(self, tenant_id: str, application_id: UUID) -> bool:
        """Whether the tenant's application of this id was decided before (another tenant's
        of the same id is another application)."""

    async def live_for_product(self, tenant_id: str, product: str) -> Contract | None: ...

    async def get(self, contract_id: UUID, tenant_id: str) -> Contract | None: ...

    def add(self, contract: Contract) -> None: ...

    def add_application(self, application: Application) -> None:
        """An application decided with no contract to hold it (rejected)."""

    async def save(self) -> list[DomainEvent]:
        """Write every change of the unit of work; return the events recorded meanwhile."""

    async def snapshot(self, contract_id: UUID, tenant_id: str, history: int) -> Detail | None:
        """The contract, its newest `history` applications and how many it has, read-only
        and consistent."""


# docs/architecture.md, "Security": the detail view is bounded. Its keys are by the limit of
# keys per contract; its application history shows the newest ones.
DETAIL_HISTORY = 100


@dataclass(frozen=True)
class Detail:
    contract: Contract
    history: list[Application]  # the newest DETAIL_HISTORY applications, oldest first
    applications_total: int


@dataclass(frozen=True)
class Submission:
    """A submission as the service layer takes it: the domain command, or why there is none."""

    application_id: UUID
    tenant_id: str
    kind: Kind
    command: Command | None
    claimed_at: datetime | None  # the publisher's `time`; R12 trusts only the edge's
    # The role the publisher may submit for the tenant in (judged by services/status/submitters.py).
    role: Role
    contract_id: UUID | None = None  # as the data named it, when there is no command
    problem: str | None = None  # R4: why it failed its schema
    publisher: str = ""  # the broker user who published it, as the broker proved
    api_key_id: str | None = None  # the key intake authenticated it with (trusted from the edge only)


class UnknownTenant(Exception):
    pass


class TooEarly(Exception):
    """A result whose contract is not there (yet): it overtook the acceptance it follows."""


async def decide(submission: Submission, repo: Repository, calendar: BusinessCalendar, now: datetime) -> list[DomainEvent]:
    """Decide a submission by the rules R1–R10 (R12 for its expected completion); return
    what happened. The same application id decided before is not decided again. Who may
    submit for the tenant was judged before (services/status/submitters.py)."""
    role = submission.role
    if not await repo.hold(submission.tenant_id, submission.application_id):
        raise UnknownTenant(submission.tenant_id)
    # R12 counts from when the system received the application: the edge's own clock says
    # so; what another publisher claims does not count.
    submitted_at = submission.claimed_at if role is Role.EDGE and submission.claimed_at else now
    if role is Role.EDGE and submission.api_key_id:
        submitted_by = Submitter("api_key", submission.api_key_id)
    else:
        submitted_by = Submitter("publisher", submission.publisher)
    if await repo.decided(submission.tenant_id, submission.application_id):
        return []
    application = Application.received(
        submission.application_id, submission.tenant_id, submission.command, kind=submission.kind,
        contract_id=submission.contract_id, submitted_at=submitted_at, calendar=calendar, submitted_by=submitted_by,
    )
    command = submission.command
    if command is None:  # R4
        application.reject(ReasonCode.INVALID_APPLICATION, submission.problem or "invalid", now)
        repo.add_application(application)
    elif isinstance(command, OpenContract):
        live = await repo.live_for_product(application.tenant_id, command.product)
        if live is not None:  # R2
            live.refuse_second_contract(application, now)
            repo.add_application(application)
        else:  # R1
            repo.add(Contract.open(application, now))
    else:
        assert application.contract_id is not None
        contract = await repo.get(application.contract_id, application.tenant_id)
        if contract is None:
            application.reject(ReasonCode.NOT_FOUND, f"contract {application.contract_id} not found", now)
            repo.add_application(application)
        else:  # R3, R5–R10
            contract.apply(application, now)
    return await repo.save()


async def apply(result: Result, tenant_id: str, repo: Repository, now: datetime) -> list[DomainEvent]:
    """Join an issuer's result into its contract (R1, R5, R7, R8, R9), or Arcserve's refusal;
    a duplicate or late one changes nothing."""
    contract = await repo.get(result.contract_id, tenant_id)
    if contract is None:
        raise TooEarly(f"contract {result.contract_id} of tenant {tenant_id!r} is not there")
    if isinstance(result, KeysIssued):
        for license_id, key in result.keys:
            contract.license_issued(license_id, key, now)
    elif isinstance(result, KeysRevoked):
        for license_id in result.license_ids:
            contract.license_revoked(license_id, now)
    elif isinstance(result, OrderIdIssued):
        contract.order_id_issued(result.value, now)
    elif isinstance(result, OrderIdCancelled):
        contract.order_id_cancelled(now)
    elif isinstance(result, Refused):
        contract.vendor_refused(result.application_id, result.reason, now)
    return await repo.save()


async def contract_detail(contract_id: UUID, tenant_id: str, repo: Repository) -> Detail | None:
    """R11: what the detail view shows (services/status/views.py renders it); None for a
    contract that is not the tenant's."""
    return await repo.snapshot(contract_id, tenant_id, DETAIL_HISTORY)
