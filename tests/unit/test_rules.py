"""The contract rules R1–R12 (docs/architecture.md, "Rules") and every reason code, on the pure domain.

Contracts are built only through the domain's own API: `Contract.open` with a `new`
application (a body parsed and mapped to its domain command, as the status service does at
its edge), then the issuers' results (`license_issued`, `order_id_issued`, ...).
"""
from __future__ import annotations

import copy
import uuid
from datetime import datetime, timedelta

import pytest

from services.status.domain.calendar import JST, BusinessCalendar
from services.status.domain.commands import Kind
from services.status.domain.model import (
    Application,
    ApplicationAccepted,
    ApplicationCompleted,
    ApplicationRejected,
    ApplicationStatus,
    Contract,
    ContractStatus,
    ContractStatusChanged,
    License,
    LicenseStatus,
    OrderIdStatus,
    ReasonCode,
)
from services.status.messages import command_of
from shared.contracts.applications import parse_application, submission_of

TENANT = "tenant-a"
PRODUCT = "arcserve-udp-10"
CONTACT = {"email": "ops@example.co.jp", "company_name": "Example K.K."}
T0 = datetime(2026, 6, 1, 10, 0, tzinfo=JST)  # a Monday
ISSUED_AT = T0 + timedelta(minutes=5)
NOW = T0 + timedelta(days=1)  # when a later application arrives
DONE_AT = NOW + timedelta(minutes=5)
CALENDAR = BusinessCalendar()

VIRTUAL = {"usage": "virtual_server", "license_type": "per_server", "quantity": 1}
BARE_METAL = {"usage": "bare_metal", "license_type": "per_server", "quantity": 1}
HYPERVISOR = {"usage": "hypervisor", "license_type": "per_server", "quantity": 1}
DEDICATED = {"usage": "hypervisor", "license_type": "dedicated_hypervisor", "quantity": 1, "vm_count": 10}


# ---- helpers: building contracts through the domain API ------------------------------

def qty(line: dict, quantity: int) -> dict:
    return {**line, "quantity": quantity}


def submit(body: dict, at: datetime = NOW) -> Application:
    parsed = parse_application(body)
    application_id = uuid.uuid4()
    return Application.received(
        application_id, TENANT, command_of(submission_of(parsed, application_id)),
        kind=Kind(parsed.kind), contract_id=None, submitted_at=at, calendar=CALENDAR,
    )


def new_application(*lines: dict) -> Application:
    return submit({"kind": "new", "product": PRODUCT, "contact": CONTACT, "licenses": list(lines)}, at=T0)


def preparing_contract(*lines: dict) -> Contract:
    return Contract.open(new_application(*(lines or (VIRTUAL,))), now=T0)


def issue_keys(contract: Contract, licenses=None, at: datetime = ISSUED_AT) -> None:
    for lic in licenses if licenses is not None else list(contract.licenses.values()):
        contract.license_issued(lic.license_id, f"KEY-{lic.license_id}", at)


def active_contract(*lines: dict) -> Contract:
    contract = preparing_contract(*lines)
    issue_keys(contract)
    contract.order_id_issued("ARC-0001", ISSUED_AT)
    assert contract.status is ContractStatus.ACTIVE
    contract.events.clear()
    return contract


def apply(contract: Contract, body: dict, at: datetime = NOW) -> Application:
    application = submit(body, at)
    contract.apply(application, at)
    return application


def cancelled_contract(*lines: dict) -> Contract:
    contract = active_contract(*lines)
    apply(contract, cancel_all(contract))
    assert contract.status is ContractStatus.CANCELLED
    contract.events.clear()
    return contract


def keys(contract: Contract, usage: str | None = None, license_type: str | None = None) -> list[License]:
    return [
        lic for lic in contract.licenses.values()
        if (usage is None or lic.usage == usage) and (license_type is None or lic.license_type == license_type)
    ]


def licenses_of(contract: Contract, application: Application) -> list[License]:
    return [contract.licenses[i] for i in application.license_ids]


def events_of(contract: Contract, event_type: type) -> list:
    return [e for e in contract.events if isinstance(e, event_type)]


# application bodies on an existing contract
def addition(contract: Contract, *lines: dict) -> dict:
    return {"kind": "addition", "contract_id": str(contract.contract_id), "licenses": list(lines or (VIRTUAL,))}


def vm_increase(contract: Contract, license_id, additional_vms: int = 5) -> dict:
    return {"kind": "vm_count_increase", "contract_id": str(contract.contract_id),
            "license_id": str(license_id), "additional_vms": additional_vms}


def cancel_all(contract: Contract) -> dict:
    return {"kind": "cancellation", "contract_id": str(contract.contract_id), "scope": "all"}


def cancel(contract: Contract, *licenses) -> dict:
    ids = [str(getattr(lic, "license_id", lic)) for lic in licenses]
    return {"kind": "cancellation", "contract_id": str(contract.contract_id), "license_ids": ids}


