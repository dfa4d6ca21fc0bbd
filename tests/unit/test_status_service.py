"""The status service's service layer (services/status/service.py) with an in-memory
repository, as cosmicpython's tests/unit/test_handlers.py does: decide a submission, join
the issuers' results, render the detail view (R11); no broker, no database."""
from __future__ import annotations

import copy
import uuid
from datetime import datetime, timedelta
from uuid import UUID

import pytest

from services.status import service, views
from services.status.domain.calendar import JST, BusinessCalendar
from services.status.domain.commands import (
    AddLicenses,
    CancelLicenses,
    ChangeContact,
    Contact,
    KeysIssued,
    KeysRevoked,
    Kind,
    LicenseLine,
    LicenseType,
    OpenContract,
    OrderIdCancelled,
    OrderIdIssued,
    Refused,
    Usage,
)
from services.status.domain.model import (
    Application,
    ApplicationAccepted,
    ApplicationCompleted,
    ApplicationRejected,
    Contract,
    ContractStatus,
    ContractStatusChanged,
    DomainEvent,
    collect_events,
)
from shared.sealing import Keyring
from shared.tenancy import Role

T0 = datetime(2026, 6, 1, 10, 0, tzinfo=JST)  # a Monday
CALENDAR = BusinessCalendar()
EDGE = "arcserve-intake"  # the edge's broker user: it acts for every tenant
KEYRING = Keyring.parse(Keyring.new_key_text())
TENANT, OTHER = "acme", "globex"
PRODUCT = "arcserve-udp-10"
CONTACT = Contact("ops@example.co.jp", "Acme K.K.")
VIRTUAL = LicenseLine(Usage.VIRTUAL_SERVER, LicenseType.PER_SERVER, 2)


class FakeRepository:
    """The repository port in memory: what is saved is kept as a copy, as a database would."""

    def __init__(self, tenants: tuple[str, ...] = (TENANT, OTHER)):
        self.tenants = set(tenants)
        self.contracts: dict[UUID, Contract] = {}
        self.applications: dict[tuple[str, UUID], Application] = {}  # by tenant and id
        self._touched: dict[UUID, Contract] = {}
        self._standalone: list[Application] = []

    async def hold(self, tenant_id: str, application_id: UUID) -> bool:
        return tenant_id in self.tenants

    async def decided(self, tenant_id: str, application_id: UUID) -> bool:
        return (tenant_id, application_id) in self.applications

    async def live_for_product(self, tenant_id: str, product: str) -> Contract | None:
        for contract in self.contracts.values():
            if (contract.tenant_id, contract.product_code) == (tenant_id, product) and contract.status is not ContractStatus.CANCELLED:
                return await self.get(contract.contract_id, tenant_id)
        return None

    async def get(self, contract_id: UUID, tenant_id: str) -> Contract | None:
        stored = self.contracts.get(contract_id)
        if stored is None or stored.tenant_id != tenant_id:
            return None
        return self._touched.setdefault(contract_id, copy.deepcopy(stored))

    def add(self, contract: Contract) -> None:
        self._touched[contract.contract_id] = contract

    def add_application(self, application: Application) -> None:
        self._standalone.append(application)

    async def save(self) -> list[DomainEvent]:
        events = collect_events(self._touched.values(), self._standalone)
        for contract in self._touched.values():
            contract.updated_at = T0
            self.contracts[contract.contract_id] = copy.deepcopy(contract)
            for application in contract.applications.values():
                self.applications[application.tenant_id, application.application_id] = copy.deepcopy(application)
        for application in self._standalone:
            self.applications[application.tenant_id, application.application_id] = copy.deepcopy(application)
        self._touched, self._standalone = {}, []
        return events

    async def snapshot(self, contract_id: UUID, tenant_id: str, history: int) -> service.Detail | None:
        contract = self.contracts.get(contract_id)
        if contract is None or contract.tenant_id != tenant_id:
            return None
        every = sorted((a for a in self.applications.values() if a.contract_id == contract_id),
                       key=lambda a: (a.submitted_at, a.application_id))
        return service.Detail(copy.deepcopy(contract), copy.deepcopy(every[-history:]), len(every))


def submission(command, *, tenant: str = TENANT, at: datetime = T0, application_id: UUID | None = None,
               publisher: str = EDGE, role: Role = Role.EDGE):
    return service.Submission(application_id or uuid.uuid4(), tenant, Kind.NEW, command, at, role, publisher=publisher)


