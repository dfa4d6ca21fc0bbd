"""The license issuer's handlers on the in-memory harness (shared/messaging/testing.py), and
its fulfilment (services/license_issuer/fulfilment.py) on in-memory tables: what they ask
for, store and publish, and what reaches the vendor, with no broker and no database.
tests/integration/test_license_keys.py and test_fulfilment.py prove it on the real ones."""
from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import cast
from uuid import UUID

import pytest
from pydantic import BaseModel

from services.license_issuer.fulfillers import Fulfillers
from services.license_issuer.fulfilment import InvalidResult, Simulator, fulfil, settle
from services.license_issuer.handlers import QUEUE, RESULTS, Deps
from services.license_issuer.keys import IssuedKey, Request, RequestState
from services.license_issuer.revocations import Confirmation, Revocation, Revoker
from shared.config import FulfilmentSource
from shared.contracts import events
from shared.contracts.applications import Kind, LicenseType, Usage
from shared.contracts.envelope import CloudEvent, PoisonMessage
from shared.contracts.fulfilment import (
    DeliveredKey,
    FulfilmentFulfilled,
    FulfilmentRejected,
    FulfilmentRequested,
    RevocationConfirmed,
    RevocationRequested,
    RevokedLicense,
)
from shared.db.pool import Connection
from shared.messaging.delivery import Delivery
from shared.messaging.testing import T0, Harness, NoDatabase
from shared.sealing import Keyring
from tests.support.recorded import Recorded

KEYRING = Keyring.parse(Keyring.new_key_text())
CONTRACT, APPLICATION = uuid.uuid4(), uuid.uuid4()