def contact_change(contract: Contract, email="new@example.co.jp", company_name="New K.K.") -> dict:
    return {"kind": "contact_change", "contract_id": str(contract.contract_id),
            "contact": {"email": email, "company_name": company_name}}


def first_key(contract: Contract) -> License:
    return next(iter(contract.licenses.values()))


def dedicated_key(contract: Contract) -> License:
    return keys(contract, "hypervisor", "dedicated_hypervisor")[0]


# every kind that can name an existing contract, as a body built from the contract
OTHER_KINDS = {
    "addition": lambda c: addition(c, VIRTUAL),
    "vm_count_increase": lambda c: vm_increase(c, dedicated_key(c).license_id),
    "cancellation-scope-all": cancel_all,
    "cancellation-license_ids": lambda c: cancel(c, first_key(c)),
    "contact_change": contact_change,
}


def rejection(contract: Contract, body: dict) -> ReasonCode:
    """Apply and expect a rejection, recorded by the contract; the contract must otherwise
    be left exactly as it was."""
    before = copy.deepcopy(contract)
    application = submit(body)
    contract.apply(application, NOW)
    assert application.status is ApplicationStatus.REJECTED and application.completed_at == NOW
    assert contract.events[len(before.events):] == [ApplicationRejected(application)]
    assert contract.applications.pop(application.application_id) is application  # kept, to be saved
    del contract.events[len(before.events):]
    assert contract == before, "a rejected application must not change the contract"
    assert application.reason is not None
    return application.reason.code


# ---- reason codes ---------------------------------------------------------------------

def test_reason_code_values_are_the_public_ones():
    public = {
        "invalid_application", "contract_exists", "contract_preparing", "change_in_progress",
        "not_dedicated_hypervisor", "hypervisor_partial_cancellation", "license_not_active",
        "contract_cancelled", "not_found", "too_many_licenses", "vendor_refused",
    }
    assert {code.value for code in ReasonCode} == public


def test_an_application_records_its_own_rejection():
    application = submit(addition(active_contract()))
    application.reject(ReasonCode.CONTRACT_PREPARING, "still preparing", NOW)
    assert application.events == [ApplicationRejected(application)]
    assert application.status is ApplicationStatus.REJECTED
    assert application.reason is not None
    assert (application.reason.code, application.reason.message) == (ReasonCode.CONTRACT_PREPARING, "still preparing")
    assert application.completed_at == NOW
    application.reject(ReasonCode.NOT_FOUND, "again", DONE_AT)  # decided once
    assert application.reason.code is ReasonCode.CONTRACT_PREPARING and len(application.events) == 1


# ---- R1: new ----------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("lines", "expected_keys"),
    [
        pytest.param([qty(VIRTUAL, 3)], [("virtual_server", "per_server", None)] * 3, id="quantity-3-gives-3-keys"),
        pytest.param(
            [qty(VIRTUAL, 2), DEDICATED],
            [("virtual_server", "per_server", None)] * 2 + [("hypervisor", "dedicated_hypervisor", 10)],
            id="two-lines",
        ),
        pytest.param([BARE_METAL, HYPERVISOR],
                     [("bare_metal", "per_server", None), ("hypervisor", "per_server", None)], id="one-of-each"),
    ],
)
def test_r1_new_creates_a_preparing_contract_with_one_key_per_unit(lines, expected_keys):
    application = new_application(*lines)
    contract = Contract.open(application, now=T0)

    assert contract.status is ContractStatus.PREPARING
    assert (contract.tenant_id, contract.product_code, contract.contact.email) == (TENANT, PRODUCT, CONTACT["email"])
    assert contract.order_id is None
    assert [(l.usage, l.license_type, l.vm_count) for l in contract.licenses.values()] == expected_keys
    assert all(l.status is LicenseStatus.PREPARING and l.billable and l.license_key is None
               for l in contract.licenses.values())
    assert application.contract_id == contract.contract_id
    assert application.status is ApplicationStatus.PROCESSING
    assert application.license_ids == list(contract.licenses)
    assert contract.events == [ApplicationAccepted(application, tuple(contract.licenses.values()), PRODUCT)]


def test_r1_ids_are_deterministic_for_the_same_application():
    application = new_application(qty(VIRTUAL, 2))
    first = Contract.open(application, now=T0)
    again = Contract.open(copy.deepcopy(application), now=T0)
    assert again.contract_id == first.contract_id
    assert list(again.licenses) == list(first.licenses)


ISSUE_ORDERS = {
    "keys-then-order_id": ["key0", "key1", "order"],
    "order_id-then-keys": ["order", "key0", "key1"],
    "order_id-between-keys": ["key1", "order", "key0"],
}


