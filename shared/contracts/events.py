"""`data` of the events workers consume (DESIGN.md §4), parsed strictly enough to act on
and loosely enough (unknown fields ignored) that the contract can grow."""
from __future__ import annotations

from typing import Any, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, ValidationError

from shared.contracts.envelope import CloudEvent, PoisonMessage


class _Data(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class LicenseRef(_Data):
    license_id: UUID
    usage: str | None = None
    license_type: str | None = None
    vm_count: int | None = None
    billable: bool | None = None
    status: str | None = None
    license_key: str | None = None


class ApplicationAccepted(_Data):
    """`application.accepted.<kind>`"""

    application_id: UUID
    contract_id: UUID
    kind: str
    licenses: list[LicenseRef] = []
    cancels_contract: bool = False  # cancellation only: it left no key (R9)
    arcserve_order_id: str | None = None


class LicenseEvent(_Data):
    """`license.issued`, `license.revoked`"""

    contract_id: UUID
    application_id: UUID | None = None
    licenses: list[LicenseRef]


class OrderIdEvent(_Data):
    """`order_id.issued`, `order_id.cancelled`"""

    contract_id: UUID
    application_id: UUID | None = None
    arcserve_order_id: str


Data = TypeVar("Data", bound=_Data)


def parse_data(model: type[Data], event: CloudEvent) -> Data:
    """The event's data as `model`, or PoisonMessage naming the first bad field."""
    if event.tenantid is None:
        raise PoisonMessage("missing_tenant: the CloudEvents extension `tenantid` is required")
    try:
        return model.model_validate(event.data)
    except ValidationError as exc:
        first: Any = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "data"
        raise PoisonMessage(f"invalid_data: {where}: {first['msg']}") from None