class MemoryRevocations:
    """`license_issuer.revocations` in memory."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, UUID], Revocation] = {}
        self.confirmed_at: dict[tuple[str, UUID], datetime] = {}

    async def record(self, revocation: Revocation) -> None:
        self.rows.setdefault((revocation.tenant_id, revocation.application_id), revocation)

    async def due(self, now: datetime, limit: int) -> list[Revocation]:
        due = [r for key, r in self.rows.items() if key not in self.confirmed_at and r.next_at <= now]
        return sorted(due, key=lambda r: r.next_at)[:limit]

    async def announced_again(self, revocation: Revocation, next_at: datetime) -> None:
        key = (revocation.tenant_id, revocation.application_id)
        self.rows[key] = dataclasses.replace(self.rows[key], announced=self.rows[key].announced + 1, next_at=next_at)

    async def confirm(self, tenant_id: str, application_id: UUID, at: datetime) -> Confirmation | None:
        key = (tenant_id, application_id)
        if key not in self.rows:
            return None
        if key in self.confirmed_at:
            return "confirmed before"
        self.confirmed_at[key] = at
        return "confirmed"

    async def next_due(self) -> datetime | None:
        return min((r.next_at for key, r in self.rows.items() if key not in self.confirmed_at), default=None)


class MemoryKeys:
    """`license_issuer.keys` and `license_issuer.requests` in memory: the first key stored
    for a license stays."""

    def __init__(self) -> None:
        self.rows: dict[UUID, IssuedKey] = {}
        self.revoked_at: dict[UUID, datetime] = {}
        self.requests: dict[tuple[str, UUID], Request] = {}  # by tenant and application id
        self.fulfilled_at: dict[tuple[str, UUID], datetime] = {}
        self.refusals: dict[tuple[str, UUID], str] = {}

    async def keep(self, issued: Sequence[IssuedKey]) -> dict[UUID, str]:
        for key in issued:
            self.rows.setdefault(key.license_id, key)
        return await self.stored([k.license_id for k in issued])

    async def stored(self, license_ids: Sequence[UUID]) -> dict[UUID, str]:
        return {i: self.rows[i].sealed_key for i in license_ids if i in self.rows}

    async def unrevoked(self, license_ids: Sequence[UUID]) -> dict[UUID, str]:
        return {i: self.rows[i].sealed_key for i in license_ids if i in self.rows and i not in self.revoked_at}

    async def revoke(self, license_ids: Sequence[UUID], at: datetime) -> None:
        for i in license_ids:
            if i in self.rows:
                self.revoked_at.setdefault(i, at)

    async def request(self, request: Request) -> RequestState:
        key = (request.tenant_id, request.application_id)
        self.requests.setdefault(key, request)
        return self._state(key)

    def _state(self, key: tuple[str, UUID]) -> RequestState:
        return "fulfilled" if key in self.fulfilled_at else "refused" if key in self.refusals else "open"

    async def task(self, tenant_id: str, application_id: UUID) -> tuple[Request, RequestState] | None:
        key = (tenant_id, application_id)
        return (self.requests[key], self._state(key)) if key in self.requests else None

    async def used(self, fingerprints: Sequence[bytes]) -> bool:
        return any(row.fingerprint in fingerprints for row in self.rows.values())

    async def refused(self, request: Request, reason: str, at: datetime) -> None:
        key = (request.tenant_id, request.application_id)
        if self._state(key) == "open":
            self.refusals[key] = reason

    async def to_simulate(self, now: datetime, limit: int) -> list[Request]:
        due = [r for key, r in self.requests.items() if self._state(key) == "open"
               and r.simulate_at is not None and r.simulate_at <= now]
        return sorted(due, key=lambda r: r.simulate_at or now)[:limit]

    async def next_simulation(self) -> datetime | None:
        return min((r.simulate_at for key, r in self.requests.items()
                    if self._state(key) == "open" and r.simulate_at is not None), default=None)

    async def fulfilled(self, request: Request, at: datetime) -> None:
        if self._state((request.tenant_id, request.application_id)) != "refused":
            self.fulfilled_at.setdefault((request.tenant_id, request.application_id), at)


NEW_DELAY, CHANGE_DELAY = timedelta(days=5), timedelta(minutes=30)


RETRY = timedelta(minutes=15)


def harness(source: FulfilmentSource = "simulator", *,
            new_delay: timedelta = NEW_DELAY) -> tuple[Harness[Deps], MemoryRevocations, MemoryKeys]:
    revocations, keys = MemoryRevocations(), MemoryKeys()
    simulator = Simulator(new_delay.total_seconds(), CHANGE_DELAY.total_seconds())
    revoker = Revoker(source, RETRY.total_seconds(), CHANGE_DELAY.total_seconds(), keyring=KEYRING,
                      keys=lambda _db: keys, revocations=lambda _db: revocations)
    deps = Deps(KEYRING, simulator, source, keys=lambda _db: keys, revoker=revoker,
                revocations=lambda _db: revocations)
    return Harness(QUEUE, deps, service="license-issuer"), revocations, keys


async def simulate_all(issuer: Harness[Deps], keys: MemoryKeys, now: datetime) -> list[BaseModel]:
    """The simulator's pass at `now`, whatever the tenants: what it announced."""
    work = Recorded()
    await issuer.consumer.deps.simulator.answer_due(keys, KEYRING, now, work)
    return work.commit()


async def simulate(issuer: Harness[Deps], keys: MemoryKeys, now: datetime) -> list[BaseModel]:
    """The simulator's pass at `now`: what it announced."""
    work = Recorded()
    await issuer.consumer.deps.simulator.answer_due(keys, KEYRING, now, work)
    assert all(tenant == "acme" and subject == str(CONTRACT) for _, tenant, subject in work.published)
    return work.commit()


def licenses(n: int, status: events.LicenseStatus = "preparing") -> list[events.LicenseSummary]:
    return [events.LicenseSummary(license_id=uuid.uuid4(), usage=Usage.VIRTUAL_SERVER, license_type=LicenseType.PER_SERVER,
                                  status=status) for _ in range(n)]


def accepted(lines: list[events.LicenseSummary]) -> events.NewAccepted:
    return events.NewAccepted(application_id=APPLICATION, contract_id=CONTRACT, product="arcserve-udp-10", licenses=lines)


