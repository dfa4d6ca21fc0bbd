"""The message catalogue: every message of the public contract (docs/architecture.md, "Public contract"), each with its
model, its exchange, its routing key and its CloudEvents `type`. Producers turn a model into
a CloudEvent here (`to_event`), consumers turn a CloudEvent back into its model (`parse`),
subscribers derive their bindings from it, and the AsyncAPI document is generated from it.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from shared.contracts import applications, events, fulfilment, limits, routing
from shared.contracts.applications import Kind
from shared.contracts.envelope import CloudEvent, PoisonMessage, new_event
from shared.contracts.message import read

# The AsyncAPI document of this catalogue (shared/contracts/asyncapi.py) names itself so; each
# event's CloudEvents `dataschema` points into it. A change a consumer would notice raises it.
CONTRACT_VERSION = "1.0.0"
DATASCHEMA = f"urn:arcserve-licensing:asyncapi:{CONTRACT_VERSION}"


def dataschema_of(model: type[BaseModel]) -> str:
    """The CloudEvents `dataschema` of a message's `data`: its schema in the AsyncAPI document."""
    return f"{DATASCHEMA}#/components/schemas/{model.__name__}"


@dataclass(frozen=True)
class MessageType:
    model: type[BaseModel]
    exchange: str  # without the topology prefix
    routing_key: str
    type: str  # CloudEvents `type`
    kind: Kind | None = None  # for the models shared by the five kinds (rejected, completed)
    # Submissions are read as strictly as intake reads a body (R4); events tolerate fields
    # a newer producer added.
    strict: bool = False
    # Who publishes it: the one service whose broker user a consumer trusts for it
    # (docs/architecture.md, "Security"). None for submissions and fulfilment results: other
    # systems publish those, each as an operator allowed it, which their consumer's filter
    # judges (services/status/submitters.py, services/license_issuer/fulfillers.py).
    publisher: str | None = None


def _submission(kind: Kind) -> MessageType:
    return MessageType(applications.SUBMISSIONS[kind], routing.APPLICATIONS_EXCHANGE, kind.value,
                       routing.submission_type(kind), strict=True)


def _event(publisher: str, model: type[BaseModel], routing_key: str, kind: Kind | None = None,
           exchange: str = routing.EVENTS_EXCHANGE) -> MessageType:
    return MessageType(model, exchange, routing_key, routing.event_type(routing_key), kind, publisher=publisher)


# The services that publish events, by their boundary's name (services/*/boundary.py).
STATUS, LICENSE_ISSUER, ORDER_ID = "status", "license-issuer", "order-id"

_ACCEPTED: dict[Kind, type[BaseModel]] = dict(zip(Kind, events.ACCEPTED, strict=True))

CATALOGUE: tuple[MessageType, ...] = (
    *(_submission(kind) for kind in Kind),
    *(_event(STATUS, _ACCEPTED[kind], routing.accepted(kind)) for kind in Kind),
    *(_event(STATUS, events.ApplicationRejected, routing.rejected(kind), kind) for kind in Kind),
    *(_event(STATUS, events.ApplicationCompleted, routing.completed(kind), kind) for kind in Kind),
    _event(LICENSE_ISSUER, events.LicenseIssued, routing.LICENSE_ISSUED),
    _event(LICENSE_ISSUER, events.LicenseRevoked, routing.LICENSE_REVOKED),
    _event(LICENSE_ISSUER, events.LicenseKeys, routing.LICENSE_KEYS, exchange=routing.LICENSE_KEYS_EXCHANGE),
    _event(LICENSE_ISSUER, events.LicenseRefused, routing.LICENSE_REFUSED),
    _event(LICENSE_ISSUER, events.OrderIdObtained, routing.ORDER_ID_OBTAINED, exchange=routing.ORDER_IDS_EXCHANGE),
    _event(LICENSE_ISSUER, fulfilment.FulfilmentRequested, routing.FULFILMENT_REQUESTED,
           exchange=routing.FULFILMENT_EXCHANGE),
    _event(LICENSE_ISSUER, fulfilment.RevocationRequested, routing.REVOCATION_REQUESTED,
           exchange=routing.FULFILMENT_EXCHANGE),
    *(MessageType(model, routing.FULFILMENT_EXCHANGE, key, routing.event_type(key))
      for model, key in ((fulfilment.FulfilmentFulfilled, routing.FULFILMENT_FULFILLED),
                         (fulfilment.FulfilmentRejected, routing.FULFILMENT_REJECTED),
                         (fulfilment.RevocationConfirmed, routing.REVOCATION_CONFIRMED))),
    _event(ORDER_ID, events.OrderIdIssued, routing.ORDER_ID_ISSUED),
    _event(ORDER_ID, events.OrderIdCancelled, routing.ORDER_ID_CANCELLED),
    _event(STATUS, events.ContractStatusChanged, routing.CONTRACT_STATUS_CHANGED),
)
_BY_TYPE = {entry.type: entry for entry in CATALOGUE}


