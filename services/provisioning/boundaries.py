"""Every service's boundary: what the provisioning step provisions (and the operator
commands know of). The services themselves never import one another."""
from services.intake.boundary import BOUNDARY as INTAKE
from services.license_issuer.boundary import BOUNDARY as LICENSE_ISSUER
from services.order_id.boundary import BOUNDARY as ORDER_ID
from services.status.boundary import BOUNDARY as STATUS
from shared import tenancy
from shared.boundary import Boundary
from shared.messaging.topology import QueueSpec

BOUNDARIES: tuple[Boundary, ...] = (INTAKE, STATUS, LICENSE_ISSUER, ORDER_ID)
# Not one service's: provisioned here, read by the services that authenticate tenants.
PLATFORM_SCHEMAS = (tenancy.SCHEMA,)


def queue_specs() -> list[QueueSpec]:
    return [subscriber.spec for boundary in BOUNDARIES for subscriber in boundary.subscribers]