def opened(sealed: events.LicenseKeys) -> dict[UUID, str]:
    return {k.license_id: KEYRING.open(k.sealed_key, context=str(k.license_id)) for k in sealed.keys}


async def test_an_acceptance_asks_for_its_keys_and_is_done_with_the_message():
    issuer, revocations, keys = harness()
    lines = licenses(2)

    assert await issuer.send(accepted(lines), tenant="acme") == "handled"

    [request] = keys.requests.values()
    assert (request.application_id, request.tenant_id, request.licenses) == (APPLICATION, "acme", tuple(lines))
    assert request.simulate_at == T0 + NEW_DELAY and keys.rows == {} and issuer.published == []


async def test_with_no_delay_the_simulator_answers_in_the_unit_of_work_that_asks():
    issuer, revocations, keys = harness(new_delay=timedelta(0))
    lines = licenses(2)

    assert await issuer.send(accepted(lines)) == "handled"

    issued, sealed = issuer.published  # with the acceptance's message, no pass of the job
    assert isinstance(issued, events.LicenseIssued) and isinstance(sealed, events.LicenseKeys)
    assert set(opened(sealed)) == {lic.license_id for lic in lines} == set(keys.rows)
    assert await simulate(issuer, keys, T0 + NEW_DELAY) == []  # nothing left for it


async def test_the_result_stores_one_sealed_key_per_license_and_announces_them_once_due():
    issuer, revocations, keys = harness()
    lines = licenses(2)
    await issuer.send(accepted(lines))

    assert await simulate(issuer, keys, T0 + NEW_DELAY - timedelta(seconds=1)) == []  # not yet
    issued, sealed = await simulate(issuer, keys, T0 + NEW_DELAY)

    assert set(keys.rows) == {lic.license_id for lic in lines}
    stored = {i: KEYRING.open(row.sealed_key, context=str(i)) for i, row in keys.rows.items()}
    assert all(len(key) == 29 for key in stored.values()) and len(set(stored.values())) == 2
    assert all(row.contract_id == CONTRACT and row.issued_at == T0 + NEW_DELAY for row in keys.rows.values())
    assert isinstance(issued, events.LicenseIssued) and isinstance(sealed, events.LicenseKeys)
    assert [lic.license_id for lic in issued.licenses] == [lic.license_id for lic in lines]
    assert {lic.status for lic in issued.licenses} == {"active"}
    assert opened(sealed) == stored  # the keys of the event are the stored ones, sealed
    assert keys.fulfilled_at == {("acme", APPLICATION): T0 + NEW_DELAY}
    assert await simulate(issuer, keys, T0 + 2 * NEW_DELAY) == []  # answered once


async def test_an_addition_is_answered_after_the_change_delay():
    issuer, revocations, keys = harness()
    addition = events.AdditionAccepted(application_id=APPLICATION, contract_id=CONTRACT, product="arcserve-udp-10",
                                       licenses=licenses(1))
    await issuer.send(addition)

    assert len(await simulate(issuer, keys, T0 + CHANGE_DELAY)) == 2


async def test_a_second_acceptance_asks_once_and_once_answered_re_announces_the_stored_keys():
    issuer, revocations, keys = harness()
    lines = licenses(2)
    await issuer.send(accepted(lines), id="accepted-1")
    await issuer.send(accepted(lines), id="accepted-2")  # while it is awaited: asked for once
    assert len(keys.requests) == 1 and issuer.published == []
    first = opened((await simulate(issuer, keys, T0 + NEW_DELAY))[1])  # type: ignore[arg-type]

    await issuer.send(accepted(lines), id="accepted-3")  # once answered: announced again, the same keys

    issued, again = issuer.published
    assert isinstance(issued, events.LicenseIssued) and isinstance(again, events.LicenseKeys)
    assert opened(again) == first


