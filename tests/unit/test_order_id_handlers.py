"""The order-ID service's handlers on the in-memory harness (shared/messaging/testing.py),
and its fulfilment (services/order_id/fulfilment.py) on in-memory tables: one order ID per
contract (R1), asked for and obtained later, cancelled with the contract's last key (R9; at
Arcserve that is part of the license issuer's revocation).
tests/integration/test_new_and_cancel.py and test_fulfilment.py prove the same on the real ones."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from uuid import UUID

from services.order_id.fulfilment import Simulator
from services.order_id.handlers import QUEUE, Deps
from services.order_id.orders import Request
from shared.config import FulfilmentSource
from shared.contracts import events
from shared.contracts.applications import LicenseType, Usage
from shared.messaging.testing import T0, Harness
from tests.support.recorded import Recorded

CONTRACT = uuid.uuid4()
LICENSE = events.LicenseSummary(license_id=uuid.uuid4(), usage=Usage.VIRTUAL_SERVER,
                                license_type=LicenseType.PER_SERVER, status="active")


class MemoryOrders:
    """`order_id.orders` and `order_id.requests` in memory: one row per contract, the first
    value stays."""

    def __init__(self) -> None:
        self.rows: dict[UUID, tuple[UUID, str, datetime]] = {}
        self.cancelled_at: dict[UUID, datetime] = {}
        self.requests: dict[UUID, Request] = {}
        self.fulfilled_at: dict[UUID, datetime] = {}

    async def request(self, request: Request, answered_at: datetime | None = None) -> None:
        self.requests.setdefault(request.contract_id, request)
        if answered_at is not None:
            self.fulfilled_at.setdefault(request.contract_id, answered_at)

    async def to_simulate(self, now: datetime, limit: int) -> list[Request]:
        due = [r for r in self.requests.values()
               if r.contract_id not in self.fulfilled_at and r.simulate_at is not None and r.simulate_at <= now]
        return sorted(due, key=lambda r: r.simulate_at or now)[:limit]

    async def next_simulation(self) -> datetime | None:
        return min((r.simulate_at for r in self.requests.values()
                    if r.contract_id not in self.fulfilled_at and r.simulate_at is not None), default=None)

    async def fulfilled(self, contract_id: UUID, at: datetime) -> None:
        self.fulfilled_at.setdefault(contract_id, at)

    async def value_of(self, contract_id: UUID) -> str | None:
        row = self.rows.get(contract_id)
        return row[1] if row else None

    async def keep(self, contract_id: UUID, application_id: UUID, value: str, at: datetime) -> str:
        return self.rows.setdefault(contract_id, (application_id, value, at))[1]

    async def cancel(self, contract_id: UUID, at: datetime) -> None:
        if contract_id in self.rows:
            self.cancelled_at.setdefault(contract_id, at)


DELAY = timedelta(minutes=30)


def harness(now: datetime = T0, source: FulfilmentSource = "simulator", *,
            delay: timedelta = DELAY) -> tuple[Harness[Deps], MemoryOrders]:
    orders = MemoryOrders()
    deps = Deps(Simulator(delay.total_seconds()), source, orders=lambda _db: orders)
    return Harness(QUEUE, deps, service="order-id", clock=lambda: now), orders


async def simulate(service: Harness[Deps], orders: MemoryOrders, now: datetime) -> list[events.OrderIdIssued]:
    """The simulator's pass at `now`: what it announced."""
    work = Recorded()
    await service.consumer.deps.simulator.answer_due(orders, now, work)
    assert all(tenant == "acme" and subject == str(CONTRACT) for _, tenant, subject in work.published)
    return work.commit()


def accepted(application_id: UUID | None = None) -> events.NewAccepted:
    return events.NewAccepted(application_id=application_id or uuid.uuid4(), contract_id=CONTRACT,
                              product="arcserve-udp-10", licenses=[LICENSE])


def cancellation(*, whole: bool, order_id: str | None = None) -> events.CancellationAccepted:
    return events.CancellationAccepted(application_id=uuid.uuid4(), contract_id=CONTRACT, product="arcserve-udp-10",
                                       licenses=[LICENSE], scope="all" if whole else "partial", cancels_contract=whole,
                                       arcserve_order_id=order_id)