@pytest.mark.parametrize("order", list(ISSUE_ORDERS))
def test_r1_contract_becomes_active_only_when_all_keys_and_the_order_id_arrived(order):
    contract = preparing_contract(qty(VIRTUAL, 2))
    application = next(iter(contract.applications.values()))
    lic = list(contract.licenses.values())
    contract.events.clear()
    steps = {
        "key0": lambda at: contract.license_issued(lic[0].license_id, "KEY-0", at),
        "key1": lambda at: contract.license_issued(lic[1].license_id, "KEY-1", at),
        "order": lambda at: contract.order_id_issued("ARC-0001", at),
    }
    *before_last, last = ISSUE_ORDERS[order]
    for step in before_last:
        steps[step](ISSUED_AT)
        assert contract.status is ContractStatus.PREPARING
        assert application.status is ApplicationStatus.PROCESSING
        # R1: an issued key waits for the order ID; it and the contract go live together.
        assert all(l.status is LicenseStatus.PREPARING and l.charge_start_at is None for l in lic)
    assert contract.events == []
    steps[last](DONE_AT)

    assert contract.status is ContractStatus.ACTIVE
    assert contract.order_id is not None
    assert contract.order_id.value == "ARC-0001" and contract.order_id.status is OrderIdStatus.ACTIVE
    assert [(l.status, l.license_key) for l in lic] == [(LicenseStatus.ACTIVE, "KEY-0"), (LicenseStatus.ACTIVE, "KEY-1")]
    assert all(l.charge_start_at == DONE_AT for l in lic)  # billing starts when the contract is live
    assert application.status is ApplicationStatus.COMPLETED and application.completed_at == DONE_AT
    assert contract.events == [
        ContractStatusChanged(contract.contract_id, TENANT, ContractStatus.PREPARING, ContractStatus.ACTIVE,
                              application.application_id),
        ApplicationCompleted(application),
    ]


@pytest.mark.parametrize(
    "duplicate",
    [
        pytest.param(lambda c: c.license_issued(first_key(c).license_id, "OTHER-KEY", DONE_AT), id="license_issued-again"),
        pytest.param(lambda c: c.order_id_issued("ARC-9999", DONE_AT), id="order_id_issued-again"),
        pytest.param(lambda c: c.license_issued(uuid.uuid4(), "STRAY-KEY", DONE_AT), id="license_issued-unknown-id"),
    ],
)
def test_r1_duplicate_issuer_results_are_no_ops(duplicate):
    contract = active_contract(qty(VIRTUAL, 2))
    before = copy.deepcopy(contract)
    duplicate(contract)
    assert contract == before
    assert contract.events == []


def test_r1_duplicate_key_before_the_order_id_does_not_complete_early():
    contract = preparing_contract(VIRTUAL)
    issue_keys(contract)
    issue_keys(contract, at=DONE_AT)
    assert contract.status is ContractStatus.PREPARING
    assert first_key(contract).issued_at == ISSUED_AT


# ---- R2: one live contract per tenant and product -------------------------------------

@pytest.mark.parametrize(
    "live",
    [pytest.param(preparing_contract, id="preparing"), pytest.param(active_contract, id="active")],
)
def test_r2_new_is_rejected_while_a_live_contract_exists(live):
    existing = live()
    before = copy.deepcopy(existing)
    application = new_application(VIRTUAL)
    existing.refuse_second_contract(application, NOW)
    assert application.status is ApplicationStatus.REJECTED
    assert application.reason is not None
    assert application.reason.code is ReasonCode.CONTRACT_EXISTS
    assert application.events == [ApplicationRejected(application)]  # it has no contract to hold it
    assert existing == before


@pytest.mark.parametrize(
    "live",
    [pytest.param(lambda: None, id="no-contract-yet"), pytest.param(cancelled_contract, id="old-one-cancelled")],
)
def test_r2_new_is_allowed_without_a_live_contract(live):
    existing = live()
    application = new_application(VIRTUAL)
    if existing is not None:
        existing.refuse_second_contract(application, NOW)  # a cancelled one refuses nothing
        assert application.status is ApplicationStatus.RECEIVED and application.events == []
    contract = Contract.open(application, now=NOW)
    assert contract.status is ContractStatus.PREPARING
    if existing is not None:
        assert contract.contract_id != existing.contract_id
        assert existing.status is ContractStatus.CANCELLED


# ---- R3: locked while preparing ---------------------------------------------------------

@pytest.mark.parametrize("kind", list(OTHER_KINDS))
def test_r3_every_other_kind_on_a_preparing_contract_is_rejected(kind):
    contract = preparing_contract(VIRTUAL, DEDICATED)
    assert rejection(contract, OTHER_KINDS[kind](contract)) is ReasonCode.CONTRACT_PREPARING