async def test_another_tenants_application_of_the_same_id_is_another_request():
    issuer, revocations, keys = harness()
    await issuer.send(accepted(licenses(1)), tenant="acme")
    await issuer.send(accepted(licenses(1)), tenant="globex")  # a direct publisher chose the same id

    assert len(await simulate_all(issuer, keys, T0 + NEW_DELAY)) == 4  # both answered, two events each
    assert set(keys.fulfilled_at) == {("acme", APPLICATION), ("globex", APPLICATION)}


async def test_a_second_result_for_a_license_changes_nothing():
    issuer, revocations, keys = harness()
    lines = licenses(1)
    await issuer.send(accepted(lines))
    [request] = keys.requests.values()
    first = await fulfil(keys, KEYRING, request, {lines[0].license_id: "FIRST-KEY"}, T0)

    second = await fulfil(keys, KEYRING, request, {lines[0].license_id: "OTHER-KEY"}, T0 + NEW_DELAY)

    assert opened(second[1]) == opened(first[1]) == {lines[0].license_id: "FIRST-KEY"}


def cancellation(lines: list[events.LicenseSummary], *, order_id: str | None = None) -> events.CancellationAccepted:
    return events.CancellationAccepted(
        application_id=uuid.uuid4(), contract_id=CONTRACT, product="arcserve-udp-10", licenses=lines,
        scope="all" if order_id else "partial", cancels_contract=order_id is not None, arcserve_order_id=order_id)


async def take_due(issuer: Harness[Deps], now: datetime) -> list[BaseModel]:
    """The revocation job's pass at `now`: what it announced."""
    work = Recorded()
    await issuer.consumer.deps.revoker.take_due(work, now)
    return work.commit()


async def test_a_cancellation_revokes_the_keys_at_once_and_asks_arcserve_to_revoke_them():
    issuer, revocations, keys = harness()
    lines = licenses(2)
    await issuer.send(accepted(lines))
    await simulate(issuer, keys, T0 + NEW_DELAY)
    cancelled = cancellation(lines[:1])

    assert await issuer.send(cancelled) == "handled"

    assert keys.revoked_at == {lines[0].license_id: T0}  # the harness's clock
    revoked = issuer.published[-1]
    assert isinstance(revoked, events.LicenseRevoked)
    assert [(lic.license_id, lic.status) for lic in revoked.licenses] == [(lines[0].license_id, "cancelled")]
    [asked] = revocations.rows.values()
    assert (asked.application_id, asked.license_ids, asked.arcserve_order_id) == (
        cancelled.application_id, (lines[0].license_id,), None)
    # Arcserve, simulated, confirms after its delay for changes, and announces nothing.
    assert await take_due(issuer, T0 + CHANGE_DELAY - timedelta(seconds=1)) == [] and revocations.confirmed_at == {}
    assert await take_due(issuer, T0 + CHANGE_DELAY) == []
    assert revocations.confirmed_at == {("acme", cancelled.application_id): T0 + CHANGE_DELAY}


async def test_a_cancellation_of_licenses_never_issued_asks_arcserve_for_nothing():
    issuer, revocations, keys = harness()
    lines = licenses(1)

    assert await issuer.send(cancellation(lines)) == "handled"

    assert revocations.rows == {}


