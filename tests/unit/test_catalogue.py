"""The message catalogue (shared/contracts/catalogue.py): every message of docs/architecture.md, "Public contract" has
one model, one routing key and one type; producers that drift from a model fail; consumers
read what a newer producer added without failing."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from pydantic import BaseModel, ValidationError

from services.provisioning.boundaries import BOUNDARIES
from services.status.domain.calendar import BusinessCalendar
from services.status.domain.commands import (
    AddLicenses,
    CancelLicenses,
    ChangeContact,
    Contact,
    IncreaseVmCount,
    Kind,
    LicenseLine,
    LicenseType,
    OpenContract,
    Usage,
)
from services.status.domain.model import Application, Contract, collect_events
from services.status.messages import to_message
from shared.contracts import catalogue, events, fulfilment, routing
from shared.contracts.applications import SUBMISSIONS, parse_application, submission_of
from shared.contracts.envelope import PoisonMessage, parse_event

NOW = datetime(2026, 6, 1, 1, 0, tzinfo=UTC)


def test_every_message_has_one_type_routing_key_and_exchange_as_the_design_says():
    types = [entry.type for entry in catalogue.CATALOGUE]
    assert len(types) == len(set(types))
    for entry in catalogue.CATALOGUE:
        if entry.exchange == routing.APPLICATIONS_EXCHANGE:
            assert entry.routing_key in {k.value for k in Kind}
            assert entry.type == f"arcserve.application.{entry.routing_key}"
        else:  # the public events, fulfilment, or a private route between two services
            assert entry.exchange in (routing.EVENTS_EXCHANGE, routing.FULFILMENT_EXCHANGE,
                                      routing.LICENSE_KEYS_EXCHANGE, routing.ORDER_IDS_EXCHANGE)
            assert entry.type == f"arcserve.{entry.routing_key}"
    assert {entry.routing_key for entry in catalogue.CATALOGUE if entry.exchange == routing.EVENTS_EXCHANGE} == {
        *(f"application.{stage}.{kind.value}" for stage in ("accepted", "rejected", "completed") for kind in Kind),
        "license.issued", "license.revoked", "license.refused", "order_id.issued", "order_id.cancelled",
        "contract.status_changed",
    }
    # docs/architecture.md, "Fulfilment": tasks and revocations out, results in, types `arcserve.fulfilment.<…>`.
    assert {entry.type for entry in catalogue.CATALOGUE if entry.exchange == routing.FULFILMENT_EXCHANGE} == {
        "arcserve.fulfilment.requested", "arcserve.fulfilment.fulfilled", "arcserve.fulfilment.rejected",
        "arcserve.fulfilment.revocation_requested", "arcserve.fulfilment.revocation_confirmed"}


def test_every_message_is_published_by_one_service_and_only_known_ones_are_subscribed():
    published = [model for boundary in BOUNDARIES for model in boundary.publishes]
    assert len(published) == len(set(published)), "two services publish one message"
    assert set(published) == {entry.model for entry in catalogue.CATALOGUE}
    # Submissions and fulfilment results come from other systems too, each judged by its
    # consumer's filter: no one service owns them.
    assert {e.model for e in catalogue.CATALOGUE if e.publisher is None} == {
        *SUBMISSIONS.values(), fulfilment.FulfilmentFulfilled, fulfilment.FulfilmentRejected,
        fulfilment.RevocationConfirmed}
    for boundary in BOUNDARIES:
        for subscriber in boundary.subscribers:
            assert subscriber.entries and set(subscriber.routes) == {e.type for e in subscriber.entries}


def _round_trip(message):
    entry, event = catalogue.to_event(message, source="urn:test", tenant_id="acme", subject="s")
    assert entry is catalogue.entry_of(message)
    return catalogue.parse(parse_event(event.to_json()))


@pytest.mark.parametrize("kind", list(SUBMISSIONS))
def test_a_submission_is_read_back_as_the_model_it_was_built_from(kind):
    bodies = {
        "new": {"kind": "new", "product": "arcserve-udp-10", "contact": {"email": "a@example.jp", "company_name": "A"},
                "licenses": [{"usage": "virtual_server", "license_type": "per_server", "quantity": 1}]},
        "addition": {"kind": "addition", "contract_id": str(uuid.uuid4()),
                     "licenses": [{"usage": "bare_metal", "license_type": "per_server", "quantity": 1}]},
        "vm_count_increase": {"kind": "vm_count_increase", "contract_id": str(uuid.uuid4()),
                              "license_id": str(uuid.uuid4()), "additional_vms": 2},
        "cancellation": {"kind": "cancellation", "contract_id": str(uuid.uuid4()), "scope": "all"},
        "contact_change": {"kind": "contact_change", "contract_id": str(uuid.uuid4()),
                           "contact": {"email": "b@example.jp", "company_name": "B"}},
    }
    submission = submission_of(parse_application(bodies[kind.value]), uuid.uuid4())
    assert _round_trip(submission) == submission


def _domain_events():
    """Every domain event the status service can record, from a real contract's life."""
    calendar = BusinessCalendar()
    line = LicenseLine(Usage.HYPERVISOR, LicenseType.DEDICATED_HYPERVISOR, 1, 5)

    def application(command, kind=None):
        return Application.received(uuid.uuid4(), "acme", command, kind=kind or Kind.NEW, contract_id=None,
                                    submitted_at=NOW, calendar=calendar)

    contract = Contract.open(application(OpenContract("arcserve-udp-10", Contact("a@example.jp", "A"), (line,))), NOW)
    for lic in list(contract.licenses.values()):
        contract.license_issued(lic.license_id, "KEY-1", NOW)
    contract.order_id_issued("ARC-1", NOW)
    dedicated = next(iter(contract.licenses))
    for command in (AddLicenses(contract.contract_id, (line,)), IncreaseVmCount(contract.contract_id, dedicated, 2),
                    ChangeContact(contract.contract_id, Contact("b@example.jp", "B"))):
        contract.apply(application(command), NOW)
    for lic in list(contract.licenses.values()):
        contract.license_issued(lic.license_id, f"KEY-{lic.license_id}", NOW)
    contract.apply(application(CancelLicenses(contract.contract_id)), NOW)
    contract.apply(application(ChangeContact(contract.contract_id, Contact("c@example.jp", "C"))), NOW)  # R10
    return collect_events([contract], [])