@pytest.mark.parametrize("missing", ["order_id", "one-key"])
def test_r3_still_locked_until_both_results_arrived(missing):
    contract = preparing_contract(qty(VIRTUAL, 2))
    if missing == "order_id":
        issue_keys(contract)
    else:
        issue_keys(contract, [first_key(contract)])
        contract.order_id_issued("ARC-0001", ISSUED_AT)
    assert rejection(contract, contact_change(contract)) is ReasonCode.CONTRACT_PREPARING


# ---- R5: addition -----------------------------------------------------------------------

def test_r5_addition_keys_are_preparing_then_active_and_the_contract_stays_active():
    contract = active_contract(VIRTUAL)
    original = first_key(contract)
    application = apply(contract, addition(contract, qty(BARE_METAL, 2), DEDICATED))
    added = licenses_of(contract, application)

    assert [(l.usage, l.status, l.billable) for l in added] == [
        ("bare_metal", LicenseStatus.PREPARING, True),
        ("bare_metal", LicenseStatus.PREPARING, True),
        ("hypervisor", LicenseStatus.PREPARING, True),
    ]
    assert contract.status is ContractStatus.ACTIVE
    assert application.status is ApplicationStatus.PROCESSING
    assert contract.events == [ApplicationAccepted(application, tuple(added), PRODUCT)]

    issue_keys(contract, added[:2], at=DONE_AT)
    assert application.status is ApplicationStatus.PROCESSING, "completes only when all its keys are issued"
    issue_keys(contract, added[2:], at=DONE_AT)

    assert application.status is ApplicationStatus.COMPLETED and application.completed_at == DONE_AT
    assert all(l.status is LicenseStatus.ACTIVE and l.charge_start_at == DONE_AT for l in added)
    assert original.charge_start_at == ISSUED_AT
    assert contract.status is ContractStatus.ACTIVE
    assert events_of(contract, ContractStatusChanged) == []
    assert events_of(contract, ApplicationCompleted) == [ApplicationCompleted(application)]


# ---- R6: no cancellation during a change -----------------------------------------------

CHANGES = {
    "addition": lambda c: addition(c, VIRTUAL),
    "vm_count_increase": lambda c: vm_increase(c, dedicated_key(c).license_id),
}
CANCELLATIONS = {
    "scope-all": cancel_all,
    "license_ids": lambda c: cancel(c, keys(c, "virtual_server")[0]),
}


@pytest.mark.parametrize("form", list(CANCELLATIONS))
@pytest.mark.parametrize("change", list(CHANGES))
def test_r6_cancellation_is_rejected_while_a_change_is_processing(change, form):
    contract = active_contract(VIRTUAL, DEDICATED)
    apply(contract, CHANGES[change](contract))
    assert rejection(contract, CANCELLATIONS[form](contract)) is ReasonCode.CHANGE_IN_PROGRESS


@pytest.mark.parametrize("form", list(CANCELLATIONS))
@pytest.mark.parametrize("change", list(CHANGES))
def test_r6_cancellation_is_allowed_once_the_change_completed(change, form):
    contract = active_contract(VIRTUAL, DEDICATED)
    change_application = apply(contract, CHANGES[change](contract))
    issue_keys(contract, licenses_of(contract, change_application), at=DONE_AT)
    assert change_application.status is ApplicationStatus.COMPLETED

    cancellation = apply(contract, CANCELLATIONS[form](contract), at=DONE_AT)
    assert cancellation.status is ApplicationStatus.PROCESSING


def test_r6_other_changes_are_not_blocked_by_a_processing_addition():
    contract = active_contract(VIRTUAL, DEDICATED)
    apply(contract, addition(contract))
    assert apply(contract, contact_change(contract)).status is ApplicationStatus.COMPLETED
    assert apply(contract, vm_increase(contract, dedicated_key(contract).license_id)).status is ApplicationStatus.PROCESSING


# ---- R7: VM-count increase ----------------------------------------------------------------

def test_r7_vm_count_increase_issues_a_non_billable_key_and_raises_vm_count_on_completion():
    contract = active_contract(VIRTUAL, DEDICATED)
    parent = dedicated_key(contract)
    application = apply(contract, vm_increase(contract, parent.license_id, additional_vms=5))
    [vm_key] = licenses_of(contract, application)

    assert (vm_key.usage, vm_key.license_type, vm_key.vm_count) == ("hypervisor", "dedicated_hypervisor", 5)
    assert vm_key.billable is False
    assert vm_key.parent_license_id == parent.license_id
    assert vm_key.status is LicenseStatus.PREPARING
    assert parent.vm_count == 10, "raised only once the VM key exists"
    assert application.status is ApplicationStatus.PROCESSING
    assert contract.events == [ApplicationAccepted(application, (vm_key,), PRODUCT)]

    issue_keys(contract, [vm_key], at=DONE_AT)

    assert vm_key.status is LicenseStatus.ACTIVE and vm_key.issued_at == DONE_AT
    assert vm_key.charge_start_at is None, "R7: no billing effect"
    assert parent.vm_count == 15
    assert parent.charge_start_at == ISSUED_AT
    assert application.status is ApplicationStatus.COMPLETED
    assert contract.status is ContractStatus.ACTIVE

    issue_keys(contract, [vm_key], at=DONE_AT)  # a duplicate does not add the VMs twice
    assert parent.vm_count == 15