async def test_outside_simulator_mode_a_revocation_is_announced_again_until_it_is_confirmed():
    issuer, revocations, keys = harness("external")
    lines = licenses(2)
    await issuer.send(accepted(lines))
    [request] = keys.requests.values()
    await settle(keys, KEYRING, request, delivered(lines, [KEY_A, KEY_B]), T0)
    cancelled = cancellation(lines, order_id="ARC-1")
    await issuer.send(cancelled)

    [first] = await take_due(issuer, T0)
    assert first == RevocationRequested(
        application_id=cancelled.application_id, tenant="acme", contract_id=CONTRACT, requested_at=T0,
        licenses=[RevokedLicense(license_id=lines[0].license_id, key_ends_with=KEY_A[-5:]),
                  RevokedLicense(license_id=lines[1].license_id, key_ends_with=KEY_B[-5:])],
        arcserve_order_id="ARC-1", attempt=1)
    assert await take_due(issuer, T0 + RETRY - timedelta(seconds=1)) == []
    [second] = await take_due(issuer, T0 + RETRY)
    assert await take_due(issuer, T0 + RETRY + 2 * RETRY - timedelta(seconds=1)) == []  # twice as long now
    [third] = await take_due(issuer, T0 + 3 * RETRY)
    assert (second.attempt, third.attempt) == (2, 3)  # type: ignore[attr-defined]

    results = allowed_results(issuer)
    confirmation = RevocationConfirmed(application_id=cancelled.application_id)
    assert await results.send(confirmation, publisher="orders") == "handled"
    assert await results.send(confirmation, publisher="orders") == "handled"  # again: nothing changes
    assert revocations.confirmed_at == {("acme", cancelled.application_id): T0}
    assert await take_due(issuer, T0 + 100 * RETRY) == []


async def test_a_confirmation_of_no_revocation_or_from_another_user_changes_nothing():
    issuer, revocations, keys = harness("external")
    results = allowed_results(issuer)

    assert await results.send(RevocationConfirmed(application_id=uuid.uuid4()), publisher="orders") == "dead_lettered"
    assert await results.send(RevocationConfirmed(application_id=uuid.uuid4()), publisher="billing") == "dead_lettered"

    first, second = results.dead_letters
    assert first.reason.startswith("unknown_task: no revocation for application")
    assert second.reason.startswith("unauthorized_publisher")
    assert revocations.confirmed_at == {}


def allowed_results(issuer: Harness[Deps]) -> Harness[Deps]:
    """The results' queue, where the broker user `orders` is allowed for fulfilment."""
    async def may_fulfil(_db: object, user: str) -> bool:
        return user == "orders"

    results = dataclasses.replace(RESULTS, filters=(Fulfillers(may_fulfil),))
    return Harness(results, issuer.consumer.deps, service="license-issuer")


async def test_an_acceptance_not_from_the_status_service_asks_for_nothing():
    issuer, revocations, keys = harness()

    assert await issuer.send(accepted(licenses(1)), publisher="arcserve-intake") == "dead_lettered"

    [letter] = issuer.dead_letters
    assert letter.reason == "unauthorized_publisher: arcserve-intake does not publish arcserve.application.accepted.new"
    assert keys.requests == {} and keys.rows == {} and issuer.published == []


# ---- fulfilment by the back office or another system (ARCSERVE_FULFILMENT) -----------------

KEY_A, KEY_B = "7K2QD-M9XHT-0WB4R-PZ6NC-E3VJA", "QX4RT-H8M2D-W3NCK-9PZ5V-BJ0E7"


def delivered(lines: list[events.LicenseSummary], keys: list[str], order_id: str | None = "ARC-1") -> FulfilmentFulfilled:
    return FulfilmentFulfilled(application_id=APPLICATION, arcserve_order_id=order_id, license_keys=[
        DeliveredKey(license_id=lic.license_id, license_key=key) for lic, key in zip(lines, keys, strict=True)])


async def test_outside_simulator_mode_an_acceptance_announces_its_task_and_nothing_is_simulated():
    issuer, revocations, keys = harness("external")
    lines = licenses(2)

    assert await issuer.send(accepted(lines)) == "handled"

    [task] = issuer.published
    assert isinstance(task, FulfilmentRequested)
    assert (task.application_id, task.tenant, task.contract_id, task.kind) == (APPLICATION, "acme", CONTRACT, Kind.NEW)
    assert task.needs.arcserve_order_id is True
    assert [lic.license_id for lic in task.needs.licenses] == [lic.license_id for lic in lines]
    assert await simulate(issuer, keys, T0 + 10 * NEW_DELAY) == []  # nobody simulates it


