"""The edge between the status service's domain and the message catalogue: submissions in
(wire bodies → domain commands), events out (domain events → catalogue models)."""
from __future__ import annotations

from services.status.domain import commands as domain
from services.status.domain.model import (
    Application,
    ApplicationAccepted,
    ApplicationCompleted,
    ApplicationRejected,
    ContractStatusChanged,
    DomainEvent,
    License,
)
from shared.contracts import applications as wire
from shared.contracts import events


def _contact(contact: wire.Contact) -> domain.Contact:
    return domain.Contact(str(contact.email), contact.company_name)


def _lines(lines: list[wire.LicenseLine]) -> tuple[domain.LicenseLine, ...]:
    return tuple(domain.LicenseLine(line.usage, line.license_type, line.quantity, line.vm_count) for line in lines)


def command_of(submission: wire.Submission) -> domain.Command:
    """The domain command a validated submission asks for."""
    if isinstance(submission, wire.NewSubmission):
        return domain.OpenContract(submission.product, _contact(submission.contact), _lines(submission.licenses))
    if isinstance(submission, wire.AdditionSubmission):
        return domain.AddLicenses(submission.contract_id, _lines(submission.licenses))
    if isinstance(submission, wire.VmCountIncreaseSubmission):
        return domain.IncreaseVmCount(submission.contract_id, submission.license_id, submission.additional_vms)
    if isinstance(submission, wire.CancellationSubmission):
        ids = tuple(submission.license_ids) if submission.license_ids is not None else None
        return domain.CancelLicenses(submission.contract_id, ids)
    return domain.ChangeContact(submission.contract_id, _contact(submission.contact))


def license_summary(lic: License) -> events.LicenseSummary:
    """What consumers may see of a key: everything but the key itself."""
    return events.LicenseSummary(
        license_id=lic.license_id,
        usage=lic.usage,
        license_type=lic.license_type,
        vm_count=lic.vm_count,
        billable=lic.billable,
        status=lic.status.value,
    )


def _accepted(event: ApplicationAccepted) -> events.ApplicationAccepted:
    app = event.application
    assert app.contract_id is not None
    common = {
        "application_id": app.application_id,
        "contract_id": app.contract_id,
        "licenses": [license_summary(lic) for lic in event.licenses],
        "expected_completion_at": app.expected_completion_at,
        "submitted_at": app.submitted_at,
        "product": event.product,
    }
    command = app.command
    if isinstance(command, domain.OpenContract):
        return events.NewAccepted(**common)
    if isinstance(command, domain.AddLicenses):
        return events.AdditionAccepted(**common)
    if isinstance(command, domain.IncreaseVmCount):
        return events.VmCountIncreaseAccepted(**common, license_id=command.license_id,
                                              additional_vms=command.additional_vms)
    if isinstance(command, domain.CancelLicenses):
        return events.CancellationAccepted(
            **common,
            scope="all" if command.license_ids is None else "partial",
            cancels_contract=app.cancels_contract,
            arcserve_order_id=event.order_id if app.cancels_contract else None,
        )
    return events.ContactChangeAccepted(**common)


def to_message(event: DomainEvent) -> tuple[events.Message, str | None]:
    """The catalogue message of a domain event, and its CloudEvents `subject` (the contract)."""
    if isinstance(event, ContractStatusChanged):
        return events.ContractStatusChanged(
            application_id=event.application_id, contract_id=event.contract_id,
            from_status=event.from_status.value, to_status=event.to_status.value,
        ), str(event.contract_id)
    app: Application = event.application
    subject = str(app.contract_id) if app.contract_id else None
    if isinstance(event, ApplicationAccepted):
        return _accepted(event), subject
    kind = app.kind
    if isinstance(event, ApplicationRejected):
        assert app.reason is not None
        reason = events.Reason(code=app.reason.code, message=app.reason.message)
        return events.ApplicationRejected(application_id=app.application_id, contract_id=app.contract_id,
                                          kind=kind, reason=reason), subject
    assert isinstance(event, ApplicationCompleted)
    return events.ApplicationCompleted(application_id=app.application_id, contract_id=app.contract_id,
                                       kind=kind), subject