def cancel_the_dedicated_key(contract: Contract) -> License:
    key = dedicated_key(contract)
    apply(contract, cancel(contract, *keys(contract, "hypervisor")))  # R8: all hypervisor keys together
    assert key.status is LicenseStatus.CANCELLED
    assert contract.status is ContractStatus.ACTIVE
    return key


def preparing_dedicated_key(contract: Contract) -> License:
    application = apply(contract, addition(contract, DEDICATED))
    return licenses_of(contract, application)[0]


def an_issued_vm_key(contract: Contract) -> License:
    application = apply(contract, vm_increase(contract, dedicated_key(contract).license_id))
    [vm_key] = licenses_of(contract, application)
    issue_keys(contract, [vm_key], at=DONE_AT)
    assert vm_key.status is LicenseStatus.ACTIVE
    contract.events.clear()
    return vm_key


@pytest.mark.parametrize(
    ("target", "code"),
    [
        pytest.param(lambda c: keys(c, "hypervisor", "per_server")[0], ReasonCode.NOT_DEDICATED_HYPERVISOR,
                     id="per_server-hypervisor"),
        pytest.param(lambda c: keys(c, "virtual_server")[0], ReasonCode.NOT_DEDICATED_HYPERVISOR, id="virtual_server"),
        pytest.param(lambda c: keys(c, "bare_metal")[0], ReasonCode.NOT_DEDICATED_HYPERVISOR, id="bare_metal"),
        pytest.param(cancel_the_dedicated_key, ReasonCode.NOT_DEDICATED_HYPERVISOR, id="cancelled-dedicated"),
        pytest.param(preparing_dedicated_key, ReasonCode.NOT_DEDICATED_HYPERVISOR, id="not-yet-issued-dedicated"),
        pytest.param(an_issued_vm_key, ReasonCode.NOT_DEDICATED_HYPERVISOR, id="vm-key-of-an-earlier-increase"),
        pytest.param(lambda c: uuid.uuid4(), ReasonCode.NOT_FOUND, id="unknown-license-id"),
    ],
)
def test_r7_vm_count_increase_only_on_an_active_dedicated_hypervisor_license(target, code):
    contract = active_contract(VIRTUAL, BARE_METAL, HYPERVISOR, DEDICATED)
    chosen = target(contract)
    license_id = getattr(chosen, "license_id", chosen)
    assert rejection(contract, vm_increase(contract, license_id)) is code


# ---- R8: cancellation ---------------------------------------------------------------------

def test_r8_partial_cancellation_cancels_the_named_keys_at_once():
    contract = active_contract(qty(VIRTUAL, 2), BARE_METAL)
    gone, kept, bare = contract.licenses.values()
    application = apply(contract, cancel(contract, gone))

    assert (gone.status, gone.charge_end_at) == (LicenseStatus.CANCELLED, NOW)
    assert [(l.status, l.charge_end_at) for l in (kept, bare)] == [(LicenseStatus.ACTIVE, None)] * 2
    assert contract.status is ContractStatus.ACTIVE
    assert contract.order_id is not None
    assert contract.order_id.status is OrderIdStatus.ACTIVE
    assert application.cancels_contract is False
    assert application.status is ApplicationStatus.PROCESSING
    assert contract.events == [ApplicationAccepted(application, (gone,), PRODUCT)]

    contract.license_revoked(gone.license_id, DONE_AT)  # no order-ID step for a partial cancellation
    assert application.status is ApplicationStatus.COMPLETED and application.completed_at == DONE_AT
    assert contract.events[-1] == ApplicationCompleted(application)


def test_r8_a_cancelled_key_cannot_be_named_again():
    contract = active_contract(qty(VIRTUAL, 2))
    gone = first_key(contract)
    apply(contract, cancel(contract, gone))
    contract.license_revoked(gone.license_id, DONE_AT)
    assert rejection(contract, cancel(contract, gone)) is ReasonCode.LICENSE_NOT_ACTIVE