async def decide(repo: FakeRepository, command, **kwargs) -> tuple[service.Submission, list[DomainEvent]]:
    made = submission(command, **kwargs)
    return made, await service.decide(made, repo, CALENDAR, kwargs.get("at", T0))


async def active_contract(repo: FakeRepository) -> Contract:
    made, events = await decide(repo, OpenContract(PRODUCT, CONTACT, (VIRTUAL,)))
    [accepted] = events
    assert isinstance(accepted, ApplicationAccepted)
    contract_id = accepted.application.contract_id
    assert contract_id is not None
    keys = tuple((license_id, KEYRING.seal(f"KEY-{n}", context=str(license_id)))  # keys arrive sealed
                 for n, license_id in enumerate(accepted.application.license_ids))
    await service.apply(KeysIssued(contract_id, keys), TENANT, repo, T0 + timedelta(minutes=1))
    await service.apply(OrderIdIssued(contract_id, "ARC-20260601-AAAAA-BBBBB"), TENANT, repo, T0 + timedelta(minutes=2))
    return repo.contracts[contract_id]


async def test_a_new_application_opens_a_preparing_contract_and_saves_it():
    repo = FakeRepository()
    made, events = await decide(repo, OpenContract(PRODUCT, CONTACT, (VIRTUAL,)))
    [accepted] = events
    assert isinstance(accepted, ApplicationAccepted) and len(accepted.licenses) == 2
    [contract] = repo.contracts.values()
    assert contract.status is ContractStatus.PREPARING  # R1
    assert repo.applications[made.tenant_id, made.application_id].expected_completion_at == datetime(2026, 6, 8, 10, tzinfo=JST)  # R12


async def test_keys_and_order_id_in_any_order_make_it_active():
    repo = FakeRepository()
    contract = await active_contract(repo)
    assert contract.status is ContractStatus.ACTIVE
    history = [a.status.value for a in repo.applications.values()]
    assert history == ["completed"]


async def test_a_second_new_for_a_held_product_is_rejected_and_saved_without_a_contract():
    repo = FakeRepository()
    await active_contract(repo)
    made, events = await decide(repo, OpenContract(PRODUCT, CONTACT, (VIRTUAL,)))
    assert [type(e) for e in events] == [ApplicationRejected]
    rejected = repo.applications[made.tenant_id, made.application_id]
    assert rejected.reason is not None and rejected.reason.code.value == "contract_exists"  # R2
    assert rejected.contract_id is None and len(repo.contracts) == 1


async def test_an_unknown_or_foreign_contract_is_not_found():
    repo = FakeRepository()
    contract = await active_contract(repo)
    for tenant, contract_id in ((TENANT, uuid.uuid4()), (OTHER, contract.contract_id)):
        made, events = await decide(repo, ChangeContact(contract_id, CONTACT), tenant=tenant)
        [rejected] = events
        assert isinstance(rejected, ApplicationRejected)
        assert repo.applications[made.tenant_id, made.application_id].reason.code.value == "not_found"  # type: ignore[union-attr]


async def test_a_submission_that_failed_its_schema_is_rejected_as_invalid():
    repo = FakeRepository()
    made = service.Submission(uuid.uuid4(), TENANT, Kind.ADDITION, None, T0, Role.EDGE, problem="licenses: field required",
                              publisher=EDGE)
    [rejected] = await service.decide(made, repo, CALENDAR, T0)
    assert isinstance(rejected, ApplicationRejected)
    stored = repo.applications[made.tenant_id, made.application_id]
    assert (stored.kind, stored.reason.code.value, stored.reason.message) == (  # type: ignore[union-attr]
        Kind.ADDITION, "invalid_application", "licenses: field required")  # R4


async def test_the_same_application_id_is_decided_once_per_tenant_and_never_suppresses_another_tenants():
    repo = FakeRepository()
    made, _ = await decide(repo, OpenContract(PRODUCT, CONTACT, (VIRTUAL,)))
    again = await service.decide(made, repo, CALENDAR, T0 + timedelta(seconds=1))
    assert again == [] and len(repo.contracts) == 1
    # Another tenant that chose the same id: its own application, contract and keys.
    same_id = service.Submission(made.application_id, OTHER, Kind.NEW, made.command, T0, Role.EDGE, publisher=EDGE)
    [accepted] = await service.decide(same_id, repo, CALENDAR, T0)
    assert isinstance(accepted, ApplicationAccepted) and accepted.application.tenant_id == OTHER
    [mine, theirs] = repo.contracts.values()
    assert mine.contract_id != theirs.contract_id and not set(mine.licenses) & set(theirs.licenses)
    assert {key for key in repo.applications} == {(TENANT, made.application_id), (OTHER, made.application_id)}


