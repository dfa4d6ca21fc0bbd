"""Exchanges, routing keys and CloudEvents types (docs/architecture.md, "Public contract")."""
from shared.contracts.applications import Kind

APPLICATIONS_EXCHANGE = "arcserve.applications"
EVENTS_EXCHANGE = "arcserve.events"
# Not public: license keys, sealed, from the license issuer to the status service. Only they
# may write and read it; no other system is granted anything on it (docs/architecture.md, "Security").
LICENSE_KEYS_EXCHANGE = "arcserve.license-keys"
PUBLIC_EXCHANGES = (APPLICATIONS_EXCHANGE, EVENTS_EXCHANGE)  # what other systems may see (docs/asyncapi.json)

SUBMISSION_TYPE_PREFIX = "arcserve.application."

LICENSE_ISSUED = "license.issued"
LICENSE_REVOKED = "license.revoked"
LICENSE_KEYS = "license.keys"
ORDER_ID_ISSUED = "order_id.issued"
ORDER_ID_CANCELLED = "order_id.cancelled"
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
