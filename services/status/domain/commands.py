"""What a tenant asks, as the domain takes it (docs/architecture.md, "Rules"), apart from
the wire schema: the status service maps each validated submission body onto one of these
commands at its edge (services/status/messages.py), and the rules only ever see commands.
The words (kinds, usages, license types) are the public vocabulary's."""
from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from shared.contracts.vocabulary import Kind, LicenseType, Usage

__all__ = ["Kind", "LicenseType", "Usage"]  # the public words, and the commands below


@dataclass(frozen=True)
class Contact:
    email: str
    company_name: str


@dataclass(frozen=True)
class LicenseLine:
    usage: Usage
    license_type: LicenseType
    quantity: int
    vm_count: int | None = None


@dataclass(frozen=True)
class OpenContract:
    """R1: a product, a contact and the license lines of a new contract."""

    product: str
    contact: Contact
    lines: tuple[LicenseLine, ...]


@dataclass(frozen=True)
class AddLicenses:
    """R5"""

    contract_id: UUID
    lines: tuple[LicenseLine, ...]


@dataclass(frozen=True)
class IncreaseVmCount:
    """R7"""

    contract_id: UUID
    license_id: UUID
    additional_vms: int


@dataclass(frozen=True)
class CancelLicenses:
    """R8, R9: the named keys, or all of them (`license_ids` None)."""

    contract_id: UUID
    license_ids: tuple[UUID, ...] | None = None


@dataclass(frozen=True)
class ChangeContact:
    contract_id: UUID
    contact: Contact


Command = OpenContract | AddLicenses | IncreaseVmCount | CancelLicenses | ChangeContact

KIND_OF: dict[type[Command], Kind] = {
    OpenContract: Kind.NEW,
    AddLicenses: Kind.ADDITION,
    IncreaseVmCount: Kind.VM_COUNT_INCREASE,
    CancelLicenses: Kind.CANCELLATION,
    ChangeContact: Kind.CONTACT_CHANGE,
}


# What the issuers report back (the R1 join and the completions of R5, R7, R8, R9; a refusal).
@dataclass(frozen=True)
class KeysIssued:
    contract_id: UUID
    keys: tuple[tuple[UUID, str], ...]  # (license id, key)


@dataclass(frozen=True)
class KeysRevoked:
    contract_id: UUID
    license_ids: tuple[UUID, ...]


@dataclass(frozen=True)
class OrderIdIssued:
    contract_id: UUID
    value: str


@dataclass(frozen=True)
class OrderIdCancelled:
    contract_id: UUID


@dataclass(frozen=True)
class Refused:
    """Arcserve refused what an accepted application asked for (fulfilment)."""

    contract_id: UUID
    application_id: UUID
    reason: str


Result = KeysIssued | KeysRevoked | OrderIdIssued | OrderIdCancelled | Refused