async def test_an_unknown_tenant_is_refused_before_anything_is_decided():
    repo = FakeRepository()
    with pytest.raises(service.UnknownTenant):
        await decide(repo, OpenContract(PRODUCT, CONTACT, (VIRTUAL,)), tenant="nobody")
    assert repo.applications == {}


async def test_a_result_before_its_contract_is_too_early():
    with pytest.raises(service.TooEarly):
        await service.apply(OrderIdIssued(uuid.uuid4(), "ARC-X"), TENANT, FakeRepository(), T0)


async def test_full_cancellation_ends_with_the_contract_and_order_id_cancelled():
    repo = FakeRepository()
    contract = await active_contract(repo)
    made, events = await decide(repo, CancelLicenses(contract.contract_id), at=T0 + timedelta(days=1))
    assert [type(e) for e in events] == [ApplicationAccepted, ContractStatusChanged]  # R9
    assert events[0].order_id == "ARC-20260601-AAAAA-BBBBB"  # type: ignore[union-attr]
    later = T0 + timedelta(days=1, minutes=1)
    revoked = await service.apply(KeysRevoked(contract.contract_id, tuple(contract.licenses)), TENANT, repo, later)
    assert revoked == []  # waits for the order ID's cancellation too
    done = await service.apply(OrderIdCancelled(contract.contract_id), TENANT, repo, later)
    assert [type(e) for e in done] == [ApplicationCompleted]
    assert repo.contracts[contract.contract_id].status is ContractStatus.CANCELLED


async def test_the_detail_view_shows_what_r11_names():
    repo = FakeRepository()
    contract = await active_contract(repo)
    await decide(repo, ChangeContact(contract.contract_id, Contact("it@example.jp", "Renamed K.K.")),
                 at=T0 + timedelta(days=1))
    found = await service.contract_detail(contract.contract_id, TENANT, repo)
    assert found is not None
    view = views.contract_detail(found, KEYRING, T0)

    assert view["product"] == {"code": PRODUCT, "name": "Arcserve Unified Data Protection", "version": "10.0"}
    assert view["support_desk"]["name"] == "Arcserve Japan Software Support"  # from the product catalog
    assert (view["status"], view["status_label"]) == ("active", "提供中")
    assert view["arcserve_order_id"] == {"value": "ARC-20260601-AAAAA-BBBBB", "status": "active"}
    assert view["contact"] == {"email": "it@example.jp", "company_name": "Renamed K.K."}
    assert [(k["license_key"], k["status"], k["charge_start_at"], k["charge_end_at"]) for k in view["licenses"]] == [
        ("KEY-0", "active", (T0 + timedelta(minutes=2)).isoformat(), None),
        ("KEY-1", "active", (T0 + timedelta(minutes=2)).isoformat(), None),
    ]
    assert [(a["kind"], a["status"]) for a in view["applications"]] == [("new", "completed"), ("contact_change", "completed")]
    assert await service.contract_detail(contract.contract_id, OTHER, repo) is None  # another tenant's: not found


async def test_the_detail_view_hides_a_key_until_it_is_live():
    repo = FakeRepository()
    made, _ = await decide(repo, OpenContract(PRODUCT, CONTACT, (VIRTUAL,)))
    [contract] = repo.contracts.values()
    first = next(iter(contract.licenses))
    await service.apply(KeysIssued(contract.contract_id, ((first, KEYRING.seal("KEY-0", context=str(first))),)),
                        TENANT, repo, T0)
    found = await service.contract_detail(contract.contract_id, TENANT, repo)
    assert found is not None
    assert [lic["license_key"] for lic in views.contract_detail(found, KEYRING, T0)["licenses"]] == [None, None]  # R1


# ---- who submitted (who may submit for which tenant: tests/unit/test_submitters.py) --------


