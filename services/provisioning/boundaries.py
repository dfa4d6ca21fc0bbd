"""Every service's boundary: what the provisioning step provisions (and the operator
commands know of). The services themselves never import one another."""
from services.backoffice.boundary import BOUNDARY as BACKOFFICE
from services.intake.boundary import BOUNDARY as INTAKE
from services.license_issuer.boundary import BOUNDARY as LICENSE_ISSUER
from services.order_id.boundary import BOUNDARY as ORDER_ID
from services.provisioning.deployment import Deployment
from services.status.boundary import BOUNDARY as STATUS
from shared import audit, tenancy
from shared.boundary import Boundary
from shared.contracts import catalogue, fulfilment
from shared.messaging.topology import QueueSpec

BOUNDARIES: tuple[Boundary, ...] = (INTAKE, STATUS, LICENSE_ISSUER, ORDER_ID, BACKOFFICE)
# Not one service's: provisioned here; tenancy is read by the services that authenticate
# tenants or submissions, audit is written by the operator commands.
PLATFORM_SCHEMAS = (tenancy.SCHEMA, audit.SCHEMA)


def own_publishers(deployment: Deployment, administrator: str) -> dict[str, tenancy.Role]:
    """The deployment's own publishers of submissions (shared/tenancy/migrations/0002): its
    edge, and the relay that passes others' messages on, the administrator (the operator's
    dead-letter replays). A consumer's own retries need no role: they carry its own user."""
    roles = {administrator: tenancy.Role.RELAY}
    for boundary in BOUNDARIES:
        if boundary.acts_for_every_tenant:
            roles[deployment.user(boundary)] = tenancy.Role.EDGE
    return roles


def own_fulfillers(deployment: Deployment) -> list[str]:
    """The deployment's own publishers of fulfilment results: its back-office console."""
    results = catalogue.entries(fulfilment.FulfilmentFulfilled, fulfilment.FulfilmentRejected)
    return [deployment.user(b) for b in BOUNDARIES
            if {e.model for e in catalogue.entries(*b.publishes)} & {e.model for e in results}]


def queue_specs() -> list[QueueSpec]:
    return [subscriber.spec for boundary in BOUNDARIES for subscriber in boundary.subscribers]


def owner_of(spec: QueueSpec) -> str:
    """The service whose consumer reads this queue."""
    return next(b.name for b in BOUNDARIES for subscriber in b.subscribers if subscriber.spec.name == spec.name)