class UnknownMessage(LookupError):
    pass


def entries(*models: type[BaseModel]) -> list[MessageType]:
    """Every catalogue entry of these models (a shared model has one per kind)."""
    found = [entry for entry in CATALOGUE if entry.model in models]
    missing = set(models) - {entry.model for entry in found}
    if missing:
        raise UnknownMessage(f"not in the message catalogue: {sorted(m.__name__ for m in missing)}")
    return found


def entry_of(message: BaseModel) -> MessageType:
    """The catalogue entry of a message instance."""
    kind = getattr(message, "kind", None)
    for entry in CATALOGUE:
        if type(message) is entry.model and entry.kind in (None, kind):
            return entry
    raise UnknownMessage(f"{type(message).__name__} is not in the message catalogue")


def by_type(event_type: str) -> MessageType | None:
    return _BY_TYPE.get(event_type)


def to_event(
    message: BaseModel,
    *,
    source: str,
    tenant_id: str,
    subject: str | None = None,
    id: str | None = None,
    time: datetime | None = None,
    extensions: dict[str, str] | None = None,
) -> tuple[MessageType, CloudEvent]:
    """The CloudEvent that carries `message`, and where it goes (`extensions`: CloudEvents
    extension attributes beside `tenantid`)."""
    entry = entry_of(message)
    # Submissions leave out what they do not say (as intake's bodies always did); events
    # carry every field, null where there is nothing (as they always did).
    data: dict[str, Any] = message.model_dump(mode="json", by_alias=True, exclude_none=entry.strict)
    return entry, new_event(type=entry.type, source=source, data=data, tenant_id=tenant_id,
                            subject=subject, id=id, time=time, extensions=extensions,
                            dataschema=dataschema_of(entry.model) if entry.exchange in routing.PUBLIC_EXCHANGES else None)


class InvalidData(PoisonMessage):
    """A message of a known type whose `data` does not fit its model; `errors` name each
    field (the same way intake names them, R4)."""

    def __init__(self, entry: MessageType, errors: list[dict[str, str]]):
        self.entry = entry
        self.errors = errors
        problems = "; ".join(f"{e['field']}: {e['problem']}" for e in errors)
        # A submission breaks R4 (invalid_application, as intake would answer it); an event
        # does not fit its model.
        super().__init__(f"{'invalid_application' if entry.strict else 'invalid_data'}: {problems}")


def tenant_of(event: CloudEvent) -> str:
    """The tenant every message of the catalogue is about; PoisonMessage without one."""
    if event.tenantid is None:
        raise PoisonMessage("missing_tenant: the CloudEvents extension `tenantid` is required")
    return event.tenantid


def parse(event: CloudEvent, expected: Iterable[MessageType] | None = None) -> BaseModel:
    """The event's `data` as its model; PoisonMessage when the type is unknown (or not one
    of `expected`) or the data does not fit."""
    entry = by_type(event.type)
    if entry is None or (expected is not None and entry not in expected):
        raise PoisonMessage(f"unknown_type: {event.type!r}")
    tenant_of(event)
    try:
        limits.check(event.data, where="data")
    except limits.LimitExceeded as exc:
        raise InvalidData(entry, [{"field": "data", "problem": str(exc)}]) from None
    try:
        if entry.strict:
            if not isinstance(event.data, dict):
                raise InvalidData(entry, [{"field": "data", "problem": "must be a JSON object"}])
            return entry.model.model_validate(event.data)
        return read(entry.model, event.data)  # type: ignore[type-var]
    except ValidationError as exc:
        raise InvalidData(entry, [applications.describe(e) for e in exc.errors()]) from None
