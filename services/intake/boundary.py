"""What intake owns: the `intake` schema (what each Idempotency-Key was first used for);
it publishes submissions, and reads `tenancy` to authenticate tenants."""
from pathlib import Path

from shared import tenancy
from shared.boundary import Boundary
from shared.contracts.applications import SUBMISSIONS
from shared.db.migrate import Schema

BOUNDARY = Boundary(
    name="intake",
    publishes=tuple(SUBMISSIONS.values()),
    schema=Schema("intake", Path(__file__).with_name("migrations")),
    reads=(tenancy.SCHEMA,),
    audits=True,
    acts_for_every_tenant=True,
)
