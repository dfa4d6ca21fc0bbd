"""The order-ID service's handlers on the in-memory harness (shared/messaging/testing.py):
one order ID per contract (R1), cancelled with the contract's last key (R9), with no broker
and no database. tests/integration/test_new_and_cancel.py proves the same on the real ones."""
from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

from services.order_id.handlers import QUEUE, Deps
from shared.contracts import events
from shared.contracts.applications import LicenseType, Usage
from shared.messaging.testing import T0, Harness

CONTRACT = uuid.uuid4()
LICENSE = events.LicenseSummary(license_id=uuid.uuid4(), usage=Usage.VIRTUAL_SERVER,
                                license_type=LicenseType.PER_SERVER, status="active")


class Backend:
    def __init__(self) -> None:
        self.issued: list[str] = []
        self.cancelled: list[str] = []

    async def issue_order_id(self, contract_id: UUID) -> str:
        self.issued.append(f"ARC-20260601-{len(self.issued) + 1:05d}")
        return self.issued[-1]

    async def cancel_order_id(self, order_id: str) -> None:
        self.cancelled.append(order_id)

    async def issue_license_keys(self, application_id: UUID, license_ids: Sequence[UUID], *, new: bool) -> dict[UUID, str]:
        raise AssertionError("the order-ID service never issues keys")

    async def revoke_license_keys(self, application_id: UUID, license_keys: Sequence[str]) -> None:
        raise AssertionError("the order-ID service never revokes keys")


class MemoryOrders:
    """`order_id.orders` in memory: one row per contract, the first value stays."""

    def __init__(self) -> None:
        self.rows: dict[UUID, tuple[UUID, str, datetime]] = {}
        self.cancelled_at: dict[UUID, datetime] = {}

    async def value_of(self, contract_id: UUID) -> str | None:
        row = self.rows.get(contract_id)
        return row[1] if row else None

    async def keep(self, contract_id: UUID, application_id: UUID, value: str, at: datetime) -> str:
        return self.rows.setdefault(contract_id, (application_id, value, at))[1]

    async def cancel(self, contract_id: UUID, at: datetime) -> None:
        if contract_id in self.rows:
            self.cancelled_at.setdefault(contract_id, at)


def harness(now: datetime = T0) -> tuple[Harness[Deps], Backend, MemoryOrders]:
    backend, orders = Backend(), MemoryOrders()
    return Harness(QUEUE, Deps(backend, orders=lambda _db: orders), service="order-id", clock=lambda: now), backend, orders


def accepted(application_id: UUID | None = None) -> events.NewAccepted:
    return events.NewAccepted(application_id=application_id or uuid.uuid4(), contract_id=CONTRACT,
                              product="arcserve-udp-10", licenses=[LICENSE])


def cancellation(*, whole: bool, order_id: str | None = None) -> events.CancellationAccepted:
    return events.CancellationAccepted(application_id=uuid.uuid4(), contract_id=CONTRACT, product="arcserve-udp-10",
                                       licenses=[LICENSE], scope="all" if whole else "partial", cancels_contract=whole,
                                       arcserve_order_id=order_id)


async def test_a_new_contract_gets_one_order_id_stored_and_announced():
    service, backend, orders = harness()
    new = accepted()

    assert await service.send(new) == "handled"

    assert orders.rows == {CONTRACT: (new.application_id, "ARC-20260601-00001", T0)}
    [announced] = service.published
    assert isinstance(announced, events.OrderIdIssued)
    assert (announced.contract_id, announced.arcserve_order_id) == (CONTRACT, "ARC-20260601-00001")


async def test_a_second_acceptance_of_the_contract_re_announces_its_order_id_without_asking_the_vendor():
    service, backend, orders = harness()
    await service.send(accepted(), id="accepted-1")

    await service.send(accepted(), id="accepted-2")

    assert backend.issued == ["ARC-20260601-00001"]
    assert [m.arcserve_order_id for m in service.published] == ["ARC-20260601-00001"] * 2  # type: ignore[attr-defined]


async def test_cancelling_the_whole_contract_cancels_its_order_id_at_the_vendor_and_in_the_table():
    service, backend, orders = harness()
    await service.send(accepted())
    later = T0 + timedelta(days=40)
    service.consumer.clock = lambda: later

    assert await service.send(cancellation(whole=True)) == "handled"

    assert backend.cancelled == ["ARC-20260601-00001"]
    assert orders.cancelled_at == {CONTRACT: later}
    cancelled = service.published[-1]
    assert isinstance(cancelled, events.OrderIdCancelled) and cancelled.arcserve_order_id == "ARC-20260601-00001"


async def test_a_partial_cancellation_keeps_the_order_id():
    service, backend, orders = harness()
    await service.send(accepted())

    assert await service.send(cancellation(whole=False)) == "handled"

    assert backend.cancelled == [] and orders.cancelled_at == {} and len(service.published) == 1


async def test_an_order_id_this_service_never_stored_is_cancelled_as_the_acceptance_names_it():
    service, backend, orders = harness()  # e.g. issued before this database was restored

    await service.send(cancellation(whole=True, order_id="ARC-20250101-LEGACY"))

    assert backend.cancelled == ["ARC-20250101-LEGACY"]
    [cancelled] = service.published
    assert isinstance(cancelled, events.OrderIdCancelled) and cancelled.arcserve_order_id == "ARC-20250101-LEGACY"