async def test_a_result_that_fits_completes_the_task_and_passes_its_order_id_on():
    issuer, revocations, keys = harness("back-office")
    lines = licenses(2)
    await issuer.send(accepted(lines))
    [request] = keys.requests.values()

    issued, sealed, order = await settle(keys, KEYRING, request, delivered(lines, [KEY_A.lower(), KEY_B]), T0)

    assert isinstance(issued, events.LicenseIssued) and isinstance(sealed, events.LicenseKeys)
    assert opened(sealed) == {lines[0].license_id: KEY_A, lines[1].license_id: KEY_B}  # as typed, in normal form
    assert order == events.OrderIdObtained(application_id=APPLICATION, contract_id=CONTRACT, arcserve_order_id="ARC-1")
    assert keys.fulfilled_at == {("acme", APPLICATION): T0}


async def test_a_result_that_does_not_fit_its_task_changes_nothing_and_names_each_field():
    issuer, revocations, keys = harness("external")
    lines = licenses(2)
    await issuer.send(accepted(lines))
    [request] = keys.requests.values()
    stranger = events.LicenseSummary(license_id=uuid.uuid4(), usage=Usage.VIRTUAL_SERVER,
                                     license_type=LicenseType.PER_SERVER, status="preparing")

    with pytest.raises(InvalidResult) as refused:
        await settle(keys, KEYRING, request, delivered([lines[0], stranger], [KEY_A, KEY_B], order_id=None), T0)

    assert {e["field"] for e in refused.value.errors} == {"arcserve_order_id", "license_keys.1.license_id",
                                                          "license_keys"}
    assert KEY_A not in str(refused.value) and keys.rows == {} and keys.fulfilled_at == {}


async def test_a_key_delivered_before_is_refused_for_another_license():
    issuer, revocations, keys = harness("external")
    first, second = licenses(1), licenses(1)
    await issuer.send(accepted(first))
    [request] = keys.requests.values()
    await settle(keys, KEYRING, request, delivered(first, [KEY_A]), T0)
    addition = events.AdditionAccepted(application_id=uuid.uuid4(), contract_id=CONTRACT, product="arcserve-udp-10",
                                       licenses=second)
    await issuer.send(addition)
    later = keys.requests[("acme", addition.application_id)]

    with pytest.raises(InvalidResult) as refused:
        await settle(keys, KEYRING, later, FulfilmentFulfilled(application_id=addition.application_id, license_keys=[
            DeliveredKey(license_id=second[0].license_id, license_key=KEY_A.lower())]), T0)

    assert refused.value.errors == [{"field": "license_keys.0.license_key", "problem": "already used for another license"}]


async def test_a_refusal_closes_the_task_and_refuses_the_application():
    issuer, revocations, keys = harness("external")
    lines = licenses(1)
    await issuer.send(accepted(lines))
    [request] = keys.requests.values()

    [refused] = await settle(keys, KEYRING, request, FulfilmentRejected(application_id=APPLICATION, reason="在庫なし"), T0)

    assert refused == events.LicenseRefused(application_id=APPLICATION, contract_id=CONTRACT, kind=Kind.NEW,
                                            licenses=lines, reason="在庫なし")
    assert await keys.task("acme", APPLICATION) == (request, "refused")


async def test_results_count_only_from_users_allowed_for_fulfilment():
    allowed = {"orders"}

    async def may_fulfil(_db: object, user: str) -> bool:
        return user in allowed

    for publisher, passes in (("orders", True), ("billing", False), (None, False)):
        delivery: Delivery[None] = Delivery(CloudEvent(specversion="1.0", id="r-1", source="urn:x", type="arcserve.fulfilment.rejected",
                                                       tenantid="acme", data={}), publisher, None)
        delivery.within(cast(Connection, NoDatabase()))
        if passes:
            await Fulfillers(may_fulfil)(delivery)
            assert delivery.key == "acme/r-1"  # duplicates are told apart by tenant too
        else:
            with pytest.raises(PoisonMessage, match="^unauthorized_publisher"):
                await Fulfillers(may_fulfil)(delivery)