async def test_r12_counts_from_the_edges_time_but_from_receipt_for_any_other_publisher():
    repo = FakeRepository()
    received = T0 + timedelta(days=3)
    claimed = T0 - timedelta(days=30)  # a direct publisher's claim to have applied a month ago

    [from_edge] = await service.decide(submission(OpenContract(PRODUCT, CONTACT, (VIRTUAL,)), at=T0), repo,
                                       CALENDAR, received)
    [from_other] = await service.decide(
        submission(OpenContract("arcserve-udp-9", CONTACT, (VIRTUAL,)), at=claimed, publisher="billing-system",
                   role=Role.PUBLISHER),
        repo, CALENDAR, received,
    )
    assert isinstance(from_edge, ApplicationAccepted) and isinstance(from_other, ApplicationAccepted)
    assert from_edge.application.submitted_at == T0
    assert from_other.application.submitted_at == received
    assert from_other.application.expected_completion_at == CALENDAR.add_business_days(received, 5)


# ---- Arcserve's refusal (fulfilment, docs/architecture.md) ----------------------------------

async def test_a_refused_new_application_leaves_no_live_contract_and_the_tenant_may_apply_again():
    repo = FakeRepository()
    made, [accepted] = await decide(repo, OpenContract(PRODUCT, CONTACT, (VIRTUAL,)))
    assert isinstance(accepted, ApplicationAccepted) and accepted.application.contract_id is not None
    contract_id = accepted.application.contract_id

    events = await service.apply(Refused(contract_id, made.application_id, "在庫なし"), TENANT, repo, T0)

    assert [type(e) for e in events] == [ApplicationRejected, ContractStatusChanged]
    refused = repo.applications[TENANT, made.application_id]
    assert refused.reason is not None and (refused.reason.code.value, refused.reason.message) == ("vendor_refused", "在庫なし")
    contract = repo.contracts[contract_id]
    assert contract.status is ContractStatus.CANCELLED
    assert all(lic.status.value == "cancelled" and lic.charge_start_at is None for lic in contract.licenses.values())
    # Keys arriving late for it change nothing; a second refusal neither.
    late = tuple((i, KEYRING.seal("K", context=str(i))) for i in contract.licenses)
    assert await service.apply(KeysIssued(contract_id, late), TENANT, repo, T0) == []
    assert await service.apply(Refused(contract_id, made.application_id, "again"), TENANT, repo, T0) == []
    _, [again] = await decide(repo, OpenContract(PRODUCT, CONTACT, (VIRTUAL,)))  # R2: none is live
    assert isinstance(again, ApplicationAccepted)


async def test_a_refused_addition_leaves_the_contract_active_as_it_was():
    repo = FakeRepository()
    contract = await active_contract(repo)
    active = {i for i, lic in contract.licenses.items() if lic.status.value == "active"}
    made, [accepted] = await decide(repo, AddLicenses(contract.contract_id, (VIRTUAL,)))
    assert isinstance(accepted, ApplicationAccepted)

    events = await service.apply(Refused(contract.contract_id, made.application_id, "no"), TENANT, repo, T0)

    assert [type(e) for e in events] == [ApplicationRejected]
    after = repo.contracts[contract.contract_id]
    assert after.status is ContractStatus.ACTIVE
    assert {i for i, lic in after.licenses.items() if lic.status.value == "active"} == active
    assert after.changes_in_progress() == []  # nothing in progress: a cancellation may follow (R6)


async def test_a_refusal_after_completion_changes_nothing():
    repo = FakeRepository()
    contract = await active_contract(repo)
    [completed] = repo.applications.values()

    assert await service.apply(Refused(contract.contract_id, completed.application_id, "late"), TENANT, repo, T0) == []
    assert repo.contracts[contract.contract_id].status is ContractStatus.ACTIVE


async def test_an_application_past_its_expected_completion_says_so_until_it_ends():
    repo = FakeRepository()
    made, [accepted] = await decide(repo, OpenContract(PRODUCT, CONTACT, (VIRTUAL,)))
    assert isinstance(accepted, ApplicationAccepted)
    application = repo.applications[TENANT, made.application_id]
    expected = application.expected_completion_at
    assert expected is not None  # R12: five business days

    assert views.application_view(application, expected)["overdue"] is False
    assert views.application_view(application, expected + timedelta(seconds=1))["overdue"] is True
    completed = FakeRepository()
    await active_contract(completed)
    [ended] = completed.applications.values()
    assert views.application_view(ended, expected + timedelta(days=30))["overdue"] is False  # it ended