@pytest.mark.parametrize(
    ("lines", "named"),
    [
        pytest.param([qty(HYPERVISOR, 2), VIRTUAL], lambda c: keys(c, "hypervisor")[:1],
                     id="one-of-two-per_server-hypervisor"),
        pytest.param([HYPERVISOR, DEDICATED], lambda c: keys(c, "hypervisor", "dedicated_hypervisor"),
                     id="dedicated-but-not-per_server-hypervisor"),
        pytest.param([qty(DEDICATED, 2), VIRTUAL], lambda c: keys(c, "hypervisor")[:1] + keys(c, "virtual_server"),
                     id="one-dedicated-plus-a-virtual_server"),
    ],
)
def test_r8_hypervisor_keys_cannot_be_cancelled_partially(lines, named):
    contract = active_contract(*lines)
    assert rejection(contract, cancel(contract, *named(contract))) is ReasonCode.HYPERVISOR_PARTIAL_CANCELLATION


@pytest.mark.parametrize(
    ("lines", "named"),
    [
        pytest.param([qty(HYPERVISOR, 2), VIRTUAL], lambda c: keys(c, "hypervisor"), id="all-hypervisor-keys"),
        pytest.param([HYPERVISOR, DEDICATED, VIRTUAL], lambda c: keys(c, "hypervisor"),
                     id="all-hypervisor-keys-of-both-types"),
        pytest.param([DEDICATED, qty(VIRTUAL, 2)], lambda c: keys(c, "hypervisor") + keys(c, "virtual_server")[:1],
                     id="all-hypervisor-keys-plus-a-virtual_server"),
        pytest.param([HYPERVISOR, qty(VIRTUAL, 2)], lambda c: keys(c, "virtual_server")[:1],
                     id="no-hypervisor-key-named"),
    ],
)
def test_r8_naming_all_hypervisor_keys_or_none_is_allowed(lines, named):
    contract = active_contract(*lines)
    chosen = named(contract)
    application = apply(contract, cancel(contract, *chosen))
    assert application.status is ApplicationStatus.PROCESSING
    assert all(l.status is LicenseStatus.CANCELLED for l in chosen)
    assert contract.status is ContractStatus.ACTIVE
    assert any(l.status is LicenseStatus.ACTIVE for l in contract.licenses.values())


def test_r8_the_hypervisor_keys_to_cancel_together_are_the_uncancelled_ones():
    # Hypervisor keys cancelled earlier, then new ones added: "all together" means all the
    # hypervisor keys still live, not every one the contract ever had.
    contract = active_contract(qty(HYPERVISOR, 2), VIRTUAL)
    first = keys(contract, "hypervisor")
    apply(contract, cancel(contract, *first))
    for lic in first:
        contract.license_revoked(lic.license_id, DONE_AT)
    added = licenses_of(contract, apply(contract, addition(contract, qty(HYPERVISOR, 2))))
    issue_keys(contract, added, at=DONE_AT)
    assert [lic.status for lic in added] == [LicenseStatus.ACTIVE] * 2

    application = apply(contract, cancel(contract, *added), at=DONE_AT)
    assert application.status is ApplicationStatus.PROCESSING
    assert all(lic.status is LicenseStatus.CANCELLED for lic in added)
    assert contract.status is ContractStatus.ACTIVE  # the virtual_server key is still live
    assert rejection(contract, cancel(contract, *added[:1])) is ReasonCode.LICENSE_NOT_ACTIVE


@pytest.mark.parametrize(
    "named",
    [
        pytest.param(lambda c: [uuid.uuid4()], id="unknown-id"),
        pytest.param(lambda c: [first_key(c), uuid.uuid4()], id="known-and-unknown-id"),
    ],
)
def test_r8_an_unknown_license_id_is_not_found(named):
    contract = active_contract(qty(VIRTUAL, 2))
    assert rejection(contract, cancel(contract, *named(contract))) is ReasonCode.NOT_FOUND


# ---- R9: full cancellation ----------------------------------------------------------------

def cancel_by_scope(contract):
    return apply(contract, cancel_all(contract))


def cancel_by_naming_all(contract):
    return apply(contract, cancel(contract, *contract.licenses.values()))


def cancel_the_rest_after_a_partial(contract):
    first = apply(contract, cancel(contract, keys(contract, "virtual_server")[0]), at=T0 + timedelta(hours=20))
    contract.license_revoked(first.license_ids[0], T0 + timedelta(hours=21))
    assert first.status is ApplicationStatus.COMPLETED
    contract.events.clear()
    rest = [l for l in contract.licenses.values() if l.status is LicenseStatus.ACTIVE]
    return apply(contract, cancel(contract, *rest))


FULL_CANCELLATIONS = {
    "scope-all": cancel_by_scope,
    "naming-every-key": cancel_by_naming_all,
    "naming-the-last-keys-after-a-partial": cancel_the_rest_after_a_partial,
}


