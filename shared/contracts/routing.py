"""Exchanges, routing keys and CloudEvents types (docs/architecture.md, "Public contract")."""
from shared.contracts.applications import Kind

APPLICATIONS_EXCHANGE = "arcserve.applications"
EVENTS_EXCHANGE = "arcserve.events"
# Not public: license keys, sealed, from the license issuer to the status service. Only they
# may write and read it; no other system is granted anything on it (docs/architecture.md, "Security").
LICENSE_KEYS_EXCHANGE = "arcserve.license-keys"
# Fulfilment tasks out, their results in (docs/architecture.md, "Fulfilment"): the provider's
# own systems read and write it, each allowed by an operator; results carry keys, so it is
# never bound to `arcserve.events` and no events reader is granted anything on it.
FULFILMENT_EXCHANGE = "arcserve.fulfilment"
# Not public: the order ID a fulfilment result brought, from the license issuer to the
# order-ID service.
ORDER_IDS_EXCHANGE = "arcserve.fulfilled-order-ids"
PUBLIC_EXCHANGES = (APPLICATIONS_EXCHANGE, EVENTS_EXCHANGE, FULFILMENT_EXCHANGE)  # in docs/asyncapi.json

SUBMISSION_TYPE_PREFIX = "arcserve.application."

LICENSE_ISSUED = "license.issued"
LICENSE_REVOKED = "license.revoked"
LICENSE_KEYS = "license.keys"
LICENSE_REFUSED = "license.refused"
ORDER_ID_ISSUED = "order_id.issued"
ORDER_ID_CANCELLED = "order_id.cancelled"
ORDER_ID_OBTAINED = "order_id.obtained"
FULFILMENT_REQUESTED = "fulfilment.requested"
FULFILMENT_FULFILLED = "fulfilment.fulfilled"
FULFILMENT_REJECTED = "fulfilment.rejected"
REVOCATION_REQUESTED = "fulfilment.revocation_requested"
REVOCATION_CONFIRMED = "fulfilment.revocation_confirmed"
CONTRACT_STATUS_CHANGED = "contract.status_changed"


def submission_type(kind: Kind | str) -> str:
    """CloudEvents type of a submission, e.g. `arcserve.application.new`."""
    return f"{SUBMISSION_TYPE_PREFIX}{kind}"


def event_type(routing_key: str) -> str:
    """CloudEvents type of an event: `arcserve.` + its routing key."""
    return f"arcserve.{routing_key}"


def accepted(kind: Kind | str) -> str:
    return f"application.accepted.{kind}"


def rejected(kind: Kind | str) -> str:
    return f"application.rejected.{kind}"


def completed(kind: Kind | str) -> str:
    return f"application.completed.{kind}"
