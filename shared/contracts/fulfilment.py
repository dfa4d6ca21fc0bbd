"""The `data` of the messages on `arcserve.fulfilment` (docs/architecture.md, "Fulfilment"):
a fulfilment task out (`fulfilment.requested`), its result in (`fulfilment.fulfilled` or
`fulfilment.rejected`). A task is one accepted application: the Arcserve order ID a new
contract needs, and one key per license. A cancellation is a revocation at Arcserve
(`fulfilment.revocation_requested`, announced again until `fulfilment.revocation_confirmed`). The back-office console takes the same bodies over
HTTP (services/backoffice), so what is checked here is checked for both.

Keys and order IDs are typed in from what Arcserve delivered, so their shapes are checked
as people write them: case and the spaces around them do not matter, and what is stored is
the normal form (upper case). No error message ever repeats a key."""
from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, Field, field_validator

from shared.contracts import limits
from shared.contracts.applications import MAX_KEYS_PER_APPLICATION, Kind, LicenseType, Usage
from shared.contracts.message import Message

# Arcserve's keys: five groups of five letters or digits, e.g. `7K2QD-M9XHT-0WB4R-PZ6NC-E3VJA`.
LICENSE_KEY = re.compile(r"[0-9A-Z]{5}(?:-[0-9A-Z]{5}){4}")
# Arcserve's order IDs: letters, digits and hyphens, e.g. `ARC-20261128-7K2QD-M9XHT`.
ORDER_ID = re.compile(r"[0-9A-Z][0-9A-Z-]{3,63}")
MAX_REASON = 500  # what the tenant reads of a refusal


def license_key(raw: str) -> str:
    """The normal form of a typed-in key; ValueError (not naming it) when it has not the shape."""
    key = raw.strip().upper()
    if not LICENSE_KEY.fullmatch(key):
        raise ValueError("not a license key: five groups of five letters or digits, joined by hyphens")
    return key


def order_id(raw: str) -> str:
    value = raw.strip().upper()
    if not ORDER_ID.fullmatch(value):
        raise ValueError("not an Arcserve order ID: 4 to 64 letters, digits and hyphens")
    return value


class NeededLicense(Message):
    license_id: UUID
    usage: Usage
    license_type: LicenseType
    vm_count: int | None = None


class Needs(Message):
    arcserve_order_id: bool  # a new contract's order ID
    licenses: list[NeededLicense]  # one key each


class FulfilmentRequested(Message):
    """`fulfilment.requested`: an accepted application waits for Arcserve. Its result is
    expected by `due_at` (R12's expected completion)."""

    application_id: UUID
    tenant: str
    contract_id: UUID
    kind: Kind
    submitted_at: datetime
    due_at: datetime | None
    needs: Needs


class DeliveredKey(Message):
    license_id: UUID
    license_key: Annotated[str, Field(max_length=64), AfterValidator(license_key)]


class Fulfilment(Message):
    """What Arcserve delivered for a task: its order ID where one is needed, a key per license."""

    arcserve_order_id: Annotated[str, Field(max_length=64), AfterValidator(order_id)] | None = None
    license_keys: list[DeliveredKey] = Field(max_length=MAX_KEYS_PER_APPLICATION)

    @field_validator("license_keys")
    @classmethod
    def _once_each(cls, keys: list[DeliveredKey]) -> list[DeliveredKey]:
        licenses = [k.license_id for k in keys]
        if len(set(licenses)) != len(licenses):
            raise ValueError("a license is named twice")
        values = [k.license_key for k in keys]
        if len(set(values)) != len(values):
            raise ValueError("the same key is given for two licenses")
        return keys


class FulfilmentFulfilled(Fulfilment):
    """`fulfilment.fulfilled`: a task's result, from a system allowed for fulfilment."""

    application_id: UUID


class Refusal(Message):
    reason: Annotated[str, Field(min_length=1, max_length=MAX_REASON), AfterValidator(limits.no_control_characters)]


class FulfilmentRejected(Refusal):
    """`fulfilment.rejected`: Arcserve refused the task; the tenant reads `reason`."""

    application_id: UUID


def problems(needs: Needs, result: Fulfilment) -> list[dict[str, str]]:
    """What keeps `result` from fulfilling a task of these needs, by field (as intake names a
    body's, R4): an order ID where one is needed and only there, a key for each license and
    for no other. Empty when it fits."""
    found: list[dict[str, str]] = []
    if needs.arcserve_order_id and result.arcserve_order_id is None:
        found.append({"field": "arcserve_order_id", "problem": "required: a new contract needs its Arcserve order ID"})
    if not needs.arcserve_order_id and result.arcserve_order_id is not None:
        found.append({"field": "arcserve_order_id", "problem": "not wanted: this application needs no order ID"})
    wanted = {lic.license_id for lic in needs.licenses}
    given = {key.license_id for key in result.license_keys}
    for index, key in enumerate(result.license_keys):
        if key.license_id not in wanted:
            found.append({"field": f"license_keys.{index}.license_id",
                          "problem": f"license {key.license_id} is not one this application needs a key for"})
    for lic in needs.licenses:
        if lic.license_id not in given:
            found.append({"field": "license_keys", "problem": f"missing: the key of license {lic.license_id}"})
    return found


class RevokedLicense(Message):
    license_id: UUID
    key_ends_with: str  # the key's last group, to find it at Arcserve (never the whole key)


class RevocationRequested(Message):
    """`fulfilment.revocation_requested`: a tenant cancelled (R8), and the licenses are
    cancelled for them already; Arcserve is to revoke their keys and, when the whole contract
    ends, cancel its order ID (R9). Announced again, further and further apart, until it is
    confirmed."""

    application_id: UUID
    tenant: str
    contract_id: UUID
    requested_at: datetime
    licenses: list[RevokedLicense]
    arcserve_order_id: str | None  # to cancel too: no key of the contract is left
    attempt: int = Field(ge=1)  # 1 the first time it is announced


class RevocationConfirmed(Message):
    """`fulfilment.revocation_confirmed`: Arcserve revoked the keys and cancelled the order ID
    a revocation named; from a system allowed for fulfilment."""

    application_id: UUID