def test_every_event_the_status_service_publishes_fits_its_model():
    published = [to_message(event)[0] for event in _domain_events()]
    kinds = {type(message) for message in published}
    assert {*events.ACCEPTED, events.ApplicationRejected, events.ApplicationCompleted,
            events.ContractStatusChanged} <= kinds
    for message in published:
        assert _round_trip(message) == message


def test_a_producer_that_drifts_from_its_model_fails_at_once():
    with pytest.raises(ValidationError):  # a field the model does not have
        events.OrderIdIssued(contract_id=uuid.uuid4(), arcserve_order_id="ARC-1", order_id="ARC-1")  # type: ignore[call-arg]
    with pytest.raises(ValidationError):  # a field it needs, missing
        events.OrderIdCancelled(contract_id=uuid.uuid4())  # type: ignore[call-arg]


def test_a_consumer_ignores_what_a_newer_producer_added_at_any_depth():
    message = events.LicenseIssued(contract_id=uuid.uuid4(), licenses=[events.LicenseSummary(
        license_id=uuid.uuid4(), usage="virtual_server", license_type="per_server", status="active")])
    _, event = catalogue.to_event(message, source="urn:test", tenant_id="acme")
    newer = dict(event.data)
    newer["region"] = "jp-east"
    newer["licenses"] = [{**newer["licenses"][0], "expires_at": "2030-01-01"}]
    assert catalogue.parse(event.model_copy(update={"data": newer})) == message


def test_a_submission_is_as_strict_as_intake_and_a_bad_event_is_poison():
    _, event = catalogue.to_event(submission_of(parse_application(
        {"kind": "cancellation", "contract_id": str(uuid.uuid4()), "scope": "all"}), uuid.uuid4()),
        source="urn:test", tenant_id="acme")
    wished = event.model_copy(update={"data": {**event.data, "desired_cancellation_date": "2027-01-01"}})
    with pytest.raises(catalogue.InvalidData) as caught:  # R4: no wished-for dates, over AMQP too
        catalogue.parse(wished)
    assert caught.value.reason.startswith("invalid_application: desired_cancellation_date: unknown field")
    unknown = event.model_copy(update={"type": "arcserve.application.teleport"})
    with pytest.raises(PoisonMessage, match="unknown_type"):
        catalogue.parse(unknown)
    anonymous = event.model_copy(update={"tenantid": None})
    with pytest.raises(PoisonMessage, match="missing_tenant"):
        catalogue.parse(anonymous)


def test_no_message_on_the_shared_exchanges_has_a_field_for_a_license_key():
    """Keys travel sealed, as `license.keys`, on an exchange no other system may read."""
    def fields(model: type[BaseModel]) -> set[str]:
        found = set(model.model_fields)
        for field in model.model_fields.values():
            for arg in (*getattr(field.annotation, "__args__", ()), field.annotation):
                if isinstance(arg, type) and issubclass(arg, BaseModel):
                    found |= fields(arg)
        return found

    for entry in catalogue.CATALOGUE:
        if entry.exchange in (routing.APPLICATIONS_EXCHANGE, routing.EVENTS_EXCHANGE):
            assert not {f for f in fields(entry.model) if "key" in f}, entry.type
    [keys] = [e for e in catalogue.CATALOGUE if e.model is events.LicenseKeys]
    assert (keys.exchange, keys.routing_key, keys.type) == ("arcserve.license-keys", "license.keys", "arcserve.license.keys")
