"""The license issuer's handlers on the in-memory harness (shared/messaging/testing.py): what
they store, what they publish, and what reaches the issuance backend, with no broker and no
database. tests/integration/test_license_keys.py proves the same path on the real ones."""
from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from services.license_issuer.handlers import QUEUE, Deps
from services.license_issuer.keys import IssuedKey
from shared.contracts import events
from shared.contracts.applications import LicenseType, Usage
from shared.messaging.testing import T0, Harness
from shared.sealing import Keyring

KEYRING = Keyring.parse(Keyring.new_key_text())
CONTRACT, APPLICATION = uuid.uuid4(), uuid.uuid4()


class Backend:
    """The issuance backend: numbered keys, and what it was asked."""

    def __init__(self) -> None:
        self.issued = 0
        self.revoked: list[str] = []
        self.outage: list[Exception] = []  # raised by the next calls, one each

    async def issue_license_keys(self, application_id: UUID, license_ids: Sequence[UUID], *, new: bool) -> dict[UUID, str]:
        if self.outage:
            raise self.outage.pop(0)
        keys = {}
        for license_id in license_ids:
            self.issued += 1
            keys[license_id] = f"KEY-{self.issued:05d}"
        return keys

    async def revoke_license_keys(self, application_id: UUID, license_keys: Sequence[str]) -> None:
        self.revoked += license_keys

    async def issue_order_id(self, contract_id: UUID) -> str:
        raise AssertionError("the license issuer never asks for an order ID")

    async def cancel_order_id(self, order_id: str) -> None:
        raise AssertionError("the license issuer never cancels an order ID")


class MemoryKeys:
    """`license_issuer.keys` in memory: the first key stored for a license stays."""

    def __init__(self) -> None:
        self.rows: dict[UUID, IssuedKey] = {}
        self.revoked_at: dict[UUID, datetime] = {}

    async def keep(self, issued: Sequence[IssuedKey]) -> dict[UUID, str]:
        for key in issued:
            self.rows.setdefault(key.license_id, key)
        return {k.license_id: self.rows[k.license_id].sealed_key for k in issued}

    async def unrevoked(self, license_ids: Sequence[UUID]) -> dict[UUID, str]:
        return {i: self.rows[i].sealed_key for i in license_ids if i in self.rows and i not in self.revoked_at}

    async def revoke(self, license_ids: Sequence[UUID], at: datetime) -> None:
        for i in license_ids:
            if i in self.rows:
                self.revoked_at.setdefault(i, at)


def harness() -> tuple[Harness[Deps], Backend, MemoryKeys]:
    backend, keys = Backend(), MemoryKeys()
    return Harness(QUEUE, Deps(backend, KEYRING, keys=lambda _db: keys), service="license-issuer"), backend, keys


def licenses(n: int, status: events.LicenseStatus = "preparing") -> list[events.LicenseSummary]:
    return [events.LicenseSummary(license_id=uuid.uuid4(), usage=Usage.VIRTUAL_SERVER, license_type=LicenseType.PER_SERVER,
                                  status=status) for _ in range(n)]


def accepted(lines: list[events.LicenseSummary]) -> events.NewAccepted:
    return events.NewAccepted(application_id=APPLICATION, contract_id=CONTRACT, product="arcserve-udp-10", licenses=lines)


def opened(sealed: events.LicenseKeys) -> dict[UUID, str]:
    return {k.license_id: KEYRING.open(k.sealed_key, context=str(k.license_id)) for k in sealed.keys}


async def test_an_acceptance_stores_one_sealed_key_per_license_and_announces_them():
    issuer, backend, keys = harness()
    lines = licenses(2)

    assert await issuer.send(accepted(lines)) == "handled"

    assert set(keys.rows) == {lic.license_id for lic in lines}
    stored = {i: KEYRING.open(row.sealed_key, context=str(i)) for i, row in keys.rows.items()}
    assert sorted(stored.values()) == ["KEY-00001", "KEY-00002"]
    assert all(row.contract_id == CONTRACT and row.issued_at == T0 for row in keys.rows.values())
    issued, sealed = issuer.published
    assert isinstance(issued, events.LicenseIssued) and isinstance(sealed, events.LicenseKeys)
    assert [lic.license_id for lic in issued.licenses] == [lic.license_id for lic in lines]
    assert {lic.status for lic in issued.licenses} == {"active"}
    assert opened(sealed) == stored  # the keys of the event are the stored ones, sealed
    assert all(e.tenantid == "acme" for e in issuer.published_events)


async def test_a_redelivery_asks_the_vendor_nothing_and_announces_nothing_twice():
    issuer, backend, keys = harness()
    acceptance = accepted(licenses(1))
    await issuer.send(acceptance, id="accepted-1")

    assert await issuer.send(acceptance, id="accepted-1") == "handled"

    assert backend.issued == 1 and len(issuer.published) == 2


async def test_a_second_acceptance_of_the_same_licenses_re_announces_the_stored_keys_never_new_ones():
    issuer, backend, keys = harness()
    lines = licenses(2)
    await issuer.send(accepted(lines), id="accepted-1")
    first = opened(issuer.published[1])  # type: ignore[arg-type]

    await issuer.send(accepted(lines), id="accepted-2")  # another message about the same acceptance

    assert backend.issued == 4  # the vendor handed out two more ...
    again = issuer.published[3]
    assert isinstance(again, events.LicenseKeys) and opened(again) == first  # ... and they were not kept


async def test_a_cancellation_revokes_the_keys_at_the_vendor_and_in_the_table():
    issuer, backend, keys = harness()
    lines = licenses(2)
    await issuer.send(accepted(lines))
    given = {i: KEYRING.open(row.sealed_key, context=str(i)) for i, row in keys.rows.items()}
    cancelled = events.CancellationAccepted(application_id=uuid.uuid4(), contract_id=CONTRACT, product="arcserve-udp-10",
                                            licenses=lines[:1], scope="partial", cancels_contract=False)

    assert await issuer.send(cancelled) == "handled"

    assert backend.revoked == [given[lines[0].license_id]]
    assert keys.revoked_at == {lines[0].license_id: T0}
    revoked = issuer.published[-1]
    assert isinstance(revoked, events.LicenseRevoked)
    assert [(lic.license_id, lic.status) for lic in revoked.licenses] == [(lines[0].license_id, "cancelled")]


async def test_an_acceptance_not_from_the_status_service_reaches_neither_the_vendor_nor_the_table():
    issuer, backend, keys = harness()

    assert await issuer.send(accepted(licenses(1)), publisher="arcserve-intake") == "dead_lettered"

    [letter] = issuer.dead_letters
    assert letter.reason == "unauthorized_publisher: arcserve-intake does not publish arcserve.application.accepted.new"
    assert backend.issued == 0 and keys.rows == {} and issuer.published == []


async def test_a_vendor_outage_is_waited_out_and_a_vendor_error_retried_later():
    issuer, backend, keys = harness()
    backend.outage = [ConnectionResetError("vendor away"), ConnectionResetError("still away")]
    assert await issuer.send(accepted(licenses(1))) == "handled"  # retried in place
    assert len(keys.rows) == 1

    backend.outage = [RuntimeError("vendor said 500")]
    assert await issuer.send(accepted(licenses(1))) == "retry_scheduled"
    [retry] = issuer.retries
    assert retry.reason.startswith("handler_error: RuntimeError") and retry.attempt == 1
    assert len(keys.rows) == 1 and len(issuer.published) == 2  # nothing of the failed one