@pytest.mark.parametrize("how", list(FULL_CANCELLATIONS))
def test_r9_cancelling_the_last_key_cancels_the_contract_and_its_order_id(how):
    contract = active_contract(qty(VIRTUAL, 2), DEDICATED)
    application = FULL_CANCELLATIONS[how](contract)

    assert contract.status is ContractStatus.CANCELLED
    assert contract.order_id is not None
    assert contract.order_id.status is OrderIdStatus.CANCELLED
    assert application.cancels_contract is True
    assert all(l.status is LicenseStatus.CANCELLED for l in contract.licenses.values())
    assert all(l.charge_end_at == NOW for l in licenses_of(contract, application))
    assert application.status is ApplicationStatus.PROCESSING, "waits for the vendor's confirmations"
    assert contract.events == [
        ApplicationAccepted(application, tuple(licenses_of(contract, application)), PRODUCT, "ARC-0001"),  # R9: its order ID goes
        ContractStatusChanged(contract.contract_id, TENANT, ContractStatus.ACTIVE, ContractStatus.CANCELLED,
                              application.application_id),
    ]


def test_r9_vm_keys_are_cancelled_without_a_charge_end():
    contract = active_contract(VIRTUAL, DEDICATED)
    increase = apply(contract, vm_increase(contract, dedicated_key(contract).license_id), at=T0 + timedelta(hours=2))
    issue_keys(contract, licenses_of(contract, increase), at=T0 + timedelta(hours=3))
    [vm_key] = licenses_of(contract, increase)
    apply(contract, cancel_all(contract))
    assert vm_key.status is LicenseStatus.CANCELLED
    assert vm_key.charge_end_at is None
    assert contract.status is ContractStatus.CANCELLED


REVOCATION_ORDERS = {
    "revocations-then-order_id": ["revoke0", "revoke1", "order"],
    "order_id-then-revocations": ["order", "revoke0", "revoke1"],
    "order_id-between-revocations": ["revoke1", "order", "revoke0"],
}


@pytest.mark.parametrize("order", list(REVOCATION_ORDERS))
def test_r9_full_cancellation_completes_after_every_revocation_and_the_order_id_cancellation(order):
    contract = active_contract(qty(VIRTUAL, 2))
    application = apply(contract, cancel_all(contract))
    contract.events.clear()
    lic = list(contract.licenses.values())
    steps = {
        "revoke0": lambda at: contract.license_revoked(lic[0].license_id, at),
        "revoke1": lambda at: contract.license_revoked(lic[1].license_id, at),
        "order": lambda at: contract.order_id_cancelled(at),
    }
    *before_last, last = REVOCATION_ORDERS[order]
    for step in before_last:
        steps[step](NOW)
        assert application.status is ApplicationStatus.PROCESSING
    steps[last](DONE_AT)

    assert application.status is ApplicationStatus.COMPLETED and application.completed_at == DONE_AT
    assert contract.order_id is not None
    assert contract.order_id.cancel_confirmed_at is not None
    assert contract.events == [ApplicationCompleted(application)]

    for again in steps.values():  # duplicates are no-ops
        again(DONE_AT + timedelta(minutes=1))
    assert contract.events == [ApplicationCompleted(application)]


def test_r9_late_issuer_results_do_not_revive_a_cancelled_contract():
    contract = cancelled_contract(VIRTUAL)
    before = copy.deepcopy(contract)
    contract.order_id_issued("ARC-9999", DONE_AT)
    issue_keys(contract, at=DONE_AT)
    assert contract == before


# ---- R10: cancelled is final ---------------------------------------------------------------

@pytest.mark.parametrize("kind", list(OTHER_KINDS))
def test_r10_every_kind_on_a_cancelled_contract_is_rejected(kind):
    contract = cancelled_contract(VIRTUAL, DEDICATED)
    assert rejection(contract, OTHER_KINDS[kind](contract)) is ReasonCode.CONTRACT_CANCELLED


# ---- contact change ------------------------------------------------------------------------

def test_contact_change_completes_at_once_and_updates_the_contact():
    contract = active_contract(VIRTUAL)
    licenses_before = copy.deepcopy(contract.licenses)
    application = apply(contract, contact_change(contract, "it@example.jp", "Renamed K.K."))

    assert (contract.contact.email, contract.contact.company_name) == ("it@example.jp", "Renamed K.K.")
    assert application.status is ApplicationStatus.COMPLETED and application.completed_at == NOW
    assert application.license_ids == []
    assert contract.licenses == licenses_before
    assert contract.events == [ApplicationAccepted(application, (), PRODUCT), ApplicationCompleted(application)]


# ---- R12: expected completion ----------------------------------------------------------------

from services.status.domain.model import expected_completion  # noqa: E402