async def test_a_new_contract_asks_for_its_order_id_and_is_done_with_the_message():
    service, orders = harness()
    new = accepted()

    assert await service.send(new, tenant="acme") == "handled"

    [request] = orders.requests.values()
    assert (request.contract_id, request.application_id, request.tenant_id) == (CONTRACT, new.application_id, "acme")
    assert request.simulate_at == T0 + DELAY and orders.rows == {} and service.published == []


async def test_with_no_delay_the_simulator_answers_in_the_unit_of_work_that_asks():
    service, orders = harness(delay=timedelta(0))
    new = accepted()

    assert await service.send(new) == "handled"

    [announced] = service.published  # with the acceptance's message, no pass of the job
    [(application, value, _)] = orders.rows.values()
    assert announced == events.OrderIdIssued(application_id=new.application_id, contract_id=CONTRACT,
                                             arcserve_order_id=value) and application == new.application_id
    assert await simulate(service, orders, T0 + DELAY) == []  # nothing left for it
    [request] = orders.requests.values()  # recorded, and recorded answered
    assert request.application_id == new.application_id and orders.fulfilled_at == {CONTRACT: T0}


async def test_the_result_stores_and_announces_the_order_id_once_it_is_due():
    service, orders = harness()
    new = accepted()
    await service.send(new)

    assert await simulate(service, orders, T0 + DELAY - timedelta(seconds=1)) == []  # not yet
    [announced] = await simulate(service, orders, T0 + DELAY)

    [(application, value, issued_at)] = orders.rows.values()
    assert (application, issued_at) == (new.application_id, T0 + DELAY) and value.startswith("ARC-")
    assert (announced.contract_id, announced.arcserve_order_id) == (CONTRACT, value)
    assert orders.fulfilled_at == {CONTRACT: T0 + DELAY}
    assert await simulate(service, orders, T0 + 2 * DELAY) == []  # answered once


async def test_a_second_acceptance_asks_once_and_once_obtained_re_announces_the_stored_order_id():
    service, orders = harness()
    await service.send(accepted(), id="accepted-1")
    await service.send(accepted(), id="accepted-2")  # while it is awaited: asked for once
    assert len(orders.requests) == 1 and service.published == []
    [first] = await simulate(service, orders, T0 + DELAY)

    await service.send(accepted(), id="accepted-3")  # once obtained: announced again, the same

    [again] = service.published
    assert isinstance(again, events.OrderIdIssued) and again.arcserve_order_id == first.arcserve_order_id


async def test_cancelling_the_whole_contract_cancels_its_order_id_at_once():
    service, orders = harness()
    await service.send(accepted())
    [issued] = await simulate(service, orders, T0 + DELAY)
    later = T0 + timedelta(days=40)
    service.consumer.clock = lambda: later

    assert await service.send(cancellation(whole=True)) == "handled"

    assert orders.cancelled_at == {CONTRACT: later}
    cancelled = service.published[-1]
    assert isinstance(cancelled, events.OrderIdCancelled) and cancelled.arcserve_order_id == issued.arcserve_order_id


async def test_a_partial_cancellation_keeps_the_order_id():
    service, orders = harness()
    await service.send(accepted())
    await simulate(service, orders, T0 + DELAY)

    assert await service.send(cancellation(whole=False)) == "handled"

    assert orders.cancelled_at == {} and service.published == []


async def test_an_order_id_this_service_never_stored_is_cancelled_as_the_acceptance_names_it():
    service, orders = harness()  # e.g. issued before this database was restored

    await service.send(cancellation(whole=True, order_id="ARC-20250101-LEGACY"))

    [cancelled] = service.published
    assert isinstance(cancelled, events.OrderIdCancelled) and cancelled.arcserve_order_id == "ARC-20250101-LEGACY"


async def test_outside_simulator_mode_the_order_id_comes_with_the_task_s_result():
    service, orders = harness(source="back-office")
    new = accepted()
    await service.send(new)
    assert orders.requests == {} and service.published == []  # the license issuer's task asks for it

    obtained = events.OrderIdObtained(application_id=new.application_id, contract_id=CONTRACT, arcserve_order_id="ARC-9")
    assert await service.send(obtained, publisher="arcserve-license-issuer") == "handled"
    again = obtained.model_copy(update={"arcserve_order_id": "ARC-OTHER"})
    await service.send(again, id="obtained-2", publisher="arcserve-license-issuer")

    assert [m.arcserve_order_id for m in service.published if isinstance(m, events.OrderIdIssued)] == ["ARC-9", "ARC-9"]
    assert await service.send(obtained, id="forged", publisher="arcserve-status") == "dead_lettered"
