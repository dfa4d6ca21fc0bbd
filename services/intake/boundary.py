"""What intake owns: nothing stored; it publishes submissions, and reads `tenancy` to
authenticate tenants."""
from shared import tenancy
from shared.boundary import Boundary
from shared.contracts.applications import SUBMISSIONS

BOUNDARY = Boundary(
    name="intake",
    publishes=tuple(SUBMISSIONS.values()),
    reads=(tenancy.SCHEMA,),
)