@pytest.mark.parametrize(
    ("kind", "submitted", "expected"),
    [
        pytest.param(Kind.NEW, datetime(2026, 6, 1, 10, tzinfo=JST), datetime(2026, 6, 8, 10, tzinfo=JST),
                     id="new-5-business-days"),
        pytest.param(Kind.NEW, datetime(2026, 6, 5, 10, tzinfo=JST), datetime(2026, 6, 12, 10, tzinfo=JST),
                     id="new-over-a-weekend"),
        pytest.param(Kind.NEW, datetime(2026, 4, 28, 10, tzinfo=JST), datetime(2026, 5, 11, 10, tzinfo=JST),
                     id="new-over-golden-week"),
        pytest.param(Kind.NEW, datetime(2026, 12, 25, 10, tzinfo=JST), datetime(2027, 1, 7, 10, tzinfo=JST),
                     id="new-over-year-end-closure"),
        pytest.param(Kind.ADDITION, datetime(2026, 6, 5, 23, 45, tzinfo=JST), datetime(2026, 6, 6, 0, 15, tzinfo=JST),
                     id="addition-30-minutes-even-into-a-saturday"),
        pytest.param(Kind.VM_COUNT_INCREASE, datetime(2026, 12, 31, 10, tzinfo=JST),
                     datetime(2026, 12, 31, 10, 30, tzinfo=JST), id="vm_count_increase-30-minutes-even-in-closure"),
        pytest.param(Kind.CANCELLATION, T0, T0, id="cancellation-immediate"),
        pytest.param(Kind.CONTACT_CHANGE, T0, T0, id="contact_change-immediate"),
    ],
)
def test_r12_expected_completion(kind, submitted, expected):
    assert expected_completion(kind, submitted, CALENDAR) == expected


def test_a_contract_holds_at_most_its_limit_of_keys_cancelled_ones_included():
    from services.status.domain.model import MAX_LICENSES_PER_CONTRACT

    contract = active_contract(qty(VIRTUAL, 99), DEDICATED)
    hypervisor = keys(contract, license_type="dedicated_hypervisor")[0]
    for _ in range(MAX_LICENSES_PER_CONTRACT // 100 - 1):
        added = apply(contract, addition(contract, qty(VIRTUAL, 100)))
        issue_keys(contract, licenses_of(contract, added), at=DONE_AT)
    assert len(contract.licenses) == MAX_LICENSES_PER_CONTRACT
    apply(contract, cancel(contract, *keys(contract, usage="virtual_server")[:10]))
    contract.events.clear()

    one_more = apply(contract, addition(contract, VIRTUAL))
    more_vms = apply(contract, vm_increase(contract, hypervisor.license_id))

    assert one_more.reason is not None and more_vms.reason is not None
    assert one_more.reason.code is more_vms.reason.code is ReasonCode.TOO_MANY_LICENSES
    assert "1000 keys, cancelled ones included; 1 more would pass the limit of 1000" in one_more.reason.message
    assert len(contract.licenses) == MAX_LICENSES_PER_CONTRACT
    assert events_of(contract, ApplicationAccepted) == []


# ---- what the rules allow beforehand (the views' `actions`) agrees with what they decide ------

STATES = {
    "preparing": lambda: preparing_contract(VIRTUAL, DEDICATED),
    "active": lambda: active_contract(VIRTUAL, DEDICATED),
    "active-with-addition-processing": lambda: _with_change(active_contract(VIRTUAL, DEDICATED)),
    "cancelled": lambda: cancelled_contract(VIRTUAL, DEDICATED),
}
KIND_OF_FORM = {"addition": Kind.ADDITION, "vm_count_increase": Kind.VM_COUNT_INCREASE,
                "cancellation-scope-all": Kind.CANCELLATION, "cancellation-license_ids": Kind.CANCELLATION,
                "contact_change": Kind.CONTACT_CHANGE}


def _with_change(contract: Contract) -> Contract:
    apply(contract, addition(contract))
    contract.events.clear()
    return contract


@pytest.mark.parametrize("form", list(OTHER_KINDS))
@pytest.mark.parametrize("state", list(STATES))
def test_r3_r6_r10_refusal_beforehand_is_the_rejection_the_gate_gives(state, form):
    contract = STATES[state]()
    refused = contract.refusal(KIND_OF_FORM[form])
    if form == "vm_count_increase" and state == "cancelled":
        body_target = first_key(contract)  # any key: the contract-level rule speaks first
        body = vm_increase(contract, body_target.license_id)
    else:
        body = OTHER_KINDS[form](contract)
    application = submit(body)
    contract.apply(application, NOW)
    if refused is None:
        assert application.status is not ApplicationStatus.REJECTED, application.reason
    else:
        assert application.reason is not None and application.reason.code is refused.code


def test_r7_a_keys_vm_refusal_beforehand_is_the_rejection_the_gate_gives():
    contract = active_contract(VIRTUAL, DEDICATED)
    for lic in list(contract.licenses.values()):
        refused = lic.vm_count_increase_refusal()
        application = submit(vm_increase(contract, lic.license_id))
        contract.apply(application, NOW)
        if refused is None:
            assert lic.is_dedicated_hypervisor and application.status is ApplicationStatus.PROCESSING
        else:
            assert application.reason is not None and application.reason.code is refused.code
